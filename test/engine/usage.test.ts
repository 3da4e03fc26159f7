/**
 * What each request used (docs/usage.md), on the in-memory runtime whose tasks keep counters as a
 * cgroup does: the task's own CPU and peak per request, a second request only its own, overlapping
 * requests marked not exact, a failed answer still measured, and the book per key.
 */
import { describe, expect, it } from "vitest";
import { TaskFailedError } from "../../src/engine/errors.ts";
import { Executor } from "../../src/engine/executor.ts";
import type { RequestUsage } from "../../src/engine/usage.ts";
import {
  meterAfter,
  meterBefore,
  UsageBook,
  usageHeader,
  type BookedSpec,
  usageJson,
} from "../../src/engine/usage.ts";
import { deferred } from "../fakes/fake-container.ts";
import { FakeClock } from "../fakes/fake-clock.ts";
import { FakeHost } from "../fakes/fake-host.ts";
import { memoryLogger } from "../fakes/fake-logger.ts";
import { FakeTaskEngine, FakeTasks } from "../fakes/fake-tasks.ts";
import { BASE_SETTINGS, flush } from "../support/fake-executor.ts";

/** "cpu:mb[:status]": the task uses that much, then answers with that status. */
function workImage(engine: () => FakeTaskEngine, gate?: () => Promise<void>) {
  return {
    respond: async (body: string, req: { endpoint: string }) => {
      await gate?.();
      const [cpu, mb, status] = body.split(":").map(Number);
      engine().use(new URL(req.endpoint).pathname.slice(1), cpu!, mb!);
      return { status: status || 200, body: `used:${body}` };
    },
  };
}

async function executorOn(engine: FakeTaskEngine, settings = {}) {
  const clock = new FakeClock();
  const executor = await Executor.create({
    runtime: new FakeTasks(engine),
    client: engine.client(),
    host: new FakeHost(8, 16_384),
    clock,
    logger: memoryLogger(),
    settings: { ...BASE_SETTINGS, ...settings },
  });
  const run = async (image: string, input: string) => {
    let usage: RequestUsage | undefined;
    const body = await executor.execute({ image }, input, { onUsage: (u) => (usage = u) });
    return { body, usage };
  };
  return { executor, clock, run };
}

describe("usage per request", () => {
  it("gives the task's CPU and peak memory for the request, then only the next request's own", async () => {
    const engine: FakeTaskEngine = new FakeTaskEngine({ "work:1": workImage(() => engine) });
    const { executor, run } = await executorOn(engine);
    const first = await run("work:1", "40:61.2");
    expect(first.usage).toEqual({
      cpuMs: 40,
      memPeakMB: 61.2,
      memPeakSinceStart: false,
      wallMs: 0,
      queueMs: 0,
      startMs: 0,
      gpuMs: 0,
      inBytes: 7,
      outBytes: 12,
      exact: true,
    });
    const second = await run("work:1", "25:30");
    // Its own: 25 ms of CPU, and a peak of 30 MB, not the first request's 61.2 (the peak was reset).
    expect(second.usage).toMatchObject({ cpuMs: 25, memPeakMB: 30, exact: true });
    const rows = executor.usageByKey();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      image: "work:1",
      requests: 2,
      cold_starts: 0,
      cpu_ms: { total: 65, max: 40, mean: 32.5, p50: 25, p95: 40 },
      mem_peak_mb: { max: 61.2, p50: 30 },
    });
    expect(executor.recentRequests().map((r) => r.usage?.cpuMs)).toEqual([40, 25]);
    const image = executor.usageByImage().get("work:1")!;
    expect(image.cpuSeconds).toBeCloseTo(0.065, 9);
    expect(image.memPeakMB.count).toBe(2);
    expect(image.memPeakMB.cumulative().slice(0, 4)).toEqual([0, 1, 2, 2]); // 30 <= 32, 61.2 <= 64
    await executor.shutdown();
  });

  it("resets the peak for the next request once an answer is out, and on the request's path only when it came first", async () => {
    const engine: FakeTaskEngine = new FakeTaskEngine({ "work:1": workImage(() => engine) });
    const { executor, clock, run } = await executorOn(engine);
    await run("work:1", "5:80"); // cold: its peak is reset on its path
    expect(engine.peakResets).toBe(1);
    clock.advance(0); // the answer is out: the reset for the next request runs now
    expect(engine.peakResets).toBe(2);
    const id = [...engine.tasks.keys()][0]!;
    engine.use(id, 0, 12); // what the task touches between requests counts for the next one
    const second = await run("work:1", "5:20");
    expect(engine.peakResets).toBe(2); // none on its path
    expect(second.usage).toMatchObject({ memPeakMB: 20, memPeakSinceStart: false, exact: true });
    // The next request arrives before the deferred reset ran: it resets on its own path, once,
    // and the deferred one, finding nothing fresh to keep, leaves the peak to it.
    const third = await run("work:1", "5:15");
    expect(third.usage).toMatchObject({ memPeakMB: 15, memPeakSinceStart: false });
    expect(engine.peakResets).toBe(3);
    await executor.shutdown();
  });

  it("marks overlapping requests in one container not exact and shares the container's CPU among them", async () => {
    const gate = deferred();
    let held = 2; // the warm-up passes; the two after it wait for the gate
    const engine: FakeTaskEngine = new FakeTaskEngine({
      "work:1": workImage(
        () => engine,
        () => (held++ < 2 ? gate.promise : Promise.resolve()),
      ),
    });
    const { executor, clock, run } = await executorOn(engine);
    await run("work:1", "0:1"); // warm: the next two meet in the same container
    clock.advance(0);
    held = 0;
    const a = run("work:1", "30:10");
    const b = run("work:1", "10:10");
    await flush(10);
    const reads = engine.reads;
    gate.resolve();
    const [ua, ub] = [(await a).usage!, (await b).usage!];
    // Answered in one turn: one reading serves both.
    expect(engine.reads - reads).toBe(1);
    expect([ua.exact, ub.exact]).toEqual([false, false]);
    // The container used 40 ms while both were in it: each is given half.
    expect([ua.cpuMs, ub.cpuMs]).toEqual([20, 20]);
    expect(usageHeader(ua)).toContain("exact=?0");
    await executor.shutdown();
  });

  it("measures a request whose task answered an error, and measures nothing with usage: false", async () => {
    const engine: FakeTaskEngine = new FakeTaskEngine({ "work:1": workImage(() => engine) });
    const on = await executorOn(engine);
    const err = await on.run("work:1", "12:5:500").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskFailedError);
    expect((err as TaskFailedError).usage).toMatchObject({ cpuMs: 12, memPeakMB: 5, exact: true });
    await on.executor.shutdown();
    const off = await executorOn(engine, { usage: false });
    const r = await off.run("work:1", "12:5");
    expect(r.usage).toBeUndefined();
    expect(off.executor.recentRequests().at(-1)!.usage).toBeUndefined();
    expect(off.executor.usageByKey()).toEqual([]);
    await off.executor.shutdown();
  });
});

