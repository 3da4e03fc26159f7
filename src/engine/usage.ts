/**
 * What a request cost the host (docs/usage.md): per request (the `Meca-Usage` header, GET /requests)
 * and per task key (GET /usage), for a host that prices its tasks. CPU and peak memory come from the
 * task's meter (TaskRuntime: its cgroup); the rest from the engine's own clock and the bytes sent.
 */
import type { Clock, TaskMeter, UsageReading } from "./ports.ts";
import { keyHash, type TaskSpec } from "./task-spec.ts";
import { Histogram } from "./metrics.ts";
import type { RequestUsage } from "./request-usage.ts";

export type { RequestUsage };

/** What a request's measurement holds between its send and its answer (forward.ts). */
export interface Metering {
  meter?: TaskMeter;
  before?: UsageReading;
  /** The request had its container to itself when it was sent; the task's overlap count then. */
  alone: boolean;
  overlaps: number;
  /** Requests in the container when it was sent (this one included). */
  inFlight: number;
  peakReset: boolean;
  sentAt: number;
}

/** RFC 8941 decimal: at most three fractional digits. */
function dec(v: number): string {
  const r = Math.round(v * 1000) / 1000;
  return Number.isInteger(r) ? `${r}.0` : String(r);
}

/** The `Meca-Usage` header: a structured-field dictionary (RFC 8941); an unreadable figure is left out and named in `missing`. */
export function usageHeader(u: RequestUsage): string {
  // One string built in order (on every answer: no arrays to join).
  let h = u.cpuMs === null ? "" : `cpu-ms=${dec(u.cpuMs)}, `;
  if (u.memPeakMB !== null) h += `mem-peak-mb=${dec(u.memPeakMB)}, `;
  h +=
    `wall-ms=${dec(u.wallMs)}, queue-ms=${dec(u.queueMs)}, start-ms=${dec(u.startMs)}, ` +
    `gpu-ms=${dec(u.gpuMs)}, in-bytes=${u.inBytes}, out-bytes=${u.outBytes}, ` +
    `exact=${u.exact ? "?1" : "?0"}`;
  if (u.memPeakMB !== null && u.memPeakSinceStart) h += ", mem-peak-since-start";
  if (u.cpuMs === null || u.memPeakMB === null) {
    const missing =
      u.cpuMs === null
        ? u.memPeakMB === null
          ? '"cpu-ms" "mem-peak-mb"'
          : '"cpu-ms"'
        : '"mem-peak-mb"';
    h += `, missing=(${missing})`;
  }
  return h;
}

/** The same numbers as JSON (GET /requests), rounded as the header rounds them. */
export function usageJson(u: RequestUsage) {
  const r = (v: number) => Math.round(v * 1000) / 1000;
  return {
    cpu_ms: u.cpuMs === null ? null : r(u.cpuMs),
    mem_peak_mb: u.memPeakMB === null ? null : r(u.memPeakMB),
    mem_peak_since_start: u.memPeakSinceStart,
    wall_ms: r(u.wallMs),
    queue_ms: r(u.queueMs),
    start_ms: r(u.startMs),
    gpu_ms: r(u.gpuMs),
    in_bytes: u.inBytes,
    out_bytes: u.outBytes,
    exact: u.exact,
  };
}

/** What the book keeps of a task key's spec. */
export type BookedSpec = Pick<
  TaskSpec,
  "image" | "runtimeKind" | "cpuTenths" | "memMB" | "gpuCount"
>;

/** Samples kept per key for its percentiles; totals and maxima count every request. */
const SAMPLES = 1024;
/** Keys kept at most; past it the least recently used row goes. */
const ROWS = 256;

class Figure {
  #ring: number[] = [];
  #next = 0;
  total = 0;
  max = 0;
  count = 0;

  add(v: number): void {
    this.total += v;
    this.max = Math.max(this.max, v);
    this.count++;
    this.#ring[this.#next] = v; // while it fills, #next is its length: the ring grows
    this.#next = (this.#next + 1) % SAMPLES;
  }

