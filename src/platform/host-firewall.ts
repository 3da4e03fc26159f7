/**
 * Closes the host's own addresses to tasks. Every task network's bridge is named `mecat…`
 * (task-networks.ts), so one rule per address family covers them all: in the host's INPUT chain,
 * every connection that arrives from a task bridge and is not part of one the host opened is
 * rejected. The executor's own connections to its tasks keep working (their replies are
 * ESTABLISHED); Docker's embedded DNS answers inside the task's own namespace and is untouched.
 *
 * The rule carries a comment naming the instance: a start first deletes every copy of its own
 * rule (a crashed run's leftovers), then inserts one; a stop deletes exactly that, so the host's
 * rules after a stop are what they were before the start. In a container with a network of its
 * own there is nothing to install: egress-off task networks give the host no address at all
 * (`hostless`). See docs/architecture.md, "The host's own resources".
 */
import { execFile } from "node:child_process";
import { ConfigError } from "../config.ts";
import { TASK_BRIDGE_PREFIX } from "./docker/task-networks.ts";
import type { Logger } from "../engine/ports.ts";
import { parseDockerHost } from "./docker/docker-host.ts";
import type { Placement } from "./docker/placement.ts";

export type FirewallSetting = "auto" | "on" | "off";

export interface FirewallStatus {
  task_host_firewall: FirewallSetting;
  /** "closed": the executor's rule is in place; "open": it is not; "unknown": it cannot see the host's rules. */
  state: "closed" | "open" | "unknown";
  /** For a person: how, or why not. */
  detail: string;
  /** What the host's operator runs once where the executor cannot. */
  command?: string;
}

/** Runs one firewall command; never throws: ok false with what it said instead. */
export type RunCommand = (file: string, args: string[]) => Promise<{ ok: boolean; output: string }>;

/** Where the tasks' host is, as far as the firewall goes. */
export type FirewallPlace =
  /** The executor shares the host's network namespace and calls the engine on this host. */
  | { kind: "host" }
  /** It cannot change the host's rules from here; `why` says so. */
  | { kind: "elsewhere"; why: string }
  /** Task networks carry no address of the host at all (the executor joins them from its own container). */
  | { kind: "hostless"; why: string }
  /** The tasks are not on task bridges (network: publish or a named network). */
  | { kind: "shared"; why: string };

const FAMILIES = ["iptables", "ip6tables"] as const;
/** Bound on the deletions of leftover copies, so a rule that cannot be deleted never loops. */
const MAX_COPIES = 64;

/** The match and target of the rule, after the chain: the same words for -C, -I and -D. */
export function ruleArgs(instance: string): string[] {
  return [
    "-i",
    `${TASK_BRIDGE_PREFIX}+`,
    "-m",
    "conntrack",
    "!",
    "--ctstate",
    "ESTABLISHED,RELATED",
    "-m",
    "comment",
    "--comment",
    `meca-executor ${instance}`,
    "-j",
    "REJECT",
  ];
}

/** The command a host's operator runs once where the executor cannot install the rule itself. */
export function operatorCommand(): string {
  const rule = `INPUT -i ${TASK_BRIDGE_PREFIX}+ -m conntrack ! --ctstate ESTABLISHED,RELATED -j REJECT`;
  return FAMILIES.map((f) => `${f} -I ${rule}`).join(" && ");
}

export class HostFirewall {
  #run: RunCommand;
  #instance: string;
  #status: FirewallStatus;
  /** The families whose rule this executor inserted and must delete. */
  #installed: string[] = [];
  #log: Logger;

  private constructor(o: {
    run: RunCommand;
    instance: string;
    status: FirewallStatus;
    logger: Logger;
  }) {
    this.#run = o.run;
    this.#instance = o.instance;
    this.#status = o.status;
    this.#log = o.logger;
  }

