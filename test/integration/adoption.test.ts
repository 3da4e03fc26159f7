/**
 * Restarts on the real engine, with the executor as a process of its own: after `kill -9` the next
 * start of the same instance adopts the warm tasks (the same containers, no create or start, the
 * reservations adding up), removes what it must not adopt, and `keep_tasks_on_stop` carries ready
 * tasks through a stop. See docs/architecture.md, "Adoption".
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, onTestFailed } from "vitest";
import { LABELS } from "../../src/platform/docker/labels.ts";
import { ruleArgs } from "../../src/platform/host-firewall.ts";
import { containerEvents, engineNow } from "../support/docker-events.ts";
import { docker } from "../support/docker-env.ts";
import { ECHO_IMAGE, NEVER_READY_IMAGE, READY_LATE_IMAGE } from "../support/fixtures.ts";
import { until } from "../support/harness.ts";
import { spawnExecutor, type ExecutorProcess } from "../support/process.ts";
import { scratchDir } from "../support/scratch.ts";

const dir = scratchDir("meca-adoption-");
let serial = 0;
const running: ExecutorProcess[] = [];
const instances: string[] = [];

afterEach(async () => {
  for (const p of running.splice(0)) if (p.child.exitCode === null) p.child.kill("SIGKILL");
  // Whatever a failed test left: its containers, then its networks.
  for (const instance of instances.splice(0)) {
    // A killed executor's host rule first: nothing else may fail before it goes.
    for (const family of ["iptables", "ip6tables"]) {
      for (
        let i = 0;
        i < 8 && spawnSync(family, ["-w", "5", "-D", "INPUT", ...ruleArgs(instance)]).status === 0;
        i++
      );
    }
    // (An executor may still be removing some: "already in progress" is no failure here.)
    await until(() => {
      const ids = engineContainers(instance);
      for (const id of ids) tryDocker(["rm", "-f", id]);
      return engineContainers(instance).length === 0;
    }, "the test's containers removed");
    for (const net of engineNetworks(instance)) tryDocker(["network", "rm", net]);
  }
});

function tryDocker(args: string[]): void {
  try {
    docker(args);
  } catch {
    // gone already, or going
  }
}

function newInstance(): string {
  const instance = `test-${process.pid}-adopt${++serial}`;
  instances.push(instance);
  return instance;
}

/** Starts the executor from source with `config` (JSON is YAML) as its config file. */
async function start(config: Record<string, unknown>): Promise<ExecutorProcess> {
  const file = join(dir, `${String(config.instance)}-${++serial}.yaml`);
  writeFileSync(file, JSON.stringify(config));
  const p = await spawnExecutor(["--config", file]);
  running.push(p);
  // A failure (a timeout above all) says what each executor of the test was doing.
  onTestFailed(() => console.log(`executor ${file}, its last output:\n${p.output().slice(-6000)}`));
  return p;
}

/** The host actor's request: the task's config.json as `resource`. */
async function run(
  p: ExecutorProcess,
  id: string,
  cpu: number,
  input: string,
  extra: Record<string, unknown> = {},
) {
  const r = await p.post("/", { id, resource: { cpu, mem: 43 }, input, ...extra });
  expect(r.body).toEqual({ success: true, msg: input });
}

interface TaskRow {
  container_id: string;
  cpu: number;
  state: string;
  image: string;
  network: { name: string };
}
const tasks = async (p: ExecutorProcess) => (await p.get("/tasks")).body.tasks as TaskRow[];
const engineContainers = (instance: string) =>
  docker(["ps", "-aq", "--no-trunc", "--filter", `label=${LABELS.instance}=${instance}`])
    .split("\n")
    .filter(Boolean)
    .sort();
const engineNetworks = (instance: string) =>
  docker([
    "network",
    "ls",
    "--format",
    "{{.Name}}",
    "--filter",
    `label=${LABELS.instance}=${instance}`,
  ])
    .split("\n")
    .filter(Boolean)
    .sort();
const percent = (used: number, of: number) => Math.round((used / of) * 1000) / 10;