  summary(withTotal: boolean) {
    const sorted = [...this.#ring].sort((a, b) => a - b);
    const at = (p: number) =>
      sorted.length === 0 ? 0 : sorted[Math.ceil((p / 100) * sorted.length) - 1]!; // p in (0, 100]: an index in range
    const round = (v: number) => Math.round(v * 1000) / 1000;
    return {
      mean: round(this.count === 0 ? 0 : this.total / this.count),
      p50: round(at(50)),
      p95: round(at(95)),
      max: round(this.max),
      ...(withTotal ? { total: round(this.total) } : {}),
    };
  }
}

interface Row {
  key: string;
  image: string;
  runtime: string;
  resource: { cpu: number; mem: number; gpus: number };
  requests: number;
  coldStarts: number;
  cpu: Figure;
  mem: Figure;
  wall: Figure;
  start: Figure;
  gpuMs: number;
}

/** Peak memory of requests, MB (the histogram of GET /metrics). */
export const MEM_PEAK_BUCKETS = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384] as const;
/** Images with series of their own on GET /metrics; the rest count under "other" (counters never go down). */
const IMAGES = 256;

/** What the tasks of one image used since start: the counters of GET /metrics. */
export interface ImageUse {
  cpuSeconds: number;
  gpuSeconds: number;
  memPeakMB: Histogram;
}

/** Usage per task key since start (GET /usage): what a host prices. In memory, bounded in rows. */
export class UsageBook {
  #rows = new Map<string, Row>();
  #images = new Map<string, ImageUse>();

  /** Per image, for GET /metrics: bounded by the images a host has run (past 256, "other"). */
  byImage(): ReadonlyMap<string, ImageUse> {
    return this.#images;
  }

  #image(image: string): ImageUse {
    const name = this.#images.has(image) || this.#images.size < IMAGES ? image : "other";
    let use = this.#images.get(name);
    if (!use) {
      use = { cpuSeconds: 0, gpuSeconds: 0, memPeakMB: new Histogram(MEM_PEAK_BUCKETS) };
      this.#images.set(name, use);
    }
    return use;
  }

  /** The key of the row used last: a run of one key's requests keeps its place without a move. */
  #lastKey?: string;

  /** Counts request `u` for task key `key`, whose spec `spec` is (read once, when the key's row is made). */
  add(key: string, spec: BookedSpec, u: RequestUsage): void {
    let row = this.#rows.get(key);
    if (row) {
      // Stryker disable next-line ConditionalExpression: moving the row used last to the end again changes no order; the check saves the move
      if (this.#lastKey !== key) {
        this.#rows.delete(key);
        this.#rows.set(key, row); // most recent last
      }
    } else {
      row = {
        key,
        image: spec.image,
        runtime: spec.runtimeKind,
        resource: { cpu: spec.cpuTenths / 10, mem: spec.memMB, gpus: spec.gpuCount },
        requests: 0,
        coldStarts: 0,
        cpu: new Figure(),
        mem: new Figure(),
        wall: new Figure(),
        start: new Figure(),
        gpuMs: 0,
      };
      if (this.#rows.size >= ROWS) this.#rows.delete(this.#rows.keys().next().value!);
      this.#rows.set(key, row);
    }
    this.#lastKey = key;
    row.requests++;
    if (u.startMs > 0) {
      row.coldStarts++;
      row.start.add(u.startMs);
    }
    if (u.cpuMs !== null) row.cpu.add(u.cpuMs);
    if (u.memPeakMB !== null) row.mem.add(u.memPeakMB);
    const img = this.#image(spec.image);
    img.cpuSeconds += (u.cpuMs ?? 0) / 1000;
    img.gpuSeconds += u.gpuMs / 1000;
    if (u.memPeakMB !== null) img.memPeakMB.observe(u.memPeakMB);
    row.wall.add(u.wallMs);
    row.gpuMs += u.gpuMs;
  }

  /** One row per key, in the order they were last used (most recent last). */
  rows() {
    return [...this.#rows.values()].map((r) => ({
      // Hashed when read, as GET /tasks shows it: the warm path hashes nothing.
      key: keyHash(r.key),
      image: r.image,
      runtime: r.runtime,
      resource: r.resource,
      requests: r.requests,
      cold_starts: r.coldStarts,
      cpu_ms: r.cpu.summary(true),
      mem_peak_mb: r.mem.summary(false),
      wall_ms: r.wall.summary(true),
      start_ms: r.start.summary(true),
      gpu_ms_total: Math.round(r.gpuMs * 1000) / 1000,
    }));
  }
}

