import { describe, expect, it } from "vitest";
import type { Reservation } from "../../src/engine/ledger.ts";
import {
  ACCEPTS,
  Task,
  transition,
  type EventType,
  type StateKind,
  type TaskEvent,
  type TaskState,
} from "../../src/engine/task.ts";
import type { TaskSpec } from "../../src/engine/task-spec.ts";

const spec: TaskSpec = {
  image: "echo:1",
  runtimeKind: "container",
  cpuTenths: 10,
  memMB: 128,
  gpuCount: 0,
  sgx: false,
};
const reservation: Reservation = { id: 1, cpuTenths: 10, memMB: 128, gpus: [] };

const STATES: Record<StateKind, TaskState> = {
  starting: { kind: "starting", since: 0, reservation, containerId: "c1" },
  ready: {
    kind: "ready",
    since: 1,
    reservation,
    containerId: "c1",
    endpoint: "http://127.0.0.1:1",
  },
  removing: { kind: "removing", reason: "idle", containerId: "c1" },
  gone: { kind: "gone", reason: "idle" },
  failed: { kind: "failed", error: new Error("boom"), containerId: "c1" },
};
const EVENTS: Record<EventType, TaskEvent> = {
  created: { type: "created", containerId: "c2" },
  ready: { type: "ready", endpoint: "http://127.0.0.1:2", at: 5 },
  fail: { type: "fail", error: new Error("kaputt") },
  remove: { type: "remove", reason: "evicted" },
  removed: { type: "removed" },
};
/** The state each accepted pair leads to. */
const EXPECTED: Partial<Record<`${StateKind}/${EventType}`, TaskState>> = {
  "starting/ready": {
    kind: "ready",
    since: 5,
    reservation,
    containerId: "c1",
    endpoint: "http://127.0.0.1:2",
  },
  "starting/fail": {
    kind: "failed",
    error: (EVENTS.fail as { error: Error }).error,
    containerId: "c1",
  },
  "starting/remove": { kind: "removing", reason: "evicted", containerId: "c1" },
  "ready/remove": { kind: "removing", reason: "evicted", containerId: "c1" },
  "removing/removed": { kind: "gone", reason: "idle" },
};

describe("task state machine", () => {
  const pairs = (Object.keys(STATES) as StateKind[]).flatMap((s) =>
    (Object.keys(EVENTS) as EventType[]).map((e) => [s, e] as const),
  );

  it.each(pairs)("state %s, event %s", (s, e) => {
    const t = transition(STATES[s], EVENTS[e]);
    const expected = EXPECTED[`${s}/${e}`];
    if (s === "starting" && e === "created") {
      // A starting task that already has a container refuses a second one.
      expect(t).toEqual({ ok: false, refused: expect.stringContaining("already has a container") });
      expect(transition({ kind: "starting", since: 0, reservation }, EVENTS.created)).toEqual({
        ok: true,
        state: { kind: "starting", since: 0, reservation, containerId: "c2" },
      });
    } else if (expected) {
      expect(t).toEqual({ ok: true, state: expected });
    } else {
      expect(ACCEPTS[s]).not.toContain(e);
      expect(t).toEqual({
        ok: false,
        refused: `A task in state "${s}" does not accept event "${e}"`,
      });
    }
  });

  it("refuses ready before the container exists", () => {
    expect(transition({ kind: "starting", since: 0, reservation }, EVENTS.ready)).toMatchObject({
      ok: false,
      refused: expect.stringContaining("no container yet"),
    });
  });

  it("keeps its counters private: slots only on a ready replica, leaving stamps the time", () => {
    const task = new Task({ id: "n", key: "k", spec, reservation, now: 0 });
    expect(task.take()).toBe(false);
    expect(task.apply({ type: "created", containerId: "c" }).ok).toBe(true);
    expect(task.apply({ type: "ready", endpoint: "e", at: 7 }).ok).toBe(true);
    expect(task.lastUsed).toBe(7);
    expect(task.take()).toBe(true);
    expect(task.take()).toBe(true);
    expect(task.inFlight).toBe(2);
    task.leave(9);
    task.answered();
    expect([task.inFlight, task.lastUsed, task.served]).toEqual([1, 9, 1]);
    expect(task.reservation).toBe(reservation);
    expect(task.apply({ type: "remove", reason: "idle" }).ok).toBe(true);
    expect(task.reservation).toBeUndefined();
    expect(task.take()).toBe(false);
    // Removing a task that is already leaving is an outcome the caller sees.
    expect(task.apply({ type: "remove", reason: "again" })).toMatchObject({ ok: false });
    expect(task.state).toEqual({ kind: "removing", reason: "idle", containerId: "c" });
  });
});

