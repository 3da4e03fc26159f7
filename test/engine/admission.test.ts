import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { Admission } from "../../src/engine/admission.ts";
import { ExceedsCapacityError, NoCapacityError, TaskStartError } from "../../src/engine/errors.ts";
import { Ledger } from "../../src/engine/ledger.ts";
import { EngineMetrics } from "../../src/engine/metrics.ts";
import type { EngineSettings } from "../../src/engine/settings.ts";
import { TaskPool } from "../../src/engine/task-pool.ts";
import type { Task } from "../../src/engine/task.ts";
import type { TaskSpec } from "../../src/engine/task-spec.ts";
import { FakeBackend } from "../fakes/fake-backend.ts";
import { FakeClock } from "../fakes/fake-clock.ts";
import { memoryLogger } from "../fakes/fake-logger.ts";
import { FakeTaskClient } from "../fakes/fake-task-client.ts";
import { DockerTasks } from "../../src/platform/docker/docker-tasks.ts";
import { BASE_SETTINGS, flush } from "../support/fake-executor.ts";

const spec = (image: string, cpuTenths = 10): TaskSpec => ({
  image,
  runtimeKind: "container",
  cpuTenths,
  memMB: 128,
  gpuCount: 0,
  sgx: false,
});

/** Admission over a real pool and ledger on the fakes; launches are recorded, and run only when a test says so. */
function line(
  o: Partial<EngineSettings> = {},
  cpuTenths = 20,
  x: { metrics?: false; ledger?: Ledger } = {},
) {
  let settings: EngineSettings = { ...BASE_SETTINGS, queueTimeoutMs: 1_000, ...o };
  const backend = new FakeBackend({ images: { "a:1": {}, "b:1": {} } });
  const clock = new FakeClock();
  const ledger = x.ledger ?? new Ledger({ cpuTenths, memMB: 4096, gpus: [] });
  const metrics = new EngineMetrics();
  const logger = memoryLogger();
  const pool = new TaskPool({
    runtime: new DockerTasks({ backend, clock, logger, settings: BASE_SETTINGS }),
    client: new FakeTaskClient(backend),
    clock,
    logger,
    ledger,
    settings: () => settings,
  });
  const launched: Task[] = [];
  const admission = new Admission({
    ledger,
    pool,
    clock,
    settings: () => settings,
    launch: (t) => launched.push(t),
    metrics: x.metrics === false ? undefined : metrics,
  });
  /** Starts the launched replicas; each becomes ready. */
  const ready = async () => {
    for (const t of launched.splice(0)) expect(await pool.launch(t)).toEqual({ kind: "ready" });
  };
  const outcomes = <T>(p: Promise<T>) => {
    const o: { value?: T; error?: unknown } = {};
    p.then(
      (v) => (o.value = v),
      (e) => (o.error = e),
    );
    return o;
  };
  return {
    admission,
    pool,
    ledger,
    clock,
    metrics,
    launched,
    ready,
    outcomes,
    set: (s: Partial<EngineSettings>) => (settings = { ...settings, ...s }),
  };
}

