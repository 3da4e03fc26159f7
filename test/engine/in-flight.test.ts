/** The count of requests in flight and the drain before a pause or stop: woken by the last to leave, or bounded. */
import { describe, expect, it } from "vitest";
import { InFlight } from "../../src/engine/in-flight.ts";
import { FakeClock } from "../fakes/fake-clock.ts";
import { memoryLogger } from "../fakes/fake-logger.ts";
import { flush } from "../support/fake-executor.ts";

describe("InFlight", () => {
  it("drains when the last request leaves, before the timeout, and says nothing", async () => {
    const f = new InFlight();
    const clock = new FakeClock();
    const log = memoryLogger();
    f.enter();
    f.enter();
    let done = false;
    const d = f.drain(clock, 10_000, log).then(() => (done = true));
    f.leave();
    await flush();
    expect([f.count, done]).toEqual([1, false]);
    f.leave();
    await d;
    expect(f.count).toBe(0);
    expect(log.records).toEqual([]);
    expect(clock.pending).toBe(0); // its timer went with it
  });

  it("stops waiting at the timeout and says how many were still in flight; with none, at once", async () => {
    const f = new InFlight();
    const clock = new FakeClock();
    const log = memoryLogger();
    await f.drain(clock, 10_000, log);
    f.enter();
    const d = f.drain(clock, 10_000, log);
    const other = f.drain(clock, 20_000, log);
    expect(f.draining).toBe(2);
    clock.advance(10_000);
    await d;
    expect(log.records).toEqual([
      {
        level: "warn",
        msg: "Drain timeout reached with requests still in flight",
        fields: { inFlight: 1 },
      },
    ]);
    expect(f.draining).toBe(1); // the one that timed out is gone, the other still waits
    f.leave();
    await other;
    expect(f.draining).toBe(0);
  });
});
