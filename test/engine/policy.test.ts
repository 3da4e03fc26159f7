import { describe, expect, it } from "vitest";
import { decide, pickEvictions, pickExpired, shortage, type SchedulingView, type TaskView } from "../../src/engine/policy.ts";

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
    expect(decide(view({ capacity: { cpuTenths: 5, memMB: 4096, gpuCount: 0 } }), req)).toEqual({ kind: "refuse", reason: "exceeds_capacity" });
    expect(decide(view(), { key: "k", want: { ...want, gpuCount: 1 } })).toEqual({ kind: "refuse", reason: "exceeds_capacity" });
  });

  it("replicas off (0): reuses the key's one replica whatever its load, waits for its start, starts only one", () => {
    const busy = t("r1", 5, { key: "k", inFlight: 9 });
    expect(decide(view({ tasks: [busy] }), req)).toEqual({ kind: "reuse", replica: "r1" });
    const starting = t("r1", 5, { key: "k", state: "starting" });
    expect(decide(view({ tasks: [starting], aheadForKey: 7 }), req)).toEqual({ kind: "wait", for: "start" });
    expect(decide(view(), req)).toEqual({ kind: "start", evict: [] });
  });

  it("replicas on: takes the least busy ready replica with a free slot, the most recently used among equals", () => {
    const tasks = [t("a", 1, { key: "k", inFlight: 2 }), t("b", 2, { key: "k", inFlight: 1 }), t("c", 3, { key: "k", inFlight: 1 }), t("d", 9, { key: "other" })];
    expect(decide(view({ concurrency: 3, tasks }), req)).toEqual({ kind: "reuse", replica: "c" });
    expect(decide(view({ concurrency: 2, tasks: tasks.slice(0, 1) }), req)).toEqual({ kind: "start", evict: [] });
  });

  it("replicas on: a burst starts only as many replicas as it needs at N each", () => {
    const starting = [t("s1", 0, { key: "k", state: "starting" })];
    expect(decide(view({ concurrency: 2, tasks: starting, aheadForKey: 1 }), req)).toEqual({ kind: "wait", for: "start" });
    expect(decide(view({ concurrency: 2, tasks: starting, aheadForKey: 2 }), req)).toEqual({ kind: "start", evict: [] });
  });

  it("replicas on: at max_replicas it waits for a slot (or for a start under way)", () => {
    const full = [t("a", 1, { key: "k", inFlight: 1 })];
    expect(decide(view({ concurrency: 1, maxReplicas: 1, tasks: full }), req)).toEqual({ kind: "wait", for: "slot" });
    const starting = [...full, t("s", 1, { key: "k", state: "starting" })];
    expect(decide(view({ concurrency: 1, maxReplicas: 2, tasks: starting, aheadForKey: 1 }), req)).toEqual({ kind: "wait", for: "start" });
  });

  it("waits behind an earlier request that waits for capacity (one FIFO across keys)", () => {
    expect(decide(view({ capacityBlocked: true }), req)).toEqual({ kind: "wait", for: "capacity" });
    // ...but a free slot is taken at once: slots are per key, not in the capacity line.
    expect(decide(view({ capacityBlocked: true, tasks: [t("r", 1, { key: "k" })] }), req)).toEqual({ kind: "reuse", replica: "r" });
  });

  it("starts after evicting idle replicas of other keys, least recently used first, never busy ones", () => {
    const tasks = [t("new", 30), t("old", 10), t("busy", 1, { inFlight: 1 }), t("mid", 20)];
    const free = { cpuTenths: 5, memMB: 4096, gpuCount: 0 };
    expect(decide(view({ free, tasks }), req)).toEqual({ kind: "start", evict: ["old"] });
    expect(decide(view({ free, tasks }), { key: "k", want: { ...want, cpuTenths: 30 } })).toEqual({ kind: "start", evict: ["old", "mid", "new"] });
  });

  it("waits for capacity when even every idle replica would not be enough", () => {
    const tasks = [t("busy", 1, { inFlight: 1 }), t("idle", 2)];
    expect(decide(view({ free: { cpuTenths: 0, memMB: 4096, gpuCount: 0 }, tasks }), { key: "k", want: { ...want, cpuTenths: 20 } })).toEqual({ kind: "wait", for: "capacity" });
    // After a shrink the free amount is negative: the same rule holds.
    expect(decide(view({ free: { cpuTenths: -10, memMB: 4096, gpuCount: 0 }, tasks: [t("idle", 2)] }), req)).toEqual({ kind: "wait", for: "capacity" });
  });
});

describe("pickEvictions()", () => {
  it("evicts least recently used idle tasks first, only as many as needed", () => {
    const tasks = [t("a", 30), t("b", 10), t("c", 20)];
    expect(pickEvictions(tasks, { cpuTenths: 15, memMB: 0, gpuCount: 0 })).toEqual(["b", "c"]);
    expect(pickEvictions(tasks, { cpuTenths: 5, memMB: 0, gpuCount: 0 })).toEqual(["b"]);
  });

  it("never picks a busy or starting task", () => {
    const tasks = [t("busy", 1, { inFlight: 1 }), t("starting", 2, { state: "starting" }), t("idle", 3)];
    expect(pickEvictions(tasks, { cpuTenths: 10, memMB: 0, gpuCount: 0 })).toEqual(["idle"]);
    expect(pickEvictions(tasks, { cpuTenths: 20, memMB: 0, gpuCount: 0 })).toBeUndefined();
    expect(pickEvictions(tasks, { cpuTenths: 20, memMB: 0, gpuCount: 0 }, { bestEffort: true })).toEqual(["idle"]);
  });

  it("skips idle tasks that free nothing still missing", () => {
    const tasks = [t("cpu-only", 1), t("gpu", 2, { gpuCount: 1 })];
    expect(pickEvictions(tasks, { cpuTenths: 0, memMB: 0, gpuCount: 1 })).toEqual(["gpu"]);
  });
});

describe("shortage()", () => {
  it("is what is missing beyond the free amount, or undefined", () => {
    expect(shortage(want, { cpuTenths: 10, memMB: 128, gpuCount: 0 })).toBeUndefined();
    expect(shortage(want, { cpuTenths: 4, memMB: 200, gpuCount: 0 })).toEqual({ cpuTenths: 6, memMB: 0, gpuCount: 0 });
  });
});

describe("pickExpired()", () => {
  it("returns idle replicas used at or before the cutoff, oldest first, each by its own time", () => {
    const tasks = [t("new", 100), t("old", 10), t("mid", 50), t("busy-old", 1, { inFlight: 2 }), t("r2", 40, { key: "old" })];
    expect(pickExpired(tasks, 50)).toEqual(["old", "r2", "mid"]);
  });
});