describe("Admission", () => {
  it("a start refused after its evictions: the waiters behind are never handed an evicted replica, and all are served once there is room", async () => {
    // A ledger that refuses the first reservation after evictions (as when the GPUs freed are no
    // longer in the capacity): the evictions have happened, the start has not.
    const ledger = new Ledger({ cpuTenths: 20, memMB: 4096, gpus: [] });
    const l = line({ taskConcurrency: 1 }, 20, { ledger });
    const a = l.outcomes(l.admission.wait("a", spec("a:1")));
    const b = l.outcomes(l.admission.wait("b", spec("b:1")));
    await l.ready();
    l.admission.run();
    await flush();
    const ra = a.value!;
    // The capacity is taken by two busy replicas; c (another key) and a second request of a's key wait.
    const c = l.outcomes(l.admission.wait("c", spec("a:1", 10)));
    const again = l.outcomes(l.admission.wait("a", spec("a:1")));
    expect(l.admission.queueLength).toBe(2);
    const reserve = ledger.tryReserve.bind(ledger);
    let refusals = 1;
    ledger.tryReserve = (want, exact) => (refusals-- > 0 ? undefined : reserve(want, exact));
    // a's request ends: c (first in line) evicts a's now idle replica and its reservation is refused;
    // the request of a's key behind it must not be handed the replica just evicted.
    ra.leave(l.clock.now());
    let run: unknown;
    try {
      l.admission.run();
    } catch (e) {
      run = e;
    }
    await flush();
    expect(run).toBeUndefined();
    expect(l.pool.byId(ra.id)).toBeUndefined();
    expect(again).toEqual({});
    expect(c).toEqual({});
    // Room again (b's request ends): c starts, and a's request gets a replica of its own key.
    b.value!.leave(l.clock.now());
    l.pool.remove(b.value!, "test: b done");
    l.admission.run();
    await l.ready();
    l.admission.run();
    await flush();
    expect(c.value?.key).toBe("c");
    expect(l.ledger.used().cpuTenths).toBeLessThanOrEqual(20);
    for (const t of l.pool.all()) t.leave(l.clock.now());
    l.admission.run();
    await l.ready();
    l.admission.run();
    await flush();
    expect(again.value?.key).toBe("a");
    expect(again.value).not.toBe(ra);
    expect(again.value?.state.kind).toBe("ready");
  });

  it("take() hands out a slot on a ready replica only when nobody of the key is in line", async () => {
    const l = line({ taskConcurrency: 1 });
    expect(l.admission.take("a", spec("a:1"))).toBeUndefined(); // no replica at all
    const first = l.outcomes(l.admission.wait("a", spec("a:1")));
    expect(l.launched).toHaveLength(1);
    await l.ready();
    l.admission.run();
    await flush();
    const task = first.value!;
    expect(task.inFlight).toBe(1);
    expect(l.admission.take("a", spec("a:1"))).toBeUndefined(); // its one slot is taken
    task.leave(l.clock.now());
    expect(l.admission.take("a", spec("a:1"))).toBe(task);
    task.leave(l.clock.now());
    // Someone of the key in line goes first (here: waiting for capacity behind a full ledger).
    l.ledger.tryReserve({ cpuTenths: 10, memMB: 0, gpuCount: 0 });
    const busy = l.admission.take("a", spec("a:1"))!;
    const queued = l.outcomes(l.admission.wait("a", spec("a:1")));
    busy.leave(l.clock.now());
    expect(l.admission.take("a", spec("a:1"))).toBeUndefined();
    l.admission.run();
    await flush();
    expect(queued.value).toBe(task);
  });

  it("an already aborted request never joins the line", async () => {
    const l = line();
    const ac = new AbortController();
    ac.abort(new Error("gone"));
    await expect(l.admission.wait("a", spec("a:1"), ac.signal)).rejects.toThrow("gone");
    expect([
      l.admission.queueLength,
      l.admission.queuedByKey().size,
      l.launched.length,
      l.ledger.reservations,
    ]).toEqual([0, 0, 0, 0]);
  });

  it("counts requests in line by key, and in queueLength only those not waiting for a start", async () => {
    const l = line({ taskConcurrency: 1, maxReplicas: 1 });
    const a1 = l.outcomes(l.admission.wait("a", spec("a:1")));
    await l.ready();
    l.admission.run();
    await flush();
    expect(a1.value?.inFlight).toBe(1);
    const a2 = l.outcomes(l.admission.wait("a", spec("a:1"))); // waits for the one replica's slot
    l.admission.wait("b", spec("b:1")).catch(() => {}); // its replica starts
    expect(l.launched.map((t) => t.key)).toEqual(["b"]);
    expect(l.admission.queuedByKey()).toEqual(
      new Map([
        ["a", 1],
        ["b", 1],
      ]),
    );
    expect(l.admission.queueLength).toBe(1);
    expect(l.metrics.queued.value).toBe(1);
    l.admission.run();
    expect(l.metrics.queued.value).toBe(1); // counted once however often the line runs
    a1.value!.leave(l.clock.now());
    l.admission.run();
    await flush();
    expect(a2.value).toBe(a1.value);
    expect([l.admission.queueLength, l.admission.queuedByKey()]).toEqual([0, new Map([["b", 1]])]);
    l.admission.rejectAll(new Error("stop"));
  });

  it("starts go one after the other across keys: a request behind one waiting for capacity waits too", async () => {
    const l = line({}, 10);
    l.ledger.tryReserve({ cpuTenths: 5, memMB: 0, gpuCount: 0 });
    const big = l.outcomes(l.admission.wait("a", spec("a:1", 10)));
    const small = l.outcomes(l.admission.wait("b", spec("b:1", 5)));
    expect(l.launched).toEqual([]);
    expect(l.admission.queueLength).toBe(2);
    expect(l.metrics.queued.value).toBe(2);
    l.admission.rejectAll(new Error("stop"));
    await flush();
    expect([(big.error as Error).message, (small.error as Error).message]).toEqual([
      "stop",
      "stop",
    ]);
    expect(l.admission.queueLength).toBe(0);
  });

  it("refuses a request that no longer fits the whole capacity, and lets the next one start", async () => {
    const l = line({}, 20);
    l.ledger.tryReserve({ cpuTenths: 20, memMB: 0, gpuCount: 0 });
    const big = l.outcomes(l.admission.wait("a", spec("a:1", 20)));
    const small = l.outcomes(l.admission.wait("b", spec("b:1", 5)));
    l.ledger.setCapacity({ cpuTenths: 30, memMB: 4096, gpus: [] });
    expect(l.launched).toEqual([]);
    l.ledger.setCapacity({ cpuTenths: 10, memMB: 4096, gpus: [] });
    const [held] = [l.ledger.used()];
    expect(held.cpuTenths).toBe(20);
    l.admission.run();
    await flush();
    expect(big.error).toBeInstanceOf(ExceedsCapacityError);
    expect((big.error as Error).message).toBe(
      'The task "a:1" no longer fits the capacity for tasks: it was reduced while the request waited',
    );
    expect(small.error).toBeUndefined();
    expect(l.admission.queuedByKey()).toEqual(new Map([["b", 1]]));
    l.admission.rejectAll(new Error("stop"));
  });

  it("evicts idle replicas of other keys to start one, and counts each eviction", async () => {
    const l = line({}, 20);
    const a = l.outcomes(l.admission.wait("a", spec("a:1", 20)));
    await l.ready();
    l.admission.run();
    await flush();
    a.value!.leave(l.clock.now());
    const b = l.outcomes(l.admission.wait("b", spec("b:1", 10)));
    expect(l.pool.replicas("a")).toEqual([]);
    expect(a.value!.state.kind).toBe("removing");
    expect(l.metrics.evictions.value).toBe(1);
    expect(l.launched.map((t) => t.key)).toEqual(["b"]);
    expect(l.admission.queueLength).toBe(0);
    await l.ready();
    l.admission.run();
    await flush();
    expect(b.value?.key).toBe("b");
  });

  it("a queue timeout says what the request waited for, in seconds, and counts it", async () => {
    const l = line({ taskConcurrency: 1, maxReplicas: 1, queueTimeoutMs: 1_500 }, 10);
    const first = l.outcomes(l.admission.wait("a", spec("a:1")));
    await l.ready();
    l.admission.run();
    await flush();
    expect(first.value).toBeDefined();
    const slot = l.outcomes(l.admission.wait("a", spec("a:1")));
    const capacity = l.outcomes(l.admission.wait("b", spec("b:1")));
    l.clock.advance(1_499);
    await flush();
    expect([slot.error, capacity.error]).toEqual([undefined, undefined]);
    l.clock.advance(1);
    await flush();
    expect(slot.error).toBeInstanceOf(NoCapacityError);
    expect((slot.error as Error).message).toBe(
      "No capacity for the task within the queue timeout of 1.5 s: every replica of the task is busy",
    );
    expect((capacity.error as Error).message).toBe(
      "No capacity for the task within the queue timeout of 1.5 s: every task is busy",
    );
    expect(l.metrics.queueTimeouts.value).toBe(2);
    expect(l.admission.queueLength).toBe(0);
    expect(l.clock.pending).toBe(0);
  });

  it("a request whose replica is starting outlasts the queue timeout; once served, its timer is gone", async () => {
    const l = line({ queueTimeoutMs: 1_000 });
    const p = l.outcomes(l.admission.wait("a", spec("a:1")));
    l.clock.advance(5_000);
    await flush();
    expect(p.error).toBeUndefined();
    expect(l.metrics.queueTimeouts.value).toBe(0);
    expect(l.clock.pending).toBe(1);
    await l.ready();
    l.admission.run();
    await flush();
    expect(p.value?.key).toBe("a");
    expect(l.clock.pending).toBe(0);
  });

  it("an abort takes the request out of line and lets the one behind it start", async () => {
    const l = line({}, 10);
    const ac = new AbortController();
    const first = l.outcomes(l.admission.wait("a", spec("a:1"), ac.signal));
    const ahead = l.launched.splice(0); // a's replica is starting and holds the capacity
    expect(ahead).toHaveLength(1);
    const second = l.outcomes(l.admission.wait("b", spec("b:1")));
    expect(l.admission.queueLength).toBe(1);
    l.pool.remove(ahead[0]!, "test");
    ac.abort(new Error("client left"));
    await flush();
    expect((first.error as Error).message).toBe("client left");
    expect(l.launched.map((t) => t.key)).toEqual(["b"]);
    expect(second.error).toBeUndefined();
    expect(l.admission.queuedByKey()).toEqual(new Map([["b", 1]]));
  });

  it("a request settled otherwise no longer listens to its signal", async () => {
    const l = line();
    const ac = new AbortController();
    const p = l.outcomes(l.admission.wait("a", spec("a:1"), ac.signal));
    l.admission.rejectAll(new Error("paused"));
    const other = l.outcomes(l.admission.wait("a", spec("a:1")));
    ac.abort(new Error("late"));
    await flush();
    expect((p.error as Error).message).toBe("paused");
    expect(other.error).toBeUndefined();
    expect(l.admission.queuedByKey()).toEqual(new Map([["a", 1]]));
  });

  it("replicas off: a failed start fails every request in line for the key, none of another key", async () => {
    const l = line({ taskConcurrency: 0 });
    const a = [
      l.outcomes(l.admission.wait("a", spec("a:1"))),
      l.outcomes(l.admission.wait("a", spec("a:1"))),
    ];
    const b = l.outcomes(l.admission.wait("b", spec("b:1")));
    const error = new TaskStartError("no port");
    const [ta] = l.launched.splice(0, 1);
    l.pool.remove(ta!, "failed");
    l.admission.startFailed("a", error);
    await flush();
    expect(a.map((o) => o.error)).toEqual([error, error]);
    expect(b.error).toBeUndefined();
    expect(l.admission.queuedByKey()).toEqual(new Map([["b", 1]]));
  });

  it("replicas off: a failed start while another replica of the key starts fails nobody", async () => {
    const l = line({ taskConcurrency: 0 });
    const a = l.outcomes(l.admission.wait("a", spec("a:1")));
    l.admission.startFailed("a", new TaskStartError("no port"));
    await flush();
    expect(a.error).toBeUndefined();
    l.admission.rejectAll(new Error("stop"));
  });

  it("replicas on: a failed start fails the N requests it was starting for, not those other starts cover", async () => {
    const l = line({ taskConcurrency: 2 }, 40);
    const reqs = Array.from({ length: 5 }, () => l.outcomes(l.admission.wait("a", spec("a:1"))));
    expect(l.launched).toHaveLength(3); // 2 + 2 + 1
    const [failed] = l.launched.splice(0, 1);
    l.pool.remove(failed!, "failed");
    const error = new TaskStartError("no port");
    l.admission.startFailed("a", error);
    await flush();
    // Two starting replicas still cover the first four in line; the fifth and no more gets the error.
    expect(reqs.map((r) => r.error === error)).toEqual([false, false, false, false, true]);
    l.admission.startFailed("a", error);
    await flush();
    expect(reqs.filter((r) => r.error === error)).toHaveLength(1);
    // With no start left, N of them fail per failed start.
    for (const t of l.launched.splice(0)) l.pool.remove(t, "failed");
    l.admission.startFailed("a", error);
    await flush();
    expect(reqs.map((r) => r.error === error)).toEqual([true, true, false, false, true]);
    l.admission.rejectAll(new Error("stop"));
  });

  it("a request of another key in line does not hold back the fast path", async () => {
    const l = line({}, 10);
    const a = l.outcomes(l.admission.wait("a", spec("a:1")));
    await l.ready();
    l.admission.run();
    await flush();
    const b = l.outcomes(l.admission.wait("b", spec("b:1"))); // "a" is busy and holds the whole capacity: "b" waits
    expect(l.admission.queuedByKey()).toEqual(new Map([["b", 1]]));
    expect(b.value).toBeUndefined();
    expect(l.admission.take("a", spec("a:1"))).toBe(a.value);
  });

  it("an evicted replica says why it was removed", async () => {
    const l = line({}, 10);
    const a = l.outcomes(l.admission.wait("a", spec("a:1")));
    await l.ready();
    l.admission.run();
    await flush();
    a.value!.leave(l.clock.now());
    l.admission.wait("b", spec("b:1")).catch(() => {});
    expect(a.value!.state).toMatchObject({
      kind: "removing",
      reason: "evicted to make room for another task",
    });
  });

  it("works without metrics: evictions, waits and queue timeouts", async () => {
    const l = line({ queueTimeoutMs: 1_000 }, 10, { metrics: false });
    const a = l.outcomes(l.admission.wait("a", spec("a:1")));
    await l.ready();
    l.admission.run();
    await flush();
    const b = l.outcomes(l.admission.wait("b", spec("b:1"))); // a is busy: b waits for capacity
    expect(l.admission.queueLength).toBe(1);
    l.clock.advance(1_000);
    await flush();
    expect(b.error).toBeInstanceOf(NoCapacityError);
    a.value!.leave(l.clock.now());
    const c = l.outcomes(l.admission.wait("b", spec("b:1"))); // a is idle now: evicted for b
    expect(a.value!.state.kind).toBe("removing");
    await l.ready();
    l.admission.run();
    await flush();
    expect(c.value?.key).toBe("b");
  });

  it("when the ledger refuses a start that the view allowed, the request waits for capacity and starts behind it wait too", async () => {
    class RefusingOnce extends Ledger {
      refusals = 0;
      override tryReserve(want: Parameters<Ledger["tryReserve"]>[0]) {
        if (this.refusals > 0) {
          this.refusals--;
          return undefined;
        }
        return super.tryReserve(want);
      }
    }
    const ledger = new RefusingOnce({ cpuTenths: 20, memMB: 4096, gpus: [] });
    const l = line({}, 20, { ledger });
    const full = ledger.tryReserve({ cpuTenths: 20, memMB: 0, gpuCount: 0 })!;
    const a = l.outcomes(l.admission.wait("a", spec("a:1")));
    const b = l.outcomes(l.admission.wait("b", spec("b:1")));
    ledger.release(full);
    ledger.refusals = 1;
    l.admission.run(); // "a" is refused its reservation and waits for capacity: "b" does not start before it
    expect(l.launched).toEqual([]);
    expect([l.admission.queueLength, l.metrics.queued.value]).toEqual([2, 2]);
    l.admission.run();
    expect(l.launched.map((t) => t.key)).toEqual(["a", "b"]);
    expect(l.admission.queueLength).toBe(0);
    await l.ready();
    l.admission.run();
    await flush();
    expect([a.value?.key, b.value?.key]).toEqual(["a", "b"]);
  });

  it("replicas on: a ready replica of the key does not cover the requests of a failed start", async () => {
    const l = line({ taskConcurrency: 1 }, 40);
    const first = l.outcomes(l.admission.wait("a", spec("a:1")));
    await l.ready();
    l.admission.run();
    await flush();
    expect(first.value?.inFlight).toBe(1);
    const second = l.outcomes(l.admission.wait("a", spec("a:1"))); // the ready replica is full: a second starts
    const [starting] = l.launched.splice(0);
    expect(starting).toBeDefined();
    l.pool.remove(starting!, "failed");
    const error = new TaskStartError("no port");
    l.admission.startFailed("a", error);
    await flush();
    expect(second.error).toBe(error);
  });

  it("a request that leaves the line no longer listens to its client's signal", async () => {
    const l = line({ queueTimeoutMs: 1_000 }, 10);
    const a = l.outcomes(l.admission.wait("a", spec("a:1")));
    await l.ready();
    l.admission.run();
    await flush();
    const signals = [new AbortController(), new AbortController(), new AbortController()];
    for (const ac of signals) l.admission.wait("b", spec("b:1"), ac.signal).catch(() => {});
    expect(signals.map((ac) => getEventListeners(ac.signal, "abort").length)).toEqual([1, 1, 1]);
    signals[0]!.abort(new Error("left")); // by abort
    l.clock.advance(1_000); // by queue timeout
    await flush();
    expect(a.value).toBeDefined();
    expect(signals.map((ac) => getEventListeners(ac.signal, "abort").length)).toEqual([0, 0, 0]);
    const served = new AbortController();
    a.value!.leave(l.clock.now());
    expect(l.admission.take("a", spec("a:1"))).toBe(a.value);
    a.value!.leave(l.clock.now());
    const c = l.outcomes(l.admission.wait("b", spec("b:1"), served.signal)); // evicts a, starts b
    await l.ready();
    l.admission.run();
    await flush();
    expect(c.value?.key).toBe("b"); // by being served
    expect(getEventListeners(served.signal, "abort")).toHaveLength(0);
  });
});
