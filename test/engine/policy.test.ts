import { describe, expect, it } from "vitest";
import {
  decide,
  pickEvictions,
  pickExpired,
  shortage,
  type SchedulingView,
  type TaskView,
} from "../../src/engine/policy.ts";

const t = (id: string, lastUsed: number, o: Partial<TaskView> = {}): TaskView => ({
  id,
  key: id,
  state: "ready",
  inFlight: 0,
  lastUsed,
  cpuTenths: 10,
  memMB: 128,
  gpuCount: 0,
  ...o,
});

const want = { cpuTenths: 10, memMB: 128, gpuCount: 0 };
const view = (o: Partial<SchedulingView> = {}): SchedulingView => ({
  concurrency: 0,
  maxReplicas: 0,
  capacity: { cpuTenths: 40, memMB: 4096, gpuCount: 0 },
  free: { cpuTenths: 40, memMB: 4096, gpuCount: 0 },
  tasks: [],
  aheadForKey: 0,
  capacityBlocked: false,
  ...o,
});
const req = { key: "k", want };

describe("decide()", () => {
  it("refuses an intent larger than the whole capacity (it shrank while the request waited)", () => {
    expect(decide(view({ capacity: { cpuTenths: 5, memMB: 4096, gpuCount: 0 } }), req)).toEqual({
      kind: "refuse",
      reason: "exceeds_capacity",
    });
    expect(decide(view(), { key: "k", want: { ...want, gpuCount: 1 } })).toEqual({
      kind: "refuse",
      reason: "exceeds_capacity",
    });
  });

  it("replicas off (0): reuses the key's one replica whatever its load, waits for its start, starts only one", () => {
    const busy = t("r1", 5, { key: "k", inFlight: 9 });
    expect(decide(view({ tasks: [busy] }), req)).toEqual({ kind: "reuse", replica: "r1" });
    const starting = t("r1", 5, { key: "k", state: "starting" });
    expect(decide(view({ tasks: [starting], aheadForKey: 7 }), req)).toEqual({
      kind: "wait",
      for: "start",
    });
    expect(decide(view(), req)).toEqual({ kind: "start", evict: [] });
  });

  it("replicas on: takes the least busy ready replica with a free slot, the most recently used among equals", () => {
    const tasks = [
      t("a", 1, { key: "k", inFlight: 2 }),
      t("b", 2, { key: "k", inFlight: 1 }),
      t("c", 3, { key: "k", inFlight: 1 }),
      t("d", 9, { key: "other" }),
    ];
    expect(decide(view({ concurrency: 3, tasks }), req)).toEqual({ kind: "reuse", replica: "c" });
    expect(decide(view({ concurrency: 2, tasks: tasks.slice(0, 1) }), req)).toEqual({
      kind: "start",
      evict: [],
    });
  });

  it("replicas on: a burst starts only as many replicas as it needs at N each", () => {
    const starting = [t("s1", 0, { key: "k", state: "starting" })];
    expect(decide(view({ concurrency: 2, tasks: starting, aheadForKey: 1 }), req)).toEqual({
      kind: "wait",
      for: "start",
    });
    expect(decide(view({ concurrency: 2, tasks: starting, aheadForKey: 2 }), req)).toEqual({
      kind: "start",
      evict: [],
    });
  });

  it("replicas on: at max_replicas it waits for a slot (or for a start under way)", () => {
    const full = [t("a", 1, { key: "k", inFlight: 1 })];
    expect(decide(view({ concurrency: 1, maxReplicas: 1, tasks: full }), req)).toEqual({
      kind: "wait",
      for: "slot",
    });
    const starting = [...full, t("s", 1, { key: "k", state: "starting" })];
    expect(
      decide(view({ concurrency: 1, maxReplicas: 2, tasks: starting, aheadForKey: 1 }), req),
    ).toEqual({ kind: "wait", for: "start" });
  });

  it("waits behind an earlier request that waits for capacity (one FIFO across keys)", () => {
    expect(decide(view({ capacityBlocked: true }), req)).toEqual({ kind: "wait", for: "capacity" });
    // ...but a free slot is taken at once: slots are per key, not in the capacity line.
    expect(decide(view({ capacityBlocked: true, tasks: [t("r", 1, { key: "k" })] }), req)).toEqual({
      kind: "reuse",
      replica: "r",
    });
  });

  it("starts after evicting idle replicas of other keys, least recently used first, never busy ones", () => {
    const tasks = [t("new", 30), t("old", 10), t("busy", 1, { inFlight: 1 }), t("mid", 20)];
    const free = { cpuTenths: 5, memMB: 4096, gpuCount: 0 };
    expect(decide(view({ free, tasks }), req)).toEqual({ kind: "start", evict: ["old"] });
    expect(decide(view({ free, tasks }), { key: "k", want: { ...want, cpuTenths: 30 } })).toEqual({
      kind: "start",
      evict: ["old", "mid", "new"],
    });
  });

  it("waits for capacity when even every idle replica would not be enough", () => {
    const tasks = [t("busy", 1, { inFlight: 1 }), t("idle", 2)];
    expect(
      decide(view({ free: { cpuTenths: 0, memMB: 4096, gpuCount: 0 }, tasks }), {
        key: "k",
        want: { ...want, cpuTenths: 20 },
      }),
    ).toEqual({ kind: "wait", for: "capacity" });
    // After a shrink the free amount is negative: the same rule holds.
    expect(
      decide(
        view({ free: { cpuTenths: -10, memMB: 4096, gpuCount: 0 }, tasks: [t("idle", 2)] }),
        req,
      ),
    ).toEqual({ kind: "wait", for: "capacity" });
  });
});

