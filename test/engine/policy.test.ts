import { describe, expect, it } from "vitest";
import { pickEvictions, pickExpired, type TaskView } from "../../src/engine/policy.ts";

const t = (key: string, lastUsed: number, o: Partial<TaskView> = {}): TaskView => ({
  key,
  state: "ready",
  inFlight: 0,
  lastUsed,
  cpuTenths: 10,
  memMB: 128,
  gpuCount: 0,
  ...o,
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
  });

  it("skips idle tasks that free nothing still missing", () => {
    const tasks = [t("cpu-only", 1), t("gpu", 2, { gpuCount: 1 })];
    expect(pickEvictions(tasks, { cpuTenths: 0, memMB: 0, gpuCount: 1 })).toEqual(["gpu"]);
  });
});

describe("pickExpired()", () => {
  it("returns idle tasks used at or before the cutoff, oldest first", () => {
    const tasks = [t("new", 100), t("old", 10), t("mid", 50), t("busy-old", 1, { inFlight: 2 })];
    expect(pickExpired(tasks, 50)).toEqual(["old", "mid"]);
  });
});