/** A task key's spec as the book keeps it: 1 core, 64 MB, no GPU. */
const spec = (image: string): BookedSpec => ({
  image,
  runtimeKind: "container",
  cpuTenths: 10,
  memMB: 64,
  gpuCount: 0,
});

describe("the Meca-Usage header and the book per key", () => {
  const u: RequestUsage = {
    cpuMs: 412.5,
    memPeakMB: 61.2,
    memPeakSinceStart: false,
    wallMs: 431,
    queueMs: 0,
    startMs: 0,
    gpuMs: 0,
    inBytes: 13,
    outBytes: 24,
    exact: true,
  };

  it("is an RFC 8941 dictionary with decimals of at most three digits; what could not be read is named, not guessed", () => {
    expect(usageHeader(u)).toBe(
      "cpu-ms=412.5, mem-peak-mb=61.2, wall-ms=431.0, queue-ms=0.0, start-ms=0.0, gpu-ms=0.0, in-bytes=13, out-bytes=24, exact=?1",
    );
    expect(usageHeader({ ...u, cpuMs: 1 / 3, memPeakSinceStart: true })).toBe(
      "cpu-ms=0.333, mem-peak-mb=61.2, wall-ms=431.0, queue-ms=0.0, start-ms=0.0, gpu-ms=0.0, in-bytes=13, out-bytes=24, exact=?1, mem-peak-since-start",
    );
    expect(usageHeader({ ...u, cpuMs: null, memPeakMB: null, exact: false })).toBe(
      'wall-ms=431.0, queue-ms=0.0, start-ms=0.0, gpu-ms=0.0, in-bytes=13, out-bytes=24, exact=?0, missing=("cpu-ms" "mem-peak-mb")',
    );
    expect(usageJson(u)).toEqual({
      cpu_ms: 412.5,
      mem_peak_mb: 61.2,
      mem_peak_since_start: false,
      wall_ms: 431,
      queue_ms: 0,
      start_ms: 0,
      gpu_ms: 0,
      in_bytes: 13,
      out_bytes: 24,
      exact: true,
    });
    expect(usageJson({ ...u, cpuMs: 1 / 3, memPeakMB: null }).cpu_ms).toBe(0.333);
    expect(usageJson({ ...u, memPeakMB: null }).mem_peak_mb).toBeNull();
  });

  it("keeps a row per key, with start times of the cold starts only, and at most 256 keys (least recently used out)", () => {
    const book = new UsageBook();
    const key = (i: number) => [`k${i}`, spec(`img:${i}`)] as const;
    book.add(...key(0), { ...u, startMs: 500 });
    book.add(...key(0), { ...u, cpuMs: 100 });
    expect(book.rows()[0]).toMatchObject({
      requests: 2,
      cold_starts: 1,
      start_ms: { total: 500, max: 500 },
      cpu_ms: { total: 512.5, max: 412.5 },
      resource: { cpu: 1, mem: 64, gpus: 0 },
    });
    for (let i = 1; i <= 256; i++) book.add(...key(i), u);
    const images = book.rows().map((r) => r.image);
    expect(images).toHaveLength(256);
    expect(images).not.toContain("img:0");
    expect(images.at(-1)).toBe("img:256");
  });
});

