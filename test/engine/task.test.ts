import { describe, expect, it } from "vitest";
import { InternalError } from "../../src/engine/errors.ts";
import { Task, transition } from "../../src/engine/task.ts";
import type { TaskSpec } from "../../src/engine/task-spec.ts";

const spec: TaskSpec = { image: "echo:1", runtimeKind: "container", cpuTenths: 10, memMB: 128, gpuCount: 0, sgx: false };

describe("task state machine", () => {
  it("goes starting → ready → removing → gone", () => {
    const task = new Task({ key: "k", spec, name: "n", now: 0 });
    task.apply({ type: "ready", endpoint: "http://127.0.0.1:1", at: 1 });
    expect(task.endpoint).toBe("http://127.0.0.1:1");
    task.apply({ type: "remove", reason: "idle" });
    task.apply({ type: "removed" });
    expect(task.state).toEqual({ kind: "gone", reason: "idle" });
  });

  it("rejects events a state does not accept", () => {
    expect(() => transition({ kind: "gone", reason: "x" }, { type: "ready", endpoint: "e", at: 0 })).toThrow(InternalError);
    expect(() => transition({ kind: "ready", endpoint: "e", readyAt: 0 }, { type: "ready", endpoint: "e", at: 0 })).toThrow(/does not accept event "ready"/);
    expect(() => transition({ kind: "starting", since: 0 }, { type: "removed" })).toThrow(InternalError);
  });

  it("settles its ready promise: resolves when ready, rejects when it fails", async () => {
    const ok = new Task({ key: "k", spec, name: "n", now: 0 });
    ok.apply({ type: "ready", endpoint: "e", at: 0 });
    await expect(ok.ready).resolves.toBeUndefined();
    const bad = new Task({ key: "k", spec, name: "n", now: 0 });
    bad.apply({ type: "fail", error: new Error("boom") });
    await expect(bad.ready).rejects.toThrow("boom");
  });
});