describe("Task", () => {
  it("starts in state starting at its creation time, with its reservation and no container", () => {
    const task = new Task({ id: "meca-1", key: "k", spec, reservation, now: 4 });
    expect(task.state).toEqual({ kind: "starting", since: 4, reservation });
    expect([task.id, task.name, task.key, task.spec, task.lastUsed]).toEqual([
      "meca-1",
      "meca-1",
      "k",
      spec,
      4,
    ]);
    expect([task.inFlight, task.served]).toEqual([0, 0]);
    expect([task.containerId, task.endpoint, task.reservation]).toEqual([
      undefined,
      undefined,
      reservation,
    ]);
    expect(task.abort.signal.aborted).toBe(false);
  });

  it("shows its container and endpoint once they exist, and its reservation only while it holds one", () => {
    const task = new Task({ id: "n", key: "k", spec, reservation, now: 0 });
    task.apply({ type: "created", containerId: "c" });
    expect([task.containerId, task.endpoint, task.reservation]).toEqual([
      "c",
      undefined,
      reservation,
    ]);
    task.apply({ type: "ready", endpoint: "http://127.0.0.1:9", at: 3 });
    expect([task.containerId, task.endpoint, task.reservation]).toEqual([
      "c",
      "http://127.0.0.1:9",
      reservation,
    ]);
    task.apply({ type: "remove", reason: "idle" });
    expect([task.containerId, task.endpoint, task.reservation, task.lastUsed]).toEqual([
      "c",
      undefined,
      undefined,
      3,
    ]);
    task.apply({ type: "removed" });
    expect([task.containerId, task.endpoint, task.reservation, task.lastUsed]).toEqual([
      undefined,
      undefined,
      undefined,
      3,
    ]);
  });

  it("a failed start keeps its container for removal and gives up its reservation", () => {
    const task = new Task({ id: "n", key: "k", spec, reservation, now: 0 });
    task.apply({ type: "created", containerId: "c" });
    const error = new Error("no port");
    expect(task.apply({ type: "fail", error })).toEqual({
      ok: true,
      state: { kind: "failed", error, containerId: "c" },
    });
    expect([task.containerId, task.reservation, task.lastUsed]).toEqual(["c", undefined, 0]);
    // A refused event changes nothing.
    expect(task.apply({ type: "ready", endpoint: "e", at: 9 }).ok).toBe(false);
    expect([task.state.kind, task.lastUsed]).toEqual(["failed", 0]);
  });

  it("a task removed before its container exists has none", () => {
    const task = new Task({ id: "n", key: "k", spec, reservation, now: 0 });
    expect(task.apply({ type: "remove", reason: "paused" })).toEqual({
      ok: true,
      state: { kind: "removing", reason: "paused", containerId: undefined },
    });
    expect(task.containerId).toBeUndefined();
  });

  it("leaving with no request in flight stamps the time and never goes below zero", () => {
    const task = new Task({ id: "n", key: "k", spec, reservation, now: 0 });
    task.leave(5);
    expect([task.inFlight, task.lastUsed]).toEqual([0, 5]);
    task.apply({ type: "created", containerId: "c" });
    task.apply({ type: "ready", endpoint: "e", at: 6 });
    task.take();
    task.leave(8);
    task.leave(9);
    expect([task.inFlight, task.lastUsed]).toEqual([0, 9]);
    expect(task.take()).toBe(true);
    expect(task.inFlight).toBe(1);
  });
});