describe("the header, the JSON and the book at their edges", () => {
  const u: RequestUsage = {
    cpuMs: 10,
    memPeakMB: 20,
    memPeakSinceStart: false,
    wallMs: 30,
    queueMs: 0,
    startMs: 0,
    gpuMs: 0,
    inBytes: 1,
    outBytes: 2,
    exact: true,
  };
  const key = (k: string) => [k, spec(`img:${k}`)] as const;
  const tail = "wall-ms=30.0, queue-ms=0.0, start-ms=0.0, gpu-ms=0.0, in-bytes=1, out-bytes=2";

  it("names each figure it could not read, alone or both; a peak it could not read is not said to be since start", () => {
    expect(usageHeader({ ...u, cpuMs: null })).toBe(
      `mem-peak-mb=20.0, ${tail}, exact=?1, missing=("cpu-ms")`,
    );
    expect(usageHeader({ ...u, memPeakMB: null, memPeakSinceStart: true })).toBe(
      `cpu-ms=10.0, ${tail}, exact=?1, missing=("mem-peak-mb")`,
    );
    expect(usageJson({ ...u, cpuMs: null }).cpu_ms).toBeNull();
  });

  it("keeps percentiles over a key's last 1024 requests, totals and maxima over all; no cold start is zeros, not NaN", () => {
    const book = new UsageBook();
    for (let i = 0; i < 100; i++) book.add(...key("a"), { ...u, cpuMs: 1000 });
    for (let i = 0; i < 1024; i++) book.add(...key("a"), { ...u, cpuMs: 1 });
    const row = book.rows()[0]!;
    expect(row.cpu_ms).toEqual({ mean: 89.879, p50: 1, p95: 1, max: 1000, total: 101_024 });
    expect(row.start_ms).toEqual({ mean: 0, p50: 0, p95: 0, max: 0, total: 0 });
    expect(row.mem_peak_mb).toEqual({ mean: 20, p50: 20, p95: 20, max: 20 }); // a peak adds up to nothing
    expect(row.wall_ms).toMatchObject({ total: 30 * 1124 });
    const small = new UsageBook();
    for (let v = 1; v <= 100; v++) small.add(...key("b"), { ...u, cpuMs: v });
    expect(small.rows()[0]!.cpu_ms).toMatchObject({ p50: 50, p95: 95, max: 100, mean: 50.5 });
  });

  it("counts only what was read: a request whose CPU or peak is unknown adds nothing to them", () => {
    const book = new UsageBook();
    book.add(...key("a"), { ...u, cpuMs: null, memPeakMB: null });
    book.add(...key("a"), { ...u, cpuMs: 10, memPeakMB: 20 });
    expect(book.rows()[0]).toMatchObject({
      requests: 2,
      cpu_ms: { mean: 10, total: 10 },
      mem_peak_mb: { mean: 20 },
    });
    expect(book.byImage().get("img:a")!.memPeakMB.count).toBe(1);
  });

  it("adds GPU time per key (ms, to three decimals) and per image (s)", () => {
    const book = new UsageBook();
    book.add(...key("g"), { ...u, gpuMs: 1.2345 });
    book.add(...key("g"), { ...u, gpuMs: 1500 });
    expect(book.rows()[0]!.gpu_ms_total).toBe(1501.235);
    expect(book.byImage().get("img:g")!.gpuSeconds).toBeCloseTo(1.5012345, 9);
  });

  it("moves a key to the end when another was used in between, and keeps 256 images apart, the rest as other", () => {
    const book = new UsageBook();
    book.add(...key("a"), u);
    book.add(...key("b"), u);
    book.add(...key("a"), u);
    expect(book.rows().map((r) => r.image)).toEqual(["img:b", "img:a"]);
    book.add(...key("a"), u);
    expect(book.rows().map((r) => r.image)).toEqual(["img:b", "img:a"]);
    const many = new UsageBook();
    for (let i = 0; i < 257; i++) many.add(...key(`k${i}`), u);
    expect(many.byImage().size).toBe(257); // 256 images and "other"
    expect(many.byImage().has("img:k255")).toBe(true);
    expect(many.byImage().has("img:k256")).toBe(false);
    expect(many.byImage().get("other")!.cpuSeconds).toBeCloseTo(0.01, 9);
  });
});