describe("pickEvictions()", () => {
  it("evicts least recently used idle tasks first, only as many as needed", () => {
    const tasks = [t("a", 30), t("b", 10), t("c", 20)];
    expect(pickEvictions(tasks, { cpuTenths: 15, memMB: 0, gpuCount: 0 })).toEqual(["b", "c"]);
    expect(pickEvictions(tasks, { cpuTenths: 5, memMB: 0, gpuCount: 0 })).toEqual(["b"]);
  });

  it("never picks a busy or starting task", () => {
    const tasks = [
      t("busy", 1, { inFlight: 1 }),
      t("starting", 2, { state: "starting" }),
      t("idle", 3),
    ];
    expect(pickEvictions(tasks, { cpuTenths: 10, memMB: 0, gpuCount: 0 })).toEqual(["idle"]);
    expect(pickEvictions(tasks, { cpuTenths: 20, memMB: 0, gpuCount: 0 })).toBeUndefined();
    expect(
      pickEvictions(tasks, { cpuTenths: 20, memMB: 0, gpuCount: 0 }, { bestEffort: true }),
    ).toEqual(["idle"]);
  });

  it("skips idle tasks that free nothing still missing", () => {
    const tasks = [t("cpu-only", 1), t("gpu", 2, { gpuCount: 1 })];
    expect(pickEvictions(tasks, { cpuTenths: 0, memMB: 0, gpuCount: 1 })).toEqual(["gpu"]);
  });
});

describe("shortage()", () => {
  it("is what is missing beyond the free amount, or undefined", () => {
    expect(shortage(want, { cpuTenths: 10, memMB: 128, gpuCount: 0 })).toBeUndefined();
    expect(shortage(want, { cpuTenths: 4, memMB: 200, gpuCount: 0 })).toEqual({
      cpuTenths: 6,
      memMB: 0,
      gpuCount: 0,
    });
  });
});

describe("pickExpired()", () => {
  it("returns idle replicas used at or before the cutoff, oldest first, each by its own time", () => {
    const tasks = [
      t("new", 100),
      t("old", 10),
      t("mid", 50),
      t("busy-old", 1, { inFlight: 2 }),
      t("r2", 40, { key: "old" }),
    ];
    expect(pickExpired(tasks, 50)).toEqual(["old", "r2", "mid"]);
  });
});

