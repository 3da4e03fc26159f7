/**
 * Adoption at start-up (docs/architecture.md, "Adoption"), on the fakes: a second executor on the
 * engine an earlier one left (a restart) takes back the ready tasks its config allows, with their
 * reservations, and removes the rest; keep_tasks_on_stop leaves ready tasks for it.
 */
import { describe, expect, it } from "vitest";
import type { Settings } from "../../src/config.ts";
import { DockerTasks } from "../../src/platform/docker/docker-tasks.ts";
import { LABELS } from "../../src/platform/docker/labels.ts";
import { FakeBackend } from "../fakes/fake-backend.ts";
import { Executor } from "../../src/engine/executor.ts";
import { FakeClock } from "../fakes/fake-clock.ts";
import { FakeHost } from "../fakes/fake-host.ts";
import { memoryLogger } from "../fakes/fake-logger.ts";
import { fakeProbe, FakeTaskClient } from "../fakes/fake-task-client.ts";
import { BASE_SETTINGS, fakeExecutor, fakeGpus, flush } from "../support/fake-executor.ts";

type Run = Awaited<ReturnType<typeof fakeExecutor>>;

const images = { "echo:1": {}, "other:1": {}, "slow:1": { ready: "never" as const } };
const isolated: Partial<Settings> = { isolate: true, taskSubnetPool: "10.201.0.0/24" };

/** An executor that warms `keys` (cpu tenths) and then stops keeping its tasks, as a restart's first half. */
async function earlier(
  settings: Partial<Settings>,
  keys: number[],
  image = "echo:1",
): Promise<Run> {
  const run = await fakeExecutor({ settings: { keepTasksOnStop: true, ...settings }, images });
  for (const tenths of keys)
    await run.executor.execute({ image, cpu: tenths / 10, mem: 64 }, `warm ${tenths}`);
  return run;
}

/** What the engine does after the second executor was created: its calls by method. */
function callsSince(backend: FakeBackend, from: number): string[] {
  return backend.calls.slice(from).map((c) => c.method);
}

const containers = (b: FakeBackend) =>
  b
    .containers()
    .map((c) => c.id)
    .sort();