describe("the meter around one request", () => {
  /** A meter over counters the test sets; `sampled` as the engine-statistics meter is. */
  function counters(o: { sampled?: boolean; resettable?: boolean } = {}) {
    const c = { cpuMs: 0, peakMB: 1, reads: 0, resets: 0, gone: false };
    return {
      c,
      meter: {
        source: "test",
        peakResettable: o.resettable ?? true,
        sampled: o.sampled,
        read: () => {
          c.reads++;
          return c.gone ? undefined : { cpuMs: c.cpuMs, memPeakMB: c.peakMB };
        },
        resetPeak: () => {
          c.resets++;
          c.peakMB = 1;
          return true;
        },
      },
    };
  }
  const after = (clock = new FakeClock(), now = 0) => ({
    now,
    gpus: 0,
    inBytes: 0,
    outBytes: 0,
    clock,
  });

  it("charges CPU used between requests to the next; a sampled meter is never exact; a meter gone gives null", async () => {
    const { c, meter } = counters();
    const task = { meter, inFlight: 1, overlaps: 0, peakFresh: false };
    let m = meterBefore(task, 0);
    c.cpuMs = 5;
    expect(meterAfter(m, task, after(new FakeClock(), 7))).toMatchObject({
      cpuMs: 5,
      wallMs: 7,
      exact: true,
    });
    c.cpuMs = 8; // between requests
    m = meterBefore(task, 10);
    c.cpuMs = 9;
    expect(meterAfter(m, task, after()).cpuMs).toBe(4);
    const s = counters({ sampled: true });
    const st = { meter: s.meter, inFlight: 1, overlaps: 0, peakFresh: false };
    const sm = meterBefore(st, 0);
    s.c.cpuMs = 3;
    expect(meterAfter(sm, st, after())).toMatchObject({ cpuMs: 3, exact: false });
    const g = counters();
    const gt = { meter: g.meter, inFlight: 1, overlaps: 0, peakFresh: false };
    const gm = meterBefore(gt, 0);
    g.c.gone = true;
    expect(meterAfter(gm, gt, after())).toMatchObject({ cpuMs: null, memPeakMB: null });
  });

  it("divides the CPU of overlapping requests by as many as were in the container when each was sent", () => {
    const { c, meter } = counters();
    const task = { meter, inFlight: 0, overlaps: 0, peakFresh: false };
    const sent = [1, 2, 3].map(() => {
      task.inFlight++;
      if (task.inFlight > 1) task.overlaps++;
      return meterBefore(task, 0);
    });
    c.cpuMs = 30;
    const clock = new FakeClock();
    // The last one sent is answered last, alone in the container by then: still a third.
    task.inFlight = 1;
    expect(meterAfter(sent[2]!, task, after(clock))).toMatchObject({ cpuMs: 10, exact: false });
  });

  it("shares a reading among overlapping answers of one turn only, and reads afresh for one alone", () => {
    const { c, meter } = counters();
    const clock = new FakeClock();
    const task = { meter, inFlight: 1, overlaps: 0, peakFresh: false };
    const alone = meterBefore(task, 0);
    meterAfter(alone, task, after(clock)); // alone: read, not kept for the turn
    const reads = c.reads;
    task.inFlight = 2;
    task.overlaps = 1;
    const a = meterBefore(task, 0);
    const b = meterBefore(task, 0);
    c.cpuMs = 20;
    meterAfter(a, task, after(clock));
    meterAfter(b, task, after(clock));
    expect(c.reads - reads).toBe(1); // one reading for both, none left from the alone one
    clock.advance(0); // the next turn
    const d = meterBefore(task, 0);
    c.cpuMs = 40;
    expect(meterAfter(d, task, after(clock)).cpuMs).toBe(10); // read again: 20 ms over 2
    expect(c.reads - reads).toBe(2);
  });

  it("resets the peak after an answer only once no request is in the container", () => {
    const { c, meter } = counters();
    const clock = new FakeClock();
    const task = { meter, inFlight: 1, overlaps: 0, peakFresh: false };
    meterAfter(meterBefore(task, 0), task, after(clock));
    const resets = c.resets;
    // Another request came in before the reset ran: the reset waits for it, and it is not fresh.
    clock.advance(0);
    expect([c.resets - resets, task.peakFresh]).toEqual([0, false]);
    // The next request found no fresh reset: it resets on its own path; after its answer, with
    // the container empty, the reset for the one after it runs and holds.
    const next = meterBefore(task, 0);
    expect(next.peakReset).toBe(true);
    task.inFlight = 0;
    meterAfter(next, task, after(clock));
    clock.advance(0);
    expect([c.resets - resets, task.peakFresh]).toEqual([2, true]);
  });
});
