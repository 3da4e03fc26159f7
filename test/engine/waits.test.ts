import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import {
  deadline,
  delay,
  outlasts,
  pause,
  raceAbort,
  wakeOrTimeout,
} from "../../src/engine/waits.ts";
import { FakeClock } from "../fakes/fake-clock.ts";

/** The promise's state after the microtasks queued so far have run. */
async function state(p: Promise<unknown>): Promise<"pending" | "resolved" | "rejected"> {
  let s: "pending" | "resolved" | "rejected" = "pending";
  p.then(
    () => (s = "resolved"),
    () => (s = "rejected"),
  );
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return s;
}

describe("waits on the Clock", () => {
  it("delay resolves after its time, not before, and leaves no timer", async () => {
    const clock = new FakeClock();
    const p = delay(clock, 100, new AbortController().signal);
    clock.advance(99);
    expect(await state(p)).toBe("pending");
    clock.advance(1);
    expect(await state(p)).toBe("resolved");
    expect(clock.pending).toBe(0);
  });

  // Node's getEventListeners reads an EventTarget's listeners; Deno's node:events may not.
  it.skipIf("Deno" in globalThis)(
    "leaves no listener on a long-lived signal once a wait is over",
    async () => {
      const clock = new FakeClock();
      const ac = new AbortController();
      const slept = delay(clock, 10, ac.signal);
      const woken = wakeOrTimeout(clock, 10, () => () => {}, { signal: ac.signal });
      const dl = deadline(clock, 10, () => new Error("late"), ac.signal);
      expect(getEventListeners(ac.signal, "abort")).toHaveLength(3);
      clock.advance(10);
      await slept;
      await woken;
      dl.cancel();
      expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
    },
  );

  it("delay rejects with the signal's reason on abort, before or during the wait, and cancels its timer", async () => {
    const clock = new FakeClock();
    const ac = new AbortController();
    const p = delay(clock, 100, ac.signal);
    ac.abort(new Error("stop"));
    await expect(p).rejects.toThrow("stop");
    expect(clock.pending).toBe(0);
    await expect(delay(clock, 100, ac.signal)).rejects.toThrow("stop");
    expect(clock.pending).toBe(0);
  });

  it("pause resolves on abort instead of rejecting", async () => {
    const clock = new FakeClock();
    const ac = new AbortController();
    const p = pause(clock, 100, ac.signal);
    ac.abort(new Error("stop"));
    expect(await state(p)).toBe("resolved");
  });

  it("wakeOrTimeout ends on a wake, on the time, or on abort, and always unsubscribes", async () => {
    const clock = new FakeClock();
    const waiters = new Set<() => void>();
    const subscribe = (wake: () => void) => {
      waiters.add(wake);
      return () => waiters.delete(wake);
    };
    let timedOut = 0;
    const woken = wakeOrTimeout(clock, 100, subscribe, { onTimeout: () => timedOut++ });
    expect(waiters.size).toBe(1);
    for (const w of [...waiters]) w();
    expect(await state(woken)).toBe("resolved");
    expect(waiters.size).toBe(0);
    expect(clock.pending).toBe(0);

    const late = wakeOrTimeout(clock, 100, subscribe, { onTimeout: () => timedOut++ });
    clock.advance(99);
    expect(await state(late)).toBe("pending");
    clock.advance(1);
    expect(await state(late)).toBe("resolved");
    expect(timedOut).toBe(1);
    expect(waiters.size).toBe(0);

    const ac = new AbortController();
    const aborted = wakeOrTimeout(clock, 100, subscribe, { signal: ac.signal });
    ac.abort(new Error("gone"));
    await expect(aborted).rejects.toThrow("gone");
    expect(waiters.size).toBe(0);
    expect(clock.pending).toBe(0);
    await expect(wakeOrTimeout(clock, 100, subscribe, { signal: ac.signal })).rejects.toThrow(
      "gone",
    );
    expect(waiters.size).toBe(0);
  });

  it("outlasts says whether the promise outlived the time, settled or failed", async () => {
    const clock = new FakeClock();
    let resolve!: () => void;
    const slow = outlasts(new Promise<void>((r) => (resolve = r)), 100, clock);
    clock.advance(100);
    expect(await slow).toBe(true);
    resolve();
    expect(await outlasts(Promise.resolve(), 100, clock)).toBe(false);
    expect(await outlasts(Promise.reject(new Error("x")), 100, clock)).toBe(false);
    expect(clock.pending).toBe(0);
  });

  it("deadline aborts with its reason after its time, and says it timed out", () => {
    const clock = new FakeClock();
    const dl = deadline(clock, 100, () => new Error("late"));
    clock.advance(99);
    expect(dl.signal.aborted).toBe(false);
    clock.advance(1);
    expect(dl.signal.aborted).toBe(true);
    expect((dl.signal.reason as Error).message).toBe("late");
    expect(dl.timedOut()).toBe(true);
  });

  it("deadline follows its parent, aborted before or after, and cancel lets go of both", () => {
    const clock = new FakeClock();
    const parent = new AbortController();
    const dl = deadline(clock, 100, () => new Error("late"), parent.signal);
    parent.abort(new Error("client"));
    expect((dl.signal.reason as Error).message).toBe("client");
    expect(dl.timedOut()).toBe(false);
    dl.cancel();
    expect(clock.pending).toBe(0);

    const early = deadline(clock, 100, () => new Error("late"), parent.signal);
    expect((early.signal.reason as Error).message).toBe("client");
    early.cancel();

    const other = new AbortController();
    const done = deadline(clock, 100, () => new Error("late"), other.signal);
    done.cancel();
    other.abort(new Error("after"));
    clock.advance(200);
    expect(done.signal.aborted).toBe(false);
  });
});

describe("raceAbort()", () => {
  it("is the promise without a signal, and its value or error with one", async () => {
    const p = Promise.resolve(1);
    expect(raceAbort(p)).toBe(p);
    const ac = new AbortController();
    expect(await raceAbort(Promise.resolve(2), ac.signal)).toBe(2);
    await expect(raceAbort(Promise.reject(new Error("no")), ac.signal)).rejects.toThrow("no");
    // Settled either way, it leaves no listener on the signal.
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
  });

  it("rejects with the signal's reason at once when it is aborted already, and as soon as it aborts", async () => {
    const never = new Promise<number>(() => {});
    const why = new Error("gone");
    await expect(raceAbort(never, AbortSignal.abort(why))).rejects.toBe(why);
    const ac = new AbortController();
    const racing = raceAbort(never, ac.signal);
    expect(await state(racing)).toBe("pending");
    ac.abort(why);
    await expect(racing).rejects.toBe(why);
  });
});