describe("adoption at start-up", () => {
  for (const mode of ["published", "isolated"] as const) {
    it(`takes back an earlier run's ready tasks with their reservations: the same containers, no create or start (${mode})`, async () => {
      const settings = mode === "isolated" ? isolated : {};
      const a = await earlier(settings, [5, 10, 15]);
      expect(await a.executor.shutdown()).toBe(3);
      const before = containers(a.backend);
      const nets = a.backend.networks().map((n) => n.id);
      const from = a.backend.calls.length;
      const b = await fakeExecutor({ backend: a.backend, settings });
      expect(containers(b.backend)).toEqual(before);
      expect(
        b.executor
          .tasks()
          .map((t) => [t.cpu, t.state])
          .sort(),
      ).toEqual([
        [0.5, "ready"],
        [1, "ready"],
        [1.5, "ready"],
      ]);
      expect(b.executor.ledger.used().cpuTenths).toBe(30);
      expect(b.executor.ledger.reservations).toBe(3);
      expect(b.executor.reserved()).toEqual({ cpu: 3, mem: 192, gpus: [], reservations: 3 });
      for (const tenths of [5, 10, 15])
        expect(
          await b.executor.execute(
            { image: "echo:1", cpu: tenths / 10, mem: 64 },
            `again ${tenths}`,
          ),
        ).toBe(`again ${tenths}`);
      expect(callsSince(b.backend, from)).not.toContain("create");
      expect(callsSince(b.backend, from)).not.toContain("start");
      if (mode === "isolated") {
        // Each adopted task keeps its network; the spares are new ones in other blocks.
        const held = b.executor.tasks().map((t) => t.network.subnet);
        expect(new Set(held).size).toBe(3);
        for (const id of nets)
          if (b.backend.networks().every((n) => n.id !== id))
            throw new Error(`network ${id} of an adopted task was removed`);
      }
      await b.executor.shutdown();
      expect(b.backend.containers()).toEqual([]);
      expect(b.backend.networks()).toEqual([]);
    });
  }

  it("after a crash (nothing stopped) the same: the earlier executor's tasks are adopted", async () => {
    const a = await earlier({ keepTasksOnStop: false }, [5, 10]);
    const before = containers(a.backend);
    const b = await fakeExecutor({ backend: a.backend });
    expect(containers(b.backend)).toEqual(before);
    expect(b.executor.tasks()).toHaveLength(2);
    expect(b.executor.ledger.used()).toEqual({ cpuTenths: 15, memMB: 128, gpus: [] });
    await b.executor.shutdown();
  });

  it("removes what the config now refuses: an image no longer allowed, a microVM runtime renamed", async () => {
    const a = await earlier({ microVMRuntime: "runsc" }, [5]);
    await a.executor.execute({ image: "other:1", cpu: 0.5, mem: 64, runtime: "microVM" }, "vm");
    await a.executor.execute({ image: "other:1", cpu: 1, mem: 64 }, "x");
    await a.executor.shutdown();
    const b = await fakeExecutor({
      backend: a.backend,
      settings: { allowedImages: ["echo:1"], microVMRuntime: "kata" },
    });
    expect(b.executor.tasks().map((t) => [t.image, t.cpu])).toEqual([["echo:1", 0.5]]);
    expect(b.backend.containers()).toHaveLength(1);
    const why = b.logger.records
      .filter((l) => l.msg.startsWith("Not adopting"))
      .map((l) => String(l.fields.reason));
    expect(why.some((w) => w.includes("not in allowed_images"))).toBe(true);
    await b.executor.shutdown();
  });

  it("a capacity that no longer holds them all: the most recently started are adopted, the least recent removed", async () => {
    const a = await earlier({}, [10, 15, 5]); // started in this order
    await a.executor.shutdown();
    const b = await fakeExecutor({ backend: a.backend, settings: { cpu: 2 } });
    // 0.5 (newest) and 1.5 fit in 2 cores; 1 (oldest) does not.
    expect(
      b.executor
        .tasks()
        .map((t) => t.cpu)
        .sort(),
    ).toEqual([0.5, 1.5]);
    expect(b.executor.ledger.used().cpuTenths).toBe(20);
    expect(b.backend.containers()).toHaveLength(2);
    await b.executor.shutdown();
  });

  it("removes an exited container, one still starting (no mark seen), one that accepts no connection, and networks without a task", async () => {
    const a = await fakeExecutor({ settings: { ...isolated, keepTasksOnStop: true }, images });
    await a.executor.execute({ image: "echo:1", cpu: 0.5, mem: 64 }, "a");
    await a.executor.execute({ image: "echo:1", cpu: 1, mem: 64 }, "b");
    await a.executor.execute({ image: "echo:1", cpu: 1.5, mem: 64 }, "c");
    void a.executor.execute({ image: "slow:1", cpu: 0.5, mem: 64 }, "never ready").catch(() => {});
    await flush(20);
    // The earlier executor "crashes" now: the starting one is left running without its mark.
    const byCpu = (tenths: number) =>
      a.backend
        .containers()
        .find((c) => c.spec.nanoCpus === tenths * 1e8 && c.spec.image === "echo:1")!;
    a.backend.kill(byCpu(5).id, { exitCode: 1 });
    const deaf = byCpu(10).id;
    const kept = byCpu(15).id;
    const b = await fakeExecutor({
      backend: a.backend,
      settings: isolated,
      probe: async (endpoint) => {
        const c = a.backend.resolve(new URL(endpoint)).container;
        return c?.running === true && c.id !== deaf;
      },
    });
    expect(b.backend.containers().map((c) => c.id)).toEqual([kept]);
    expect(b.executor.tasks().map((t) => t.cpu)).toEqual([1.5]);
    // Left: the adopted task's network and the new run's spares; none of the earlier run's others.
    const earlierRun = a.backend.container(kept)!.spec.labels[LABELS.run];
    expect(
      b.backend
        .networks()
        .filter((n) => n.labels[LABELS.run] === earlierRun)
        .map((n) => n.name),
    ).toEqual([a.backend.container(kept)!.spec.network]);
    const why = b.logger.records
      .filter((l) => l.msg.startsWith("Not adopting"))
      .map((l) => String(l.fields.reason));
    expect(why.some((w) => w.includes("never saw it ready"))).toBe(true);
    expect(why.some((w) => w.includes("accepts a connection"))).toBe(true);
    expect(b.executor.ledger.reservations).toBe(1);
    await b.executor.shutdown();
    expect(b.backend.networks()).toEqual([]);
  });

  it("a GPU task keeps its own GPU: the reservation names the device its container was given", async () => {
    const gpus = fakeGpus(2);
    const a = await fakeExecutor({
      settings: { hasGpu: true, keepTasksOnStop: true },
      images,
      gpus,
    });
    await a.executor.execute(
      { image: "echo:1", cpu: 0.5, mem: 64, useGpu: true, gpuCount: 1 },
      "first",
    );
    await a.executor.execute(
      { image: "echo:1", cpu: 0.6, mem: 64, useGpu: true, gpuCount: 1 },
      "second",
    );
    const given = a.backend.containers().find((c) => c.spec.nanoCpus === 6e8)!.spec.gpus;
    expect(given).toEqual(["GPU-1"]);
    await a.executor.shutdown();
    a.backend.remove(a.backend.containers().find((c) => c.spec.nanoCpus === 5e8)!.id); // GPU 0's task is gone
    await flush();
    const b = await fakeExecutor({ backend: a.backend, settings: { hasGpu: true }, gpus });
    expect(b.executor.tasks().map((t) => t.cpu)).toEqual([0.6]);
    expect(b.executor.ledger.used().gpus).toEqual([1]);
    // A new GPU task gets the other device.
    await b.executor.execute(
      { image: "echo:1", cpu: 0.7, mem: 64, useGpu: true, gpuCount: 1 },
      "third",
    );
    expect(b.backend.created.at(-1)!.gpus).toEqual(["GPU-0"]);
    await b.executor.shutdown();
  });

  it("an engine too slow to list the leftovers does not keep the executor from serving: it starts after 20 s, saying so", async () => {
    const backend = new FakeBackend({ images });
    let release!: () => void;
    backend.before("list", () => new Promise<void>((r) => (release = r)), { once: true });
    const clock = new FakeClock();
    const logger = memoryLogger();
    let created: Executor | undefined;
    const creating = Executor.create({
      runtime: new DockerTasks({ backend, clock, logger, settings: BASE_SETTINGS }),
      client: new FakeTaskClient(backend),
      host: new FakeHost(8, 16_384),
      clock,
      logger,
      settings: BASE_SETTINGS,
      probe: fakeProbe(backend),
    }).then((e) => (created = e));
    await flush(20);
    clock.advance(19_000);
    await flush(20);
    expect(created).toBeUndefined();
    clock.advance(1_000);
    await creating;
    expect(
      logger.records.some(
        (r) =>
          r.level === "warn" && r.msg.includes("serving before an earlier run's tasks are adopted"),
      ),
    ).toBe(true);
    release();
    await created!.shutdown();
  });

  it("never takes another instance's containers", async () => {
    const a = await earlier({ instance: "other" }, [5]);
    await a.executor.shutdown();
    const b = await fakeExecutor({ backend: a.backend });
    expect(b.executor.tasks()).toEqual([]);
    expect(b.backend.containers()).toHaveLength(1);
    await b.executor.shutdown();
    expect(b.backend.containers()).toHaveLength(1);
    await a.backend.remove(a.backend.containers()[0]!.id);
  });

  it("a task whose limits are not its spec label's is not adopted", async () => {
    const a = await earlier({}, [5, 10]);
    await a.executor.shutdown();
    const forged = a.backend.containers()[0]!;
    (forged.spec as { nanoCpus: number }).nanoCpus = 4e9; // labels say 0.5 cores, the container has 4
    const b = await fakeExecutor({ backend: a.backend });
    expect(b.executor.tasks()).toHaveLength(1);
    expect(b.backend.container(forged.id)).toBeUndefined();
    await b.executor.shutdown();
  });

  it("an adopted task's idle clock starts at adoption", async () => {
    const a = await earlier({}, [5]);
    await a.executor.shutdown();
    const b = await fakeExecutor({ backend: a.backend, settings: { idleTimeoutMinutes: 1 } });
    b.clock.advance(50_000);
    await flush();
    expect(b.executor.tasks()).toHaveLength(1);
    b.clock.advance(20_000);
    await flush(20);
    expect(b.executor.tasks()).toHaveLength(0);
    await b.executor.shutdown();
  });

  it("prewarm counts adopted replicas: no new start for a key adopted warm, and the replica is marked prewarmed", async () => {
    const a = await earlier({}, [10]);
    await a.executor.shutdown();
    const created = a.backend.created.length;
    const b = await fakeExecutor({
      backend: a.backend,
      settings: { prewarm: [{ intent: { image: "echo:1", cpu: 1, mem: 64 }, count: 1 }] },
    });
    await flush();
    expect(b.backend.created).toHaveLength(created);
    expect(b.executor.metrics.prewarmStarts.value).toBe(0);
    expect(b.executor.tasks().map((t) => t.prewarmed)).toEqual([true]);
    await b.executor.shutdown();
  });
});