describe("decide() boundaries", () => {
  it("an intent exactly the size of the capacity is not refused, in any dimension", () => {
    const capacity = { cpuTenths: 10, memMB: 128, gpuCount: 1 };
    for (const w of [want, { ...want, gpuCount: 1 }]) {
      expect(decide(view({ capacity, free: capacity }), { key: "k", want: w })).toEqual({
        kind: "start",
        evict: [],
      });
    }
    expect(decide(view({ capacity: { ...capacity, memMB: 127 } }), req)).toEqual({
      kind: "refuse",
      reason: "exceeds_capacity",
    });
  });

  it("looks only at replicas of the request's key", () => {
    const others = [t("o1", 1, { key: "other", state: "starting" }), t("o2", 2, { key: "other" })];
    expect(decide(view({ tasks: others }), req)).toEqual({ kind: "start", evict: [] });
    expect(decide(view({ concurrency: 1, maxReplicas: 1, tasks: others }), req)).toEqual({
      kind: "start",
      evict: [],
    });
  });

  it("replicas on: a replica with all N slots taken is not reused", () => {
    const full = [t("a", 1, { key: "k", inFlight: 2 })];
    expect(decide(view({ concurrency: 2, tasks: full }), req)).toEqual({
      kind: "start",
      evict: [],
    });
    expect(decide(view({ concurrency: 3, tasks: full }), req)).toEqual({
      kind: "reuse",
      replica: "a",
    });
  });

  it("replicas on: the least busy wins whatever the order, and the most recently used among equals", () => {
    const a = t("a", 9, { key: "k", inFlight: 2 });
    const b = t("b", 1, { key: "k", inFlight: 1 });
    expect(decide(view({ concurrency: 4, tasks: [a, b] }), req)).toEqual({
      kind: "reuse",
      replica: "b",
    });
    expect(decide(view({ concurrency: 4, tasks: [b, a] }), req)).toEqual({
      kind: "reuse",
      replica: "b",
    });
    const c = t("c", 5, { key: "k", inFlight: 1 });
    expect(decide(view({ concurrency: 4, tasks: [c, b] }), req)).toEqual({
      kind: "reuse",
      replica: "c",
    });
    expect(decide(view({ concurrency: 4, tasks: [b, c] }), req)).toEqual({
      kind: "reuse",
      replica: "c",
    });
    // A full tie keeps the first listed, the older replica, so the choice does not flap.
    expect(
      decide(
        view({ concurrency: 4, tasks: [t("x", 5, { key: "k" }), t("y", 5, { key: "k" })] }),
        req,
      ),
    ).toEqual({ kind: "reuse", replica: "x" });
    // Replicas off: the one replica whatever its load.
    expect(decide(view({ tasks: [a] }), req)).toEqual({ kind: "reuse", replica: "a" });
  });

  it("a replica that is neither starting nor ready counts for nothing", () => {
    const leaving = [t("x", 1, { key: "k", state: "removing" })];
    expect(decide(view({ tasks: leaving }), req)).toEqual({ kind: "start", evict: [] });
    expect(decide(view({ concurrency: 1, maxReplicas: 1, tasks: leaving }), req)).toEqual({
      kind: "start",
      evict: [],
    });
  });

  it("replicas off: one starting replica serves every request in line for the key", () => {
    const starting = [t("s", 1, { key: "k", state: "starting" })];
    expect(decide(view({ tasks: starting }), req)).toEqual({ kind: "wait", for: "start" });
    expect(decide(view({ tasks: starting, aheadForKey: 1000 }), req)).toEqual({
      kind: "wait",
      for: "start",
    });
  });

  it("replicas on: each starting replica takes N of the requests in line", () => {
    const starting = [
      t("s1", 0, { key: "k", state: "starting" }),
      t("s2", 0, { key: "k", state: "starting" }),
    ];
    expect(decide(view({ concurrency: 3, tasks: starting, aheadForKey: 5 }), req)).toEqual({
      kind: "wait",
      for: "start",
    });
    expect(decide(view({ concurrency: 3, tasks: starting, aheadForKey: 6 }), req)).toEqual({
      kind: "start",
      evict: [],
    });
    expect(decide(view({ concurrency: 3, tasks: [], aheadForKey: 0 }), req)).toEqual({
      kind: "start",
      evict: [],
    });
  });

  it("replicas on: max_replicas 0 means as many as capacity allows; a limit is reached at exactly max", () => {
    const full = [t("a", 1, { key: "k", inFlight: 1 }), t("b", 2, { key: "k", inFlight: 1 })];
    expect(decide(view({ concurrency: 1, maxReplicas: 0, tasks: full }), req)).toEqual({
      kind: "start",
      evict: [],
    });
    expect(decide(view({ concurrency: 1, maxReplicas: 3, tasks: full }), req)).toEqual({
      kind: "start",
      evict: [],
    });
    expect(decide(view({ concurrency: 1, maxReplicas: 2, tasks: full }), req)).toEqual({
      kind: "wait",
      for: "slot",
    });
  });

  it("starts without evicting when the free amount is exactly enough", () => {
    const tasks = [t("idle", 1)];
    expect(decide(view({ free: { cpuTenths: 10, memMB: 128, gpuCount: 0 }, tasks }), req)).toEqual({
      kind: "start",
      evict: [],
    });
    expect(decide(view({ free: { cpuTenths: 10, memMB: 127, gpuCount: 0 }, tasks }), req)).toEqual({
      kind: "start",
      evict: ["idle"],
    });
  });
});

