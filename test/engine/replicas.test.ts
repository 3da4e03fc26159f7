import { describe, expect, it } from "vitest";
import { deferred } from "../fakes/fake-backend.ts";
import { fakeExecutor, flush } from "../support/fake-executor.ts";

type Answer = { status: number; body: string };
const intent = (cpu: number, image = "work:1") => ({ image, cpu, mem: 64 });

/** An image whose requests are held until the test lets them go, one by one or all. */
function heldImage() {
  const held: { body: string; done: ReturnType<typeof deferred<Answer>> }[] = [];
  return {
    held,
    image: {
      respond: (body: string) => {
        const done = deferred<Answer>();
        held.push({ body, done });
        return done.promise;
      },
    },
    release(i = 0) {
      const [h] = held.splice(i, 1);
      h!.done.resolve({ status: 200, body: h!.body });
    },
  };
}

describe("replicas (task_concurrency >= 1)", () => {
  it("a burst of first requests starts only as many replicas as it needs at N each", async () => {
    const work = heldImage();
    const { executor, backend } = await fakeExecutor({
      settings: { taskConcurrency: 2, cpu: 8 },
      images: { "work:1": work.image },
    });
    const hold = deferred();
    backend.before("start", () => hold.promise, { once: true });
    const all = Promise.all([1, 2, 3, 4, 5].map((i) => executor.execute(intent(1), `r${i}`)));
    await flush();
    expect(backend.created).toHaveLength(3); // ceil(5 / 2)
    hold.resolve();
    await flush();
    expect(work.held).toHaveLength(5);
    expect(
      executor
        .tasks()
        .map((t) => t.in_flight)
        .sort(),
    ).toEqual([1, 2, 2]);
    while (work.held.length) work.release();
    expect(await all).toEqual(["r1", "r2", "r3", "r4", "r5"]);
  });

  it("no more replicas than the capacity allows; a waiting request takes the first slot that frees", async () => {
    const work = heldImage();
    const { executor, backend } = await fakeExecutor({
      settings: { taskConcurrency: 1, cpu: 2 },
      images: { "work:1": work.image },
    });
    const a = executor.execute(intent(1), "a");
    const b = executor.execute(intent(1), "b");
    const c = executor.execute(intent(1), "c");
    await flush();
    expect(backend.created).toHaveLength(2);
    expect(executor.queueLength).toBe(1);
    work.release(0); // a's replica frees its slot: c takes it, no third start
    expect(await a).toBe("a");
    await flush();
    expect(work.held.map((h) => h.body).sort()).toEqual(["b", "c"]);
    work.release();
    work.release();
    expect([await b, await c]).toEqual(["b", "c"]);
    expect(backend.created).toHaveLength(2);
  });

  it("a waiting request takes whichever slot frees first: here a finishing replica, before the new one is ready", async () => {
    const work = heldImage();
    const { executor, backend } = await fakeExecutor({
      settings: { taskConcurrency: 1, cpu: 2 },
      images: { "work:1": work.image },
    });
    const a = executor.execute(intent(1), "a");
    await flush();
    const hold = deferred();
    backend.before("start", () => hold.promise, { once: true });
    const b = executor.execute(intent(1), "b"); // every replica full: a second one starts, held
    await flush();
    expect(backend.created).toHaveLength(2);
    work.release(0); // a finishes first: b takes its slot
    expect(await a).toBe("a");
    await flush();
    expect(work.held.map((h) => h.body)).toEqual(["b"]);
    hold.resolve(); // the new replica comes up idle
    await flush();
    expect(
      executor
        .tasks()
        .map((t) => [t.state, t.in_flight])
        .sort(),
    ).toEqual([
      ["ready", 0],
      ["ready", 1],
    ]);
    work.release(0);
    expect(await b).toBe("b");
  });

  it("takes the least busy ready replica with a free slot", async () => {
    const work = heldImage();
    const { executor } = await fakeExecutor({
      settings: { taskConcurrency: 3, cpu: 8 },
      images: { "work:1": work.image },
    });
    const first = [executor.execute(intent(1), "r1")];
    await flush();
    for (const i of [2, 3, 4]) first.push(executor.execute(intent(1), `r${i}`));
    await flush();
    expect(
      executor
        .tasks()
        .map((t) => t.in_flight)
        .sort(),
    ).toEqual([1, 3]); // the first replica was full
    work.release(0);
    await flush();
    expect(
      executor
        .tasks()
        .map((t) => t.in_flight)
        .sort(),
    ).toEqual([1, 2]);
    const fifth = executor.execute(intent(1), "r5");
    await flush();
    expect(
      executor
        .tasks()
        .map((t) => t.in_flight)
        .sort(),
    ).toEqual([2, 2]); // not [1, 3]
    while (work.held.length) work.release();
    await Promise.all([...first, fifth]);
  });

  it("when every replica is full, starts one by evicting idle tasks of other keys, least recently used first", async () => {
    const work = heldImage();
    const { executor, backend } = await fakeExecutor({
      settings: { taskConcurrency: 1, cpu: 2 },
      images: { "work:1": work.image, "other:1": {} },
    });
    await executor.execute(intent(1, "other:1"), "o1"); // idle, 1 core
    const a = executor.execute(intent(1), "a");
    const b = executor.execute(intent(1), "b"); // needs a second replica: evicts other:1
    await flush();
    expect(
      executor
        .tasks()
        .map((t) => t.image)
        .sort(),
    ).toEqual(["work:1", "work:1"]);
    expect(backend.calls.filter((c) => c.method === "remove")).toHaveLength(1);
    while (work.held.length) work.release();
    await Promise.all([a, b]);
  });

  it("at max_replicas a request waits for a slot, then NO_CAPACITY after the queue timeout", async () => {
    const work = heldImage();
    const { executor, backend, clock } = await fakeExecutor({
      settings: { taskConcurrency: 1, maxReplicas: 1, queueTimeoutMs: 1_000 },
      images: { "work:1": work.image },
    });
    const a = executor.execute(intent(1), "a");
    await flush();
    const b = executor.execute(intent(1), "b");
    await flush();
    expect(backend.created).toHaveLength(1);
    clock.advance(1_000);
    await expect(b).rejects.toMatchObject({
      code: "NO_CAPACITY",
      message: expect.stringContaining("every replica of the task is busy"),
    });
    work.release();
    expect(await a).toBe("a");
  });

  it("waiting for a slot is per key: another key's request is not held behind it", async () => {
    const work = heldImage();
    const { executor } = await fakeExecutor({
      settings: { taskConcurrency: 1, maxReplicas: 1 },
      images: { "work:1": work.image },
    });
    const a = executor.execute(intent(1), "a");
    await flush();
    const b = executor.execute(intent(1), "b"); // waits for a's slot
    expect(await executor.execute(intent(1, "echo:1"), "other")).toBe("other");
    work.release();
    await flush();
    work.release();
    expect([await a, await b]).toEqual(["a", "b"]);
  });

  it("the idle cleaner removes each replica when its own idle time runs out", async () => {
    const work = heldImage();
    const { executor, clock } = await fakeExecutor({
      settings: { taskConcurrency: 1, idleTimeoutMinutes: 1, requestTimeoutMs: 600_000 },
      images: { "work:1": work.image },
    });
    const a = executor.execute(intent(1), "a");
    const b = executor.execute(intent(1), "b");
    await flush();
    work.release(0);
    await a;
    clock.advance(40_000);
    work.release(0);
    await b;
    expect(executor.tasks()).toHaveLength(2);
    clock.advance(25_000); // the first replica has idled 65 s, the second 25 s
    await flush();
    expect(executor.tasks()).toHaveLength(1);
    clock.advance(40_000);
    await flush();
    expect(executor.tasks()).toEqual([]);
  });

  it("a failed start gives its error to the requests it was starting for, not to the others", async () => {
    const { executor, backend } = await fakeExecutor({ settings: { taskConcurrency: 1, cpu: 4 } });
    backend.before(
      "create",
      () => {
        throw new Error("no room at the inn");
      },
      { once: true },
    );
    const results = await Promise.allSettled(
      [1, 2, 3].map((i) => executor.execute(intent(1, "echo:1"), `r${i}`)),
    );
    expect(results.filter((r) => r.status === "rejected")).toHaveLength(1);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(2);
    expect(executor.ledger.used().cpuTenths).toBe(20);
  });
});