/** Whether this instance's host firewall rule is in INPUT. */
function iptablesHas(instance: string): boolean {
  return spawnSync("iptables", ["-w", "5", "-S", "INPUT"], { encoding: "utf8" }).stdout.includes(
    `meca-executor ${instance}`,
  );
}

async function kill9(p: ExecutorProcess): Promise<void> {
  p.child.kill("SIGKILL");
  await p.exited;
}

async function stop(p: ExecutorProcess, how: "SIGTERM" | "POST /stop"): Promise<number | null> {
  if (how === "SIGTERM") p.child.kill("SIGTERM");
  else expect((await p.post("/stop")).status).toBe(200);
  return p.exited;
}

describe("adoption at start-up", () => {
  it("after kill -9 and a restart the warm keys stay warm: the same containers, no create or start, the reservations adding up", async () => {
    const instance = newInstance();
    const config = { instance };
    const p1 = await start(config);
    for (const cpu of [0.2, 0.3, 0.4]) await run(p1, ECHO_IMAGE, cpu, `warm ${cpu}`);
    const before = (await tasks(p1)).map((t) => t.container_id).sort();
    expect(before).toHaveLength(3);
    await kill9(p1);
    expect(engineContainers(instance)).toEqual(before);

    const since = engineNow();
    const p2 = await start(config);
    const adopted = await tasks(p2);
    expect(adopted.map((t) => t.container_id).sort()).toEqual(before);
    expect(adopted.every((t) => t.state === "ready" && t.network.name !== "")).toBe(true);
    const stats = (await p2.get("/stats")).body;
    // The reservations add up: 0.9 cores and 129 MB, in percent of the capacity as /stats gives them.
    expect(stats).toMatchObject({
      tasks: 3,
      task_used_cpu: percent(0.9, stats.task_cpu),
      task_used_mem: percent(129, stats.task_mem),
    });
    for (const cpu of [0.2, 0.3, 0.4]) await run(p2, ECHO_IMAGE, cpu, `after the restart ${cpu}`);
    expect(
      containerEvents({
        since,
        labels: { [LABELS.instance]: instance },
        actions: ["create", "start"],
      }),
    ).toEqual([]);
    expect(p2.output()).toContain("Adopted tasks left by an earlier run");

    expect(await stop(p2, "SIGTERM")).toBe(0);
    expect(engineContainers(instance)).toEqual([]);
    expect(engineNetworks(instance)).toEqual([]);
  });

  it("a restart removes what it must not adopt: an image no longer allowed, a runtime no longer configured, an exited container, one still starting, one off its network, and the least recently started past the capacity", async () => {
    const instance = newInstance();
    const p1 = await start({ instance, microVM_runtime: "runsc", ready_timeout: 120 });
    for (const cpu of [0.2, 0.3, 0.4, 0.5]) await run(p1, ECHO_IMAGE, cpu, `warm ${cpu}`); // oldest first
    await run(p1, READY_LATE_IMAGE, 0.1, "another image");
    await run(p1, ECHO_IMAGE, 0.1, "in a microVM", { runtime: "microVM" });
    const rows = await tasks(p1);
    const echo = (cpu: number) => rows.find((t) => t.image === ECHO_IMAGE && t.cpu === cpu)!;
    const starting = p1
      .post("/", { id: NEVER_READY_IMAGE, resource: { cpu: 0.1, mem: 43 }, input: "never" })
      .catch(() => undefined);
    const startingId = async () =>
      (await tasks(p1)).find((t) => t.image === NEVER_READY_IMAGE)?.container_id ?? "";
    await until(
      async () =>
        (await startingId()) !== "" &&
        docker(["inspect", "-f", "{{.State.Running}}", await startingId()]).trim() === "true",
      "the never-ready task running, not ready",
    );
    await kill9(p1);
    await starting;
    const keep = echo(0.5).container_id;
    docker(["kill", echo(0.3).container_id]);
    docker(["network", "disconnect", "-f", echo(0.4).network.name, echo(0.4).container_id]);

    const p2 = await start({ instance, cpu: 0.6, allowed_images: [ECHO_IMAGE, NEVER_READY_IMAGE] });
    expect((await tasks(p2)).map((t) => t.container_id)).toEqual([keep]);
    // The executor serves once adoption is done; the rest goes while it serves.
    await until(() => engineContainers(instance).length === 1, "the leftovers not adopted removed");
    expect(engineContainers(instance)).toEqual([keep]);
    await until(
      () => p2.output().includes("Removed task networks left by an earlier run"),
      "the leftover networks removed",
    );
    const out = p2.output();
    for (const why of [
      "not in allowed_images",
      "no microVM_runtime is configured",
      "it is not running",
      "never saw it ready",
      "not on a task network of its own",
      "the capacity has no room for it",
    ]) {
      expect(out).toContain(why);
    }
    // Of the earlier run's networks only the adopted task's is left (the rest are this run's spares).
    expect(engineNetworks(instance)).toContain(echo(0.5).network.name);
    for (const cpu of [0.2, 0.3, 0.4])
      expect(engineNetworks(instance)).not.toContain(echo(cpu).network.name);
    expect((await p2.get("/stats")).body).toMatchObject({
      tasks: 1,
      task_cpu: 0.6,
      task_used_cpu: percent(0.5, 0.6),
    });
    expect(await stop(p2, "SIGTERM")).toBe(0);
    expect(engineContainers(instance)).toEqual([]);
    expect(engineNetworks(instance)).toEqual([]);
  });
});

