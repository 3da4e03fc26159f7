/** Every engine timeout runs on the Clock port: the fake clock drives them, with no real waiting. */
import { describe, expect, it } from "vitest";
import { deferred } from "../fakes/fake-backend.ts";
import { fakeExecutor, flush } from "../support/fake-executor.ts";

describe("engine timers on the fake clock", () => {
  it("ready timeout: a task that never prints the mark fails with TASK_NOT_READY and returns everything", async () => {
    const { executor, backend, clock } = await fakeExecutor({
      settings: { readyTimeoutMs: 20_000 },
      images: { "never:1": { ready: "never" } },
    });
    const r = executor.execute({ image: "never:1" }, "x");
    r.catch(() => {});
    await flush();
    clock.advance(19_999);
    await flush();
    expect(executor.tasks()).toMatchObject([{ state: "starting" }]);
    clock.advance(1);
    await expect(r).rejects.toMatchObject({ code: "TASK_NOT_READY" });
    await flush();
    expect(executor.ledger.reservations).toBe(0);
    expect(backend.containers()).toEqual([]);
  });

  it("request timeout: TASK_TIMEOUT when the clock passes it, and the replica serves again", async () => {
    const never = deferred<{ status: number; body: string }>();
    const { executor, clock } = await fakeExecutor({
      settings: { requestTimeoutMs: 30_000 },
      images: {
        "hang:1": { respond: (body) => (body === "hang" ? never.promise : { status: 200, body }) },
      },
    });
    const r = executor.execute({ image: "hang:1" }, "hang");
    r.catch(() => {});
    await flush();
    clock.advance(29_999);
    await flush();
    expect(executor.tasks()).toMatchObject([{ in_flight: 1 }]);
    clock.advance(1);
    await expect(r).rejects.toMatchObject({ code: "TASK_TIMEOUT" });
    expect(await executor.execute({ image: "hang:1" }, "fine")).toBe("fine");
  });

  it("queue timeout: NO_CAPACITY exactly when the clock passes it", async () => {
    const slow = deferred<{ status: number; body: string }>();
    const { executor, clock } = await fakeExecutor({
      settings: { cpu: 1, queueTimeoutMs: 3_000 },
      images: { "slow:1": { respond: () => slow.promise } },
    });
    const busy = executor.execute({ image: "slow:1", cpu: 1, mem: 64 }, "y");
    await flush();
    const waiting = executor.execute({ image: "echo:1", cpu: 1, mem: 64 }, "late");
    waiting.catch(() => {});
    await flush();
    clock.advance(2_999);
    await flush();
    expect(executor.queueLength).toBe(1);
    clock.advance(1);
    await expect(waiting).rejects.toMatchObject({ code: "NO_CAPACITY" });
    slow.resolve({ status: 200, body: "y" });
    await busy;
  });

  it("a request waiting for a start under way is not cut by the queue timeout", async () => {
    const { executor, backend, clock } = await fakeExecutor({
      settings: { queueTimeoutMs: 1_000, readyTimeoutMs: 60_000 },
      images: { "late:1": { ready: "never" } },
    });
    const r = executor.execute({ image: "late:1" }, "x");
    await flush();
    clock.advance(5_000);
    await flush();
    backend.log(backend.containers()[0]!.id, "meca-init-done");
    expect(await r).toBe("x");
  });

  it("drain timeout: pause stops waiting for a hung request when the clock passes it", async () => {
    const never = deferred<{ status: number; body: string }>();
    const { executor, clock } = await fakeExecutor({
      settings: { drainTimeoutMs: 10_000, requestTimeoutMs: 600_000 },
      images: { "hang:1": { respond: () => never.promise } },
    });
    const r = executor.execute({ image: "hang:1" }, "x");
    r.catch(() => {});
    await flush();
    let paused = false;
    const p = executor.pause().then(() => (paused = true));
    await flush();
    clock.advance(9_999);
    await flush();
    expect(paused).toBe(false);
    clock.advance(1);
    await p;
    expect(executor.tasks()).toEqual([]);
    expect(executor.ledger.reservations).toBe(0);
  });
});