describe("keep_tasks_on_stop", () => {
  it("false (default): a stop removes every task and network", async () => {
    const a = await fakeExecutor({ settings: isolated, images });
    await a.executor.execute({ image: "echo:1", cpu: 1, mem: 64 }, "x");
    expect(await a.executor.shutdown()).toBe(0);
    expect(a.backend.containers()).toEqual([]);
    expect(a.backend.networks()).toEqual([]);
  });

  it("true: in-flight requests drain, a starting task goes, ready ones and their networks stay; spares go", async () => {
    let answer!: (r: { status: number; body: string }) => void;
    const slowAnswer = new Promise<{ status: number; body: string }>((r) => (answer = r));
    const a = await fakeExecutor({
      settings: { ...isolated, keepTasksOnStop: true },
      images: { ...images, "busy:1": { respond: () => slowAnswer } },
    });
    await a.executor.execute({ image: "echo:1", cpu: 1, mem: 64 }, "x");
    const busy = a.executor.execute({ image: "busy:1", cpu: 1, mem: 64 }, "in flight");
    void a.executor.execute({ image: "slow:1", cpu: 0.5, mem: 64 }, "starting").catch(() => {});
    await flush(20);
    let stopped = false;
    const stopping = a.executor.shutdown().then((n) => ((stopped = true), n));
    await flush(20);
    expect(stopped).toBe(false); // draining
    answer({ status: 200, body: "done" });
    expect(await busy).toBe("done");
    expect(await stopping).toBe(2);
    expect(
      a.backend
        .containers()
        .map((c) => c.spec.image)
        .sort(),
    ).toEqual(["busy:1", "echo:1"]);
    const kept = new Set(a.backend.containers().map((c) => c.spec.network));
    expect(
      a.backend
        .networks()
        .map((n) => n.name)
        .sort(),
    ).toEqual([...kept].sort());
    for (const c of a.backend.containers()) await a.backend.remove(c.id);
  });
});

describe("containers of this run the pool does not know", () => {
  it("one whose create answer was lost is removed at the next reconnection, within 15 s, and at the latest at stop", async () => {
    for (const when of ["reconnect", "timer", "stop"] as const) {
      const { executor, backend, clock } = await fakeExecutor({ images });
      await executor.execute({ image: "echo:1", cpu: 0.5, mem: 64 }, "x");
      const labels = backend.containers()[0]!.spec.labels;
      // What a create whose answer was cut leaves: a container with this run's labels, unknown to the pool.
      const orphan = await backend.create({
        ...backend.containers()[0]!.spec,
        name: "meca-unit-orphan",
        labels: { ...labels },
      });
      if (when !== "stop") {
        if (when === "reconnect") backend.endEvents();
        else clock.advance(15_000);
        for (let i = 0; i < 50 && backend.container(orphan); i++) await flush();
        expect(backend.container(orphan)).toBeUndefined();
        expect(executor.tasks()).toHaveLength(1); // the known one stays
        await executor.shutdown();
      } else {
        await executor.shutdown();
        expect(backend.container(orphan)).toBeUndefined();
      }
      expect(backend.containers()).toEqual([]);
    }
  });
});