describe("pickEvictions() details", () => {
  it("breaks ties of last use by id", () => {
    const tasks = [t("b", 5), t("a", 5), t("c", 5)];
    expect(pickEvictions(tasks, { cpuTenths: 10, memMB: 0, gpuCount: 0 })).toEqual(["a"]);
    expect(pickEvictions(tasks, { cpuTenths: 20, memMB: 0, gpuCount: 0 })).toEqual(["a", "b"]);
  });

  it("a task helps with whatever it frees that is still missing: cpu, memory or GPUs", () => {
    const cpu = t("cpu", 1, { cpuTenths: 10, memMB: 0 });
    const mem = t("mem", 2, { cpuTenths: 0, memMB: 128 });
    const gpu = t("gpu", 3, { cpuTenths: 0, memMB: 0, gpuCount: 1 });
    const tasks = [cpu, mem, gpu];
    expect(pickEvictions(tasks, { cpuTenths: 5, memMB: 0, gpuCount: 0 })).toEqual(["cpu"]);
    expect(pickEvictions(tasks, { cpuTenths: 0, memMB: 5, gpuCount: 0 })).toEqual(["mem"]);
    expect(pickEvictions(tasks, { cpuTenths: 0, memMB: 0, gpuCount: 1 })).toEqual(["gpu"]);
    expect(pickEvictions(tasks, { cpuTenths: 0, memMB: 5, gpuCount: 1 })).toEqual(["mem", "gpu"]);
    // Once cpu is covered, a task that frees only cpu no longer helps.
    const cpu2 = t("cpu2", 2, { cpuTenths: 10, memMB: 0 });
    expect(pickEvictions([cpu, cpu2, mem], { cpuTenths: 5, memMB: 100, gpuCount: 0 })).toEqual([
      "cpu",
      "mem",
    ]);
    // Nothing missing: nothing to evict.
    expect(pickEvictions(tasks, { cpuTenths: 0, memMB: 0, gpuCount: 0 })).toEqual([]);
    expect(pickEvictions(tasks, { cpuTenths: -5, memMB: 0, gpuCount: 0 })).toEqual([]);
  });

  it("a task that frees none of what is missing is skipped, even when it is the least recently used", () => {
    const memOnly = t("mem", 1, { cpuTenths: 0, memMB: 128 });
    const gpuOnly = t("gpu", 2, { cpuTenths: 0, memMB: 0, gpuCount: 1 });
    const cpu = t("cpu", 3);
    expect(pickEvictions([memOnly, gpuOnly, cpu], { cpuTenths: 5, memMB: 0, gpuCount: 0 })).toEqual(
      ["cpu"],
    );
  });

  it("best effort returns every task that helps even when they are not enough", () => {
    const tasks = [t("a", 1), t("b", 2)];
    expect(pickEvictions(tasks, { cpuTenths: 50, memMB: 0, gpuCount: 0 })).toBeUndefined();
    expect(
      pickEvictions(tasks, { cpuTenths: 50, memMB: 0, gpuCount: 0 }, { bestEffort: true }),
    ).toEqual(["a", "b"]);
    expect(
      pickEvictions(tasks, { cpuTenths: 5, memMB: 0, gpuCount: 0 }, { bestEffort: false }),
    ).toEqual(["a"]);
  });
});

describe("shortage() and pickExpired() details", () => {
  it("counts each dimension on its own and never below zero", () => {
    expect(
      shortage(
        { cpuTenths: 5, memMB: 300, gpuCount: 2 },
        { cpuTenths: 10, memMB: 100, gpuCount: 1 },
      ),
    ).toEqual({ cpuTenths: 0, memMB: 200, gpuCount: 1 });
    expect(
      shortage(
        { cpuTenths: 5, memMB: 100, gpuCount: 2 },
        { cpuTenths: 10, memMB: 100, gpuCount: 1 },
      ),
    ).toEqual({ cpuTenths: 0, memMB: 0, gpuCount: 1 });
    expect(
      shortage(
        { cpuTenths: 5, memMB: 100, gpuCount: 0 },
        { cpuTenths: 5, memMB: 100, gpuCount: 0 },
      ),
    ).toBeUndefined();
  });

  it("only idle replicas expire, a starting one never", () => {
    expect(pickExpired([t("s", 1, { state: "starting" }), t("r", 2)], 10)).toEqual(["r"]);
    expect(pickExpired([t("r", 11)], 10)).toEqual([]);
  });
});