/** What the meter reads and keeps per task (Task). */
interface Metered {
  meter?: TaskMeter;
  inFlight: number;
  overlaps: number;
  lastCpuMs?: number;
  peakFresh: boolean;
  turnReading?: UsageReading;
}

/** Before a request is sent: the meter's reading, and whether it has the container to itself (and then its own peak). */
export function meterBefore(task: Metered, now: number): Metering {
  const meter = task.meter;
  const alone = task.inFlight <= 1;
  // The peak was reset after the container's last answer (meterAfter) and nothing ran since: the
  // request's own peak without a write on its path. Otherwise it is reset now.
  const peakReset =
    alone && meter !== undefined && meter.peakResettable && (task.peakFresh || meter.resetPeak());
  task.peakFresh = false;
  return {
    meter,
    // The reading after the container's last request is this one's start: one read per request
    // saved, and CPU the task spends between requests is charged to the next one (docs/usage.md).
    // Stryker disable next-line BooleanLiteral: the reading before is used for its CPU only
    before: task.lastCpuMs !== undefined ? { cpuMs: task.lastCpuMs } : meter?.read(false),
    alone,
    overlaps: task.overlaps,
    inFlight: Math.max(1, task.inFlight),
    peakReset,
    sentAt: now,
  };
}

/** After the answer: the request's share of the container's use while it ran. */
export function meterAfter(
  m: Metering,
  task: Metered,
  o: {
    now: number;
    gpus: number;
    inBytes: number;
    outBytes: number;
    /** Runs the next request's peak reset once this answer is written (soon()). */
    clock: Pick<Clock, "soon">;
  },
): Omit<RequestUsage, "queueMs" | "startMs"> {
  const alone = m.alone && task.overlaps === m.overlaps;
  // Overlapping requests answered in one I/O turn share one reading: the container's CPU in that
  // time is divided among them anyway, and its peak is theirs together.
  let after = alone ? undefined : task.turnReading;
  if (!after) {
    after = m.meter?.read();
    if (!alone && after) {
      task.turnReading = after;
      o.clock.soon(() => (task.turnReading = undefined));
    }
  }
  task.lastCpuMs = after?.cpuMs;
  // The last request in the container: reset its peak for the next one off the answer's path,
  // unless a request has started in it by then (that one then resets on its own path).
  // Stryker disable next-line ConditionalExpression,LogicalOperator: a reset scheduled with others in the container, or on a meter that cannot reset, does nothing (checked when it runs): the condition saves the scheduling
  if (task.inFlight <= 1 && m.meter?.peakResettable)
    o.clock.soon(() => {
      // Stryker disable next-line OptionalChaining: scheduled only for a task with a meter, which it keeps
      if (task.inFlight === 0 && task.meter?.resetPeak()) task.peakFresh = true;
    });
  // Overlapped: the container's CPU in that time is shared among the requests in it.
  const sharers = alone ? 1 : Math.max(m.inFlight, task.inFlight, 2);
  // A sampled meter's figures are the samples' difference, not the request's own: never exact.
  const exact = alone && m.meter?.sampled !== true;
  const cpuMs = after && m.before ? Math.max(0, after.cpuMs - m.before.cpuMs) / sharers : null;
  const wallMs = Math.max(0, o.now - m.sentAt);
  return {
    cpuMs,
    memPeakMB: after?.memPeakMB ?? null,
    memPeakSinceStart: !m.peakReset,
    wallMs,
    gpuMs: o.gpus * wallMs,
    inBytes: o.inBytes,
    outBytes: o.outBytes,
    exact,
  };
}
