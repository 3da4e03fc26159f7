/**
 * What the engine counts, as plain numbers: counters, histograms and a
 * snapshot of its gauges. No exposition format here; `src/http/` renders
 * them (Prometheus text). Updating one is an increment or two, so the hot
 * path may count freely.
 */
import type { GpuDevice } from "./ports.ts";

/** A number that only goes up. */
export class Counter {
  value = 0;

  inc(by = 1): void {
    this.value += by;
  }
}

/** Observations counted into fixed buckets (upper bounds, ascending), with their sum and count. */
export class Histogram {
  readonly bounds: readonly number[];
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last one counts those above every bound. */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }

  /** Observations at or below each bound, then the total (Prometheus `le`, ending with +Inf). */
  cumulative(): number[] {
    let n = 0;
    return this.counts.map((c) => (n += c));
  }
}

/** Seconds from launching a task (pull included) to its ready mark. */
export const COLD_START_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300] as const;

/** The engine's counters, updated by the pool, admission, the cleaner and the executor. */
export class EngineMetrics {
  /** Tasks that became ready, by seconds from launch to the ready mark. */
  readonly coldStarts = new Histogram(COLD_START_BUCKETS);
  /** Tasks that failed to start (image missing, crashed or never ready, engine errors). */
  readonly startFailures = new Counter();
  /** Images pulled because they were absent. */
  readonly pulls = new Counter();
  /** Requests answered by a task (any status); the sum of `served` over every task there ever was. */
  readonly served = new Counter();
  /** Execute requests answered, whatever the outcome (a 400 for a malformed id too). */
  readonly executed = new Counter();
  /** Requests retried once on a fresh container because the first one was gone. */
  readonly retries = new Counter();
  /** Idle tasks removed to make room for another. */
  readonly evictions = new Counter();
  /** Tasks removed after `timeout` idle minutes. */
  readonly idleRemovals = new Counter();
  /** Tasks removed because their writable layer grew past task_disk_mb. */
  readonly diskExceeded = new Counter();
  /** Starts refused because the engine's data root had less free space than min_free_disk_mb. */
  readonly diskLow = new Counter();
  /** Replicas prewarm started. */
  readonly prewarmStarts = new Counter();
  /** Requests served by a prewarmed replica that was ready when they came. */
  readonly prewarmHits = new Counter();
  /** Starts that had to wait in the queue for capacity. */
  readonly queued = new Counter();
  /** Queued starts refused after the queue timeout. */
  readonly queueTimeouts = new Counter();
}

/** The gauges at one moment: what GET /metrics reports besides the counters. */
export interface MetricsSnapshot {
  paused: boolean;
  engineReachable: boolean;
  host: { cores: number; memoryMB: number };
  /** Starts waiting for capacity. */
  queueLength: number;
  /** Requests being forwarded to a task now. */
  inFlight: number;
  /** Tasks by lifecycle state (starting, ready, removing). */
  tasks: { starting: number; ready: number; removing: number };
  /** Ready tasks with a request in flight. */
  busyTasks: number;
  ledger: {
    capacity: { cpuTenths: number; memMB: number; gpus: readonly number[] };
    reserved: { cpuTenths: number; memMB: number; gpus: readonly number[] };
    reservations: number;
    /** GPUs held back because other work keeps them busy (last NVML sample). */
    busyGpus: readonly number[];
  };
  /** The last NVML sample; empty without GPUs. */
  gpus: readonly GpuDevice[];
  /** Per key with a replica or a request in line; a key's entry goes with its last replica. */
  keys: readonly KeyGauges[];
}

/** One key's gauges: its replicas (starting or ready), the busy ones, the requests in line. */
export interface KeyGauges {
  /** The key's hash, as on the containers' meca.executor.key label. */
  key: string;
  image: string;
  replicas: number;
  busy: number;
  queued: number;
}
