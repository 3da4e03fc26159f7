import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config.ts";
import {
  firewallCheck,
  HostFirewall,
  operatorCommand,
  ruleArgs,
  type RunCommand,
} from "../../src/platform/host-firewall.ts";
import { memoryLogger } from "../fakes/fake-logger.ts";

/** iptables and ip6tables in memory: each family's INPUT chain as a list of rules (their words joined). */
function fakeTables(o: { missing?: string[]; refuse?: string } = {}) {
  const chains = new Map<string, string[]>([
    ["iptables", ["-p tcp --dport 22 -j ACCEPT"]],
    ["ip6tables", ["-p tcp --dport 22 -j ACCEPT"]],
  ]);
  const calls: string[] = [];
  const run: RunCommand = async (file, args) => {
    calls.push(`${file} ${args.join(" ")}`);
    if (o.missing?.includes(file)) return { ok: false, output: `${file} not found` };
    const rules = chains.get(file)!;
    const [, , op, chain, ...rest] = args; // -w 5 <op> INPUT ...
    if (chain !== "INPUT") return { ok: false, output: "no such chain" };
    if (op === "-S") return { ok: true, output: rules.map((r) => `-A INPUT ${r}`).join("\n") };
    if (o.refuse && op === "-I") return { ok: false, output: o.refuse };
    if (op === "-I") {
      const [, ...rule] = rest; // position 1
      rules.unshift(rule.join(" "));
      return { ok: true, output: "" };
    }
    const rule = rest.join(" ");
    const at = rules.indexOf(rule);
    if (op === "-C")
      return at < 0
        ? { ok: false, output: "Bad rule (does a matching rule exist in that chain?)." }
        : { ok: true, output: "" };
    if (op === "-D") {
      if (at < 0) return { ok: false, output: "Bad rule" };
      rules.splice(at, 1);
      return { ok: true, output: "" };
    }
    return { ok: false, output: `unknown ${op}` };
  };
  return { chains, calls, run };
}

const ours = (instance: string) => ruleArgs(instance).join(" ");
const host = { kind: "host" } as const;

