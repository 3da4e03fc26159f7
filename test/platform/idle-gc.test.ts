import { afterEach, describe, expect, it, vi } from "vitest";
import { startIdleGc } from "../../src/platform/idle-gc.ts";

afterEach(() => {
  vi.useRealTimers();
});

describe("startIdleGc", () => {
  it("collects once after each quiet spell that follows requests, and never while requests come or after nothing was served", () => {
    vi.useFakeTimers();
    let served = 0;
    const gc = vi.fn();
    const stop = startIdleGc({ served: () => served, quietMs: 1000, gc });
    vi.advanceTimersByTime(5000);
    expect(gc).not.toHaveBeenCalled(); // nothing served since start
    for (let i = 0; i < 5; i++) {
      served += 10;
      vi.advanceTimersByTime(1000);
    }
    expect(gc).not.toHaveBeenCalled(); // busy every period
    vi.advanceTimersByTime(1000);
    expect(gc).toHaveBeenCalledTimes(1);
    expect(gc).toHaveBeenCalledWith({ type: "major", execution: "async", flavor: "last-resort" });
    vi.advanceTimersByTime(10_000);
    expect(gc).toHaveBeenCalledTimes(1); // still quiet: once is enough
    served++;
    vi.advanceTimersByTime(2000);
    expect(gc).toHaveBeenCalledTimes(2);
    stop();
    served++;
    vi.advanceTimersByTime(5000);
    expect(gc).toHaveBeenCalledTimes(2);
  });

  it("does nothing where there is no gc", () => {
    vi.useFakeTimers();
    const stop = startIdleGc({ served: () => 0, gc: undefined });
    expect(vi.getTimerCount()).toBe("gc" in globalThis ? 1 : 0);
    stop();
  });
});
