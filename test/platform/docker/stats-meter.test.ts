/**
 * The meter from the engine's statistics (where a task's cgroup cannot be read): its last sample,
 * its peak since start, a stream followed again after it ends or fails, and nothing after close.
 */
import { describe, expect, it } from "vitest";
import type { StatsSample } from "../../../src/platform/docker/backend.ts";
import { toStatsSample } from "../../../src/platform/docker/docker-backend.ts";
import { StatsMeter } from "../../../src/platform/docker/stats-meter.ts";
import { meterAfter, meterBefore } from "../../../src/engine/usage.ts";
import { FakeClock } from "../../fakes/fake-clock.ts";
import { flush } from "../../support/fake-executor.ts";

/** A backend whose stats streams the test drives: each watch is one stream, ended or failed at will. */
function streams() {
  const open: {
    id: string;
    onSample: (s: StatsSample) => void;
    signal: AbortSignal;
    end: (err?: Error) => void;
  }[] = [];
  return {
    open,
    backend: {
      watchStats: (id: string, o: { onSample: (s: StatsSample) => void; signal: AbortSignal }) =>
        new Promise<void>((resolve, reject) => {
          open.push({ id, ...o, end: (err) => (err ? reject(err) : resolve()) });
          o.signal.addEventListener("abort", () => resolve());
        }),
    },
  };
}

describe("the engine-statistics meter", () => {
  it("reads the last sample: CPU in ms, the peak since start in MB; nothing before the first", () => {
    const s = streams();
    const m = new StatsMeter("c1", s.backend, new FakeClock());
    expect(m).toMatchObject({ source: "engine stats", peakResettable: false, sampled: true });
    expect(s.open.map((o) => o.id)).toEqual(["c1"]);
    expect(m.read()).toBeUndefined();
    s.open[0]!.onSample({ cpuNs: 412_500_000, maxMemoryBytes: 64 * 2 ** 20 });
    expect(m.read()).toEqual({ cpuMs: 412.5, memPeakMB: 64 });
    expect(m.read(false)).toEqual({ cpuMs: 412.5, memPeakMB: undefined });
    s.open[0]!.onSample({ cpuNs: 500_000_000 }); // cgroup v2 engines give no peak
    expect(m.read()).toEqual({ cpuMs: 500, memPeakMB: undefined });
    expect(m.resetPeak()).toBe(false);
    m.close();
  });

  it("follows the stream again after it ends or fails, waiting longer while it keeps failing; close() stops it", async () => {
    const s = streams();
    const clock = new FakeClock();
    const m = new StatsMeter("c1", s.backend, clock);
    s.open[0]!.onSample({ cpuNs: 1e6 });
    s.open[0]!.end(); // the engine restarted, say
    await flush();
    clock.advance(999);
    expect(s.open).toHaveLength(1);
    clock.advance(1);
    expect(s.open).toHaveLength(2);
    s.open[1]!.end(new Error("refused"));
    await flush();
    clock.advance(1000);
    expect(s.open).toHaveLength(2); // a stream that gave nothing: 2 s this time
    clock.advance(1000);
    expect(s.open).toHaveLength(3);
    expect(m.read()).toEqual({ cpuMs: 1, memPeakMB: undefined }); // the last sample holds meanwhile
    m.close();
    expect(s.open[2]!.signal.aborted).toBe(true);
    expect(m.read()).toBeUndefined();
    s.open[2]!.end(new Error("late"));
    await flush();
    clock.advance(60_000);
    expect(s.open).toHaveLength(3);
    expect(clock.pending).toBe(0);
  });

  it("parses the Engine API's stats: total CPU ns, v1's max_usage; a sample without CPU figures is none", () => {
    expect(
      toStatsSample({
        cpu_stats: { cpu_usage: { total_usage: 2_000_000 } },
        memory_stats: { usage: 5, max_usage: 7 * 2 ** 20 },
      }),
    ).toEqual({ cpuNs: 2_000_000, maxMemoryBytes: 7 * 2 ** 20 });
    expect(
      toStatsSample({ cpu_stats: { cpu_usage: { total_usage: 3 } }, memory_stats: { usage: 5 } }),
    ).toEqual({ cpuNs: 3, maxMemoryBytes: undefined });
    expect(toStatsSample({ cpu_stats: {}, memory_stats: {} })).toBeUndefined(); // not running
    expect(toStatsSample(null)).toBeUndefined();
  });

  it("marks a request measured from samples not exact, though it had its container to itself", () => {
    const s = streams();
    const m = new StatsMeter("c1", s.backend, new FakeClock());
    s.open[0]!.onSample({ cpuNs: 10e6, maxMemoryBytes: 2 ** 20 });
    const task = { meter: m, inFlight: 1, overlaps: 0, peakFresh: false };
    const before = meterBefore(task, 0);
    s.open[0]!.onSample({ cpuNs: 40e6, maxMemoryBytes: 3 * 2 ** 20 });
    const u = meterAfter(before, task, {
      now: 5,
      gpus: 0,
      inBytes: 1,
      outBytes: 1,
      clock: new FakeClock(),
    });
    expect(u).toMatchObject({ cpuMs: 30, memPeakMB: 3, memPeakSinceStart: true, exact: false });
    m.close();
  });
});