  /**
   * Installs the rule where it can. `auto`: where it cannot, a warning (start-up log, doctor,
   * GET /tasks) with the operator's command; `on`: an error that says why; `off`: nothing.
   */
  static async install(o: {
    setting: FirewallSetting;
    instance: string;
    place: FirewallPlace;
    logger: Logger;
    run?: RunCommand;
  }): Promise<HostFirewall> {
    const log = o.logger.child({ component: "firewall" });
    const run = o.run ?? runCommand;
    const status = (
      state: FirewallStatus["state"],
      detail: string,
      command?: string,
    ): FirewallStatus => ({
      task_host_firewall: o.setting,
      state,
      detail,
      ...(command ? { command } : {}),
    });
    const fw = (s: FirewallStatus) =>
      new HostFirewall({ run, instance: o.instance, status: s, logger: log });
    if (o.setting === "off")
      return fw(
        status("open", "task_host_firewall: off: tasks can connect to every address of the host"),
      );
    if (o.place.kind === "hostless") return fw(status("closed", o.place.why));
    if (o.place.kind === "shared") return refuse(o.setting, fw(status("open", o.place.why)));
    if (o.place.kind === "elsewhere")
      return refuse(o.setting, fw(status("unknown", o.place.why, operatorCommand())));

    const f = fw(status("open", ""));
    const failures: string[] = [];
    for (const family of FAMILIES) {
      const why = await f.#installFamily(family);
      if (why !== undefined) failures.push(`${family}: ${why}`);
    }
    if (f.#installed.includes("iptables")) {
      const v6 = f.#installed.includes("ip6tables")
        ? ""
        : ` (IPv6 not closed: ${failures.join("; ")})`;
      f.#status = status(
        "closed",
        `new connections from task bridges (${TASK_BRIDGE_PREFIX}+) to the host's addresses are rejected${v6}`,
      );
      return f;
    }
    await f.remove();
    f.#status = status(
      "open",
      `cannot install the host firewall rule: ${failures.join("; ")}`,
      operatorCommand(),
    );
    return refuse(o.setting, f);
  }

  status(): FirewallStatus {
    return this.#status;
  }

  /** Deletes exactly the rules this executor inserted; safe to call twice. */
  async remove(): Promise<void> {
    for (const family of this.#installed.splice(0)) {
      const left = await this.#deleteCopies(family);
      if (left !== undefined)
        this.#log.warn("Cannot remove the host firewall rule", { family, error: left });
    }
  }

  /** Replaces its own leftovers with one rule; undefined when done, else why not. */
  async #installFamily(family: string): Promise<string | undefined> {
    const listed = await this.#run(family, ["-w", "5", "-S", "INPUT"]);
    if (!listed.ok) return listed.output;
    // One copy, first in INPUT (an earlier run that crashed or kept its tasks): it stays, so tasks
    // kept through a restart are never without it.
    const rules = listed.output.split("\n").filter((l) => l.startsWith("-A INPUT "));
    const own = rules.filter(
      (l) =>
        l.includes(`"meca-executor ${this.#instance}"`) ||
        l.endsWith(`meca-executor ${this.#instance} -j REJECT`),
    );
    if (
      own.length === 1 &&
      rules[0] === own[0] &&
      (await this.#run(family, ["-w", "5", "-C", "INPUT", ...ruleArgs(this.#instance)])).ok
    ) {
      this.#installed.push(family);
      return undefined;
    }
    const stale = await this.#deleteCopies(family);
    if (stale !== undefined) return stale;
    const inserted = await this.#run(family, [
      "-w",
      "5",
      "-I",
      "INPUT",
      "1",
      ...ruleArgs(this.#instance),
    ]);
    if (!inserted.ok) return inserted.output;
    this.#installed.push(family);
    return undefined;
  }

  /** Deletes every copy of this instance's rule; undefined when none is left. */
  async #deleteCopies(family: string): Promise<string | undefined> {
    const rule = ruleArgs(this.#instance);
    for (let i = 0; i < MAX_COPIES; i++) {
      if (!(await this.#run(family, ["-w", "5", "-C", "INPUT", ...rule])).ok) return undefined;
      const deleted = await this.#run(family, ["-w", "5", "-D", "INPUT", ...rule]);
      if (!deleted.ok) return deleted.output;
    }
    return `more than ${MAX_COPIES} copies of the rule`;
  }
}

/**
 * doctor's view, changing nothing: whether the host is closed to tasks now (this instance's rule is
 * in place), or whether a start could close it (the rules can be read here), else the command.
 */
export async function firewallCheck(o: {
  setting: FirewallSetting;
  instance: string;
  place: FirewallPlace;
  run?: RunCommand;
}): Promise<{ name: string; ok: boolean; required: boolean; detail: string; fix?: string }> {
  const run = o.run ?? runCommand;
  const check = (ok: boolean, detail: string, fix?: string) => ({
    name: "firewall",
    ok,
    required: o.setting === "on",
    detail,
    ...(fix ? { fix } : {}),
  });
  if (o.setting === "off")
    return check(
      false,
      "task_host_firewall: off: tasks can connect to every address of the host",
      `set task_host_firewall: auto, or run once as root: ${operatorCommand()}`,
    );
  if (o.place.kind === "hostless") return check(true, `host closed to tasks: ${o.place.why}`);
  if (o.place.kind !== "host")
    return check(
      false,
      `the executor cannot close the host here: ${o.place.why}`,
      o.place.kind === "elsewhere"
        ? `run once as root on the engine's host: ${operatorCommand()}`
        : "use network: auto",
    );
  const listed = await run("iptables", ["-w", "5", "-S", "INPUT"]);
  if (!listed.ok)
    return check(
      false,
      `cannot read the host's rules (${listed.output}): a start cannot close the host`,
      `run as root (or with CAP_NET_ADMIN) with iptables installed, or run once as root: ${operatorCommand()}`,
    );
  const rule = ruleArgs(o.instance);
  const present = (await run("iptables", ["-w", "5", "-C", "INPUT", ...rule])).ok;
  return check(
    true,
    present
      ? `host closed to tasks: the rule of instance "${o.instance}" is in INPUT (an executor of this instance runs)`
      : `a start closes the host to tasks: it inserts "-i ${TASK_BRIDGE_PREFIX}+ ... -j REJECT" into INPUT (iptables and ip6tables) and removes it at stop`,
  );
}

/** Whether the executor can close the tasks' host here: it shares the host's network namespace and its engine is local. */
export function firewallPlace(
  placement: Pick<Placement, "mode" | "network" | "ownNetwork">,
  env: Record<string, string | undefined>,
  taskEgress: boolean,
): FirewallPlace {
  if (placement.mode !== "isolated") {
    const on =
      placement.mode === "publish" ? "Docker's default bridge" : `network "${placement.network}"`;
    return {
      kind: "shared",
      why: `tasks share ${on} (network: ${placement.mode === "publish" ? "publish" : placement.network}), not task bridges: the host stays open to them; use network: auto`,
    };
  }
  let engine;
  try {
    engine = parseDockerHost(env);
  } catch {
    return { kind: "elsewhere", why: "cannot tell where the engine runs (DOCKER_HOST)" };
  }
  const local = engine.kind === "unix" || /^(127\.|localhost$|::1$)/.test(engine.host);
  if (!local)
    return {
      kind: "elsewhere",
      why: `the engine runs on another host (${engine.transport}): its operator closes it there`,
    };
  if (placement.ownNetwork) {
    if (!taskEgress)
      return {
        kind: "hostless",
        why: "task networks give the host no address (inhibit_ipv4): the executor reaches its tasks from its own container",
      };
    return {
      kind: "elsewhere",
      why: "task_egress: true, and the executor runs in a container with a network namespace of its own: the host's firewall is out of its reach",
    };
  }
  return { kind: "host" };
}

/** Under `on`, a host that stays open is a start-up error; under `auto`, the status says it. */
function refuse(setting: FirewallSetting, fw: HostFirewall): HostFirewall {
  if (setting !== "on") return fw;
  const s = fw.status();
  throw new ConfigError(
    `task_host_firewall: on, but the host stays open to tasks: ${s.detail}${s.command ? `; the host's operator can run: ${s.command}` : ""}`,
  );
}

const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const runCommand: RunCommand = (file, args) =>
  new Promise((resolve) => {
    execFile(
      file,
      args,
      { env: { ...process.env, PATH: `${process.env.PATH ?? ""}:${PATH}` }, timeout: 10_000 },
      (err, stdout, stderr) => {
        const output = `${stderr}${stdout}`.trim().split("\n")[0] ?? "";
        if (!err) return resolve({ ok: true, output });
        const code = (err as NodeJS.ErrnoException).code;
        resolve({
          ok: false,
          output: code === "ENOENT" ? `${file} not found` : output || err.message,
        });
      },
    );
  });