describe("HostFirewall", () => {
  it("inserts one rule per family first in INPUT, and a stop leaves the chains exactly as they were", async () => {
    const t = fakeTables();
    const before = structuredClone([...t.chains]);
    const fw = await HostFirewall.install({
      setting: "auto",
      instance: "a",
      place: host,
      logger: memoryLogger(),
      run: t.run,
    });
    expect(fw.status().state).toBe("closed");
    expect(fw.status().detail).toContain("mecat+");
    expect(fw.status().detail).not.toContain("IPv6 not closed");
    for (const family of ["iptables", "ip6tables"])
      expect(t.chains.get(family)![0]).toBe(ours("a"));
    expect(ours("a")).toContain("-i mecat+ -m conntrack ! --ctstate ESTABLISHED,RELATED");
    await fw.remove();
    await fw.remove();
    expect([...t.chains]).toEqual(before);
  });

  it("keeps a single copy that is first in INPUT (tasks kept through a restart are never without it); one lower down is replaced", async () => {
    const t = fakeTables();
    t.chains.get("iptables")!.unshift(ours("a"));
    t.chains.get("ip6tables")!.push(ours("a"));
    const fw = await HostFirewall.install({
      setting: "on",
      instance: "a",
      place: host,
      logger: memoryLogger(),
      run: t.run,
    });
    expect(fw.status().state).toBe("closed");
    expect(t.calls.filter((c) => c.startsWith("iptables ") && / -[DI] /.test(c))).toEqual([]);
    expect(t.calls.filter((c) => c.startsWith("ip6tables ") && / -[DI] /.test(c))).toHaveLength(2);
    for (const family of ["iptables", "ip6tables"])
      expect(t.chains.get(family)).toEqual([ours("a"), "-p tcp --dport 22 -j ACCEPT"]);
    await fw.remove();
    for (const family of ["iptables", "ip6tables"])
      expect(t.chains.get(family)).toEqual(["-p tcp --dport 22 -j ACCEPT"]);
  });

  it("replaces a crashed run's leftovers with one rule, and leaves another instance's rule alone", async () => {
    const t = fakeTables();
    for (const family of ["iptables", "ip6tables"])
      t.chains.get(family)!.push(ours("a"), ours("b"), ours("a"));
    const fw = await HostFirewall.install({
      setting: "on",
      instance: "a",
      place: host,
      logger: memoryLogger(),
      run: t.run,
    });
    expect(t.chains.get("iptables")!.filter((r) => r === ours("a"))).toHaveLength(1);
    await fw.remove();
    expect(t.chains.get("iptables")).toEqual(["-p tcp --dport 22 -j ACCEPT", ours("b")]);
  });

  it("under auto, a host it cannot close is a warning with the operator's command, never a crash", async () => {
    const t = fakeTables({
      refuse:
        "iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)",
    });
    const fw = await HostFirewall.install({
      setting: "auto",
      instance: "a",
      place: host,
      logger: memoryLogger(),
      run: t.run,
    });
    expect(fw.status()).toMatchObject({
      task_host_firewall: "auto",
      state: "open",
      command: operatorCommand(),
    });
    expect(fw.status().detail).toContain("Permission denied");
    expect(t.chains.get("iptables")).toEqual(["-p tcp --dport 22 -j ACCEPT"]);
  });

  it("under on, a host it cannot close stops start-up saying why and what to run", async () => {
    const t = fakeTables({ missing: ["iptables", "ip6tables"] });
    const error = await HostFirewall.install({
      setting: "on",
      instance: "a",
      place: host,
      logger: memoryLogger(),
      run: t.run,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain("task_host_firewall: on");
    expect((error as Error).message).toContain("iptables not found");
    expect((error as Error).message).toContain(operatorCommand());
  });

  it("without ip6tables the host is closed for IPv4 and says IPv6 is not", async () => {
    const t = fakeTables({ missing: ["ip6tables"] });
    const fw = await HostFirewall.install({
      setting: "on",
      instance: "a",
      place: host,
      logger: memoryLogger(),
      run: t.run,
    });
    expect(fw.status().state).toBe("closed");
    expect(fw.status().detail).toContain("IPv6 not closed: ip6tables: ip6tables not found");
  });

  it("off runs nothing; a placement without task bridges or another host's network runs nothing and says why", async () => {
    const t = fakeTables();
    const off = await HostFirewall.install({
      setting: "off",
      instance: "a",
      place: host,
      logger: memoryLogger(),
      run: t.run,
    });
    expect(off.status().state).toBe("open");
    const shared = await HostFirewall.install({
      setting: "auto",
      instance: "a",
      place: { kind: "shared", why: "tasks share network x" },
      logger: memoryLogger(),
      run: t.run,
    });
    expect(shared.status()).toMatchObject({ state: "open", detail: "tasks share network x" });
    const elsewhere = await HostFirewall.install({
      setting: "auto",
      instance: "a",
      place: { kind: "elsewhere", why: "in a container" },
      logger: memoryLogger(),
      run: t.run,
    });
    expect(elsewhere.status()).toMatchObject({ state: "unknown", command: operatorCommand() });
    expect(t.calls).toEqual([]);
    await expect(
      HostFirewall.install({
        setting: "on",
        instance: "a",
        place: { kind: "elsewhere", why: "in a container" },
        logger: memoryLogger(),
        run: t.run,
      }),
    ).rejects.toThrow(/in a container.*iptables -I INPUT/);
  });

  it("the operator's command covers every task bridge in both families", () => {
    expect(operatorCommand()).toBe(
      "iptables -I INPUT -i mecat+ -m conntrack ! --ctstate ESTABLISHED,RELATED -j REJECT && ip6tables -I INPUT -i mecat+ -m conntrack ! --ctstate ESTABLISHED,RELATED -j REJECT",
    );
  });

  it("doctor's check reads the rules and changes nothing: present now, possible at start, or the command", async () => {
    const t = fakeTables();
    expect(
      await firewallCheck({ setting: "auto", instance: "a", place: host, run: t.run }),
    ).toMatchObject({ ok: true, detail: expect.stringContaining("a start closes the host") });
    t.chains.get("iptables")!.unshift(ours("a"));
    expect(
      await firewallCheck({ setting: "auto", instance: "a", place: host, run: t.run }),
    ).toMatchObject({
      ok: true,
      detail: expect.stringContaining('the rule of instance "a" is in INPUT'),
    });
    expect(t.calls.every((c) => / -[SC] /.test(c))).toBe(true);
    const denied = fakeTables({ missing: ["iptables"] });
    expect(
      await firewallCheck({ setting: "on", instance: "a", place: host, run: denied.run }),
    ).toMatchObject({ ok: false, required: true, fix: expect.stringContaining(operatorCommand()) });
    expect(
      await firewallCheck({
        setting: "auto",
        instance: "a",
        place: { kind: "hostless", why: "no host address" },
        run: denied.run,
      }),
    ).toMatchObject({ ok: true });
  });
});
