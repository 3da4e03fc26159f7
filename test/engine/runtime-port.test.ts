/**
 * The engine on the port alone: an Executor over the in-memory TaskRuntime (no Docker, no
 * container backend) serves tasks, answers a task's failure in the client's words, and adopts an
 * earlier run's tasks from the runtime's facts: what the port promises is all it relies on.
 */
import { describe, expect, it } from "vitest";
import { ContainerExitedError, TaskStartError } from "../../src/engine/errors.ts";
import { Executor } from "../../src/engine/executor.ts";
import { FakeClock } from "../fakes/fake-clock.ts";
import { FakeHost } from "../fakes/fake-host.ts";
import { memoryLogger } from "../fakes/fake-logger.ts";
import { FakeTaskEngine, FakeTasks } from "../fakes/fake-tasks.ts";
import { BASE_SETTINGS, flush, settleWithClock } from "../support/fake-executor.ts";

function executorOn(engine: FakeTaskEngine, settings = {}) {
  const clock = new FakeClock();
  const runtime = new FakeTasks(engine);
  return Executor.create({
    runtime,
    client: engine.client(),
    host: new FakeHost(8, 16_384),
    clock,
    logger: memoryLogger(),
    settings: { ...BASE_SETTINGS, ...settings },
    probe: async (endpoint) =>
      engine.tasks.get(new URL(endpoint).pathname.slice(1))?.status === "running",
  }).then((executor) => ({ executor, clock, runtime }));
}

describe("the engine over the in-memory TaskRuntime", () => {
  it("serves a task on one warm replica, and answers a task that exits before it is ready naming its image and exit code", async () => {
    const engine = new FakeTaskEngine({
      "echo:1": {},
      "crash:1": { ready: { exitCode: 3, lines: ["fatal: no model"] } },
    });
    const { executor } = await executorOn(engine);
    expect(await executor.execute({ image: "echo:1" }, "a")).toBe("a");
    expect(await executor.execute({ image: "echo:1" }, "b")).toBe("b");
    expect(engine.tasks.size).toBe(1);
    const err = await executor.execute({ image: "crash:1" }, "x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ContainerExitedError);
    expect((err as Error).message).toContain('Task "crash:1" exited with code 3');
    expect((err as Error).message).toContain("fatal: no model");
    expect(engine.tasks.size).toBe(1); // the crashed one is gone
    await executor.shutdown();
    expect(engine.tasks.size).toBe(0);
  });

  it("a task that never prints its mark fails at the ready timeout on the engine's clock, with its last lines, and leaves nothing", async () => {
    const engine = new FakeTaskEngine({ "slow:1": { ready: "never" } });
    const { executor, clock } = await executorOn(engine, { readyTimeoutMs: 5_000 });
    const err = await settleWithClock(
      executor.execute({ image: "slow:1" }, "x").catch((e: unknown) => e),
      clock,
      1_000,
    );
    expect(err).toBeInstanceOf(TaskStartError);
    expect((err as TaskStartError).code).toBe("TASK_NOT_READY");
    expect((err as Error).message).toContain("within the ready timeout of 5 s");
    await flush();
    expect(engine.tasks.size).toBe(0);
    expect(executor.ledger.used().cpuTenths).toBe(0);
    await executor.shutdown();
  });

  it("adopts an earlier run's ready task from the runtime's facts", async () => {
    const engine = new FakeTaskEngine({ "echo:1": {}, "slow:1": { ready: "never" } });
    const a = await executorOn(engine, { keepTasksOnStop: true });
    await a.executor.execute({ image: "echo:1", cpu: 0.5 }, "warm");
    expect(await a.executor.shutdown()).toBe(1);
    const [kept] = [...engine.tasks.keys()];
    const b = await executorOn(engine);
    await flush(20);
    expect(b.executor.tasks().map((t) => [t.container_id, t.state])).toEqual([[kept, "ready"]]);
    expect(b.executor.ledger.used().cpuTenths).toBe(5);
    expect(await b.executor.execute({ image: "echo:1", cpu: 0.5 }, "again")).toBe("again");
    expect(engine.tasks.size).toBe(1);
    await b.executor.shutdown();
  });
});