describe("keep_tasks_on_stop", () => {
  it("true: a stop (POST /stop, SIGTERM) leaves ready tasks, their networks and the host rule for the next start, which adopts them; another instance's stay untouched; false removes everything", async () => {
    const instance = newInstance();
    const other = newInstance();
    const p0 = await start({ instance: other, keep_tasks_on_stop: true });
    await run(p0, ECHO_IMAGE, 0.2, "another instance");
    expect(await stop(p0, "SIGTERM")).toBe(0);
    const others = engineContainers(other);
    expect(others).toHaveLength(1);

    const p1 = await start({ instance, keep_tasks_on_stop: true });
    for (const cpu of [0.2, 0.3]) await run(p1, ECHO_IMAGE, cpu, `warm ${cpu}`);
    const before = (await tasks(p1)).map((t) => t.container_id).sort();
    const nets = (await tasks(p1)).map((t) => t.network.name).sort();
    const closed = (await p1.get("/tasks")).body.host_firewall.state === "closed";
    expect(await stop(p1, "POST /stop")).toBe(0);
    expect(engineContainers(instance)).toEqual(before);
    for (const id of before)
      expect(docker(["inspect", "-f", "{{.State.Running}}", id]).trim()).toBe("true");
    expect(engineNetworks(instance)).toEqual(nets);
    // The kept tasks stay behind the host rule until the next start takes it over.
    expect(iptablesHas(instance)).toBe(closed);

    const since = engineNow();
    const p2 = await start({ instance, keep_tasks_on_stop: true });
    expect((await tasks(p2)).map((t) => t.container_id).sort()).toEqual(before);
    await run(p2, ECHO_IMAGE, 0.3, "after a kept stop");
    expect(await stop(p2, "SIGTERM")).toBe(0);
    expect(engineContainers(instance)).toEqual(before);

    const p3 = await start({ instance });
    expect((await tasks(p3)).map((t) => t.container_id).sort()).toEqual(before);
    expect(
      containerEvents({
        since,
        labels: { [LABELS.instance]: instance },
        actions: ["create", "start"],
      }),
    ).toEqual([]);
    expect(await stop(p3, "SIGTERM")).toBe(0);
    expect(engineContainers(instance)).toEqual([]);
    expect(engineNetworks(instance)).toEqual([]);
    expect(iptablesHas(instance)).toBe(false);
    expect(engineContainers(other)).toEqual(others);
    // The other instance's next start, not keeping, takes its task back and then removes it and its rule.
    const p4 = await start({ instance: other });
    expect((await tasks(p4)).map((t) => t.container_id)).toEqual(others);
    expect(await stop(p4, "SIGTERM")).toBe(0);
    expect(engineContainers(other)).toEqual([]);
    expect(iptablesHas(other)).toBe(false);
  });
});
