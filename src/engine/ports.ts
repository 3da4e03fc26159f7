import type { TaskSpec } from "./task-spec.ts";

/**
 * The engine's only door out. Everything the executor needs from the world is
 * declared here; `src/platform/` implements it, `test/fakes/` fakes it.
 * Web-standard types only: no `node:` import, no Deno global.
 */

/** Structured logger: `msg` is for a person, `fields` for a machine. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** A logger whose every line carries `fields` as well (component, request id). */
  child(fields: Record<string, unknown>): Logger;
}

/** Time, injectable so that tests of idle cleaning need no real waiting. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `fn` once after `ms`; the returned function cancels it. */
  setTimer(ms: number, fn: () => void): () => void;
  /** Calls `fn` once, soon: after the I/O now pending (an answer being written) is done, before new I/O is read. */
  soon(fn: () => void): void;
}

/** The host the executor runs on. */
export interface HostProbe {
  /** Logical CPU cores. */
  cores(): Promise<number>;
  /** Total memory in MB (1 MB = 2^20 bytes). */
  memoryMB(): Promise<number>;
  /** Current whole-host use, in percent. */
  usage(): Promise<{ cpuPercent: number; memPercent: number }>;
  /**
   * Memory the host can give programs now without swapping (Linux: MemAvailable), in MB; undefined
   * when it cannot be read.
   */
  availableMemoryMB(): Promise<number | undefined>;
}

export interface GpuDevice {
  index: number;
  uuid: string;
  model: string;
  /** GPU utilisation over the driver's last sample period, 0..100. */
  utilizationPercent: number;
  memoryUsedMB: number;
  memoryTotalMB: number;
}

/** NVIDIA GPUs through NVML. */
export interface GpuProbe {
  /** Reads every device now. Rejects when NVML fails. */
  sample(): Promise<GpuDevice[]>;
  /** Releases the library (nvmlShutdown). */
  close(): void;
}

export interface EngineInfo {
  /** Engine version, e.g. "20.10.24". */
  version: string;
  /** Engine API version, e.g. "1.41". */
  apiVersion: string;
  /** Runtimes registered in the engine, e.g. ["runc", "runsc"]. */
  runtimes: string[];
  /** Name of the engine's default runtime. */
  defaultRuntime: string;
  /** How the executor reaches it, e.g. "unix:///var/run/docker.sock". */
  transport: string;
  /** The engine host's machine as `uname -m` names it (x86_64, aarch64), where the engine says. */
  machine?: string;
}

/** One reading of a task's writable layer. */
export interface LayerReading {
  bytes: number;
  /** Milliseconds the reading kept the executor busy, waits excluded (0 when the engine measured). */
  workMs: number;
}

/**
 * The disk the tasks write to, as the executor sees it. A layer's reading costs in proportion to
 * its files (the guard measures how long it took and spaces the next one out); neither read throws
 * (an engine error is an undefined reading).
 */
export interface DiskProbe {
  /** true while the engine enforces ContainerSpec.diskBytes itself; false: the executor must measure. */
  enforcedByEngine(): boolean;
  /**
   * Bytes of disk a container's writable layer holds now, and the milliseconds of work the reading
   * took (not the waits in between); undefined when it cannot be read. With `stopAbove`, the count
   * may stop as soon as it passes that many bytes (the answer is then some figure above it): the
   * layer is over its bound, and the rest need not be read.
   */
  layerBytes(containerId: string, opts?: { stopAbove?: number }): Promise<LayerReading | undefined>;
  /** Free MB on the filesystem of the engine's data root; undefined when the executor cannot see it. */
  freeMB(): Promise<number | undefined>;
}

/** One replica the engine asks its runtime to run (see docs/architecture.md, "The task runtime"). */
export interface TaskLaunch {
  /** The replica's id: unique among the runtime's tasks, and its name there. */
  name: string;
  spec: TaskSpec;
  /** Devices of the GPUs reserved for it (UUIDs where NVML gave them, else NVML indexes); none: []. */
  gpus: readonly string[];
  /**
   * Kept with the task and given back by leftovers(), so that a later run can tell its key and
   * spec (adoption.ts reads them).
   */
  keyHash: string;
  specLabel: string;
}

/**
 * Where a task is reached: by name, a network of its own (`isolated`), a shared one, or
 * "published"; `details` are the runtime's own words about it (Docker: its network's address
 * block), shown as they are.
 */
export interface Placement {
  name: string;
  isolated: boolean;
  details?: Record<string, string>;
}

/** A task's counters as the kernel keeps them (its cgroup), read now. */
export interface UsageReading {
  /** CPU time its container has used since it started, ms. */
  cpuMs: number;
  /** Its container's peak memory, MB: since the last resetPeak(), or since it started; undefined when unreadable. */
  memPeakMB?: number;
}

/**
 * A task's resource meter (docs/usage.md): synchronous and cheap (a few positioned reads of open
 * files), so the engine reads it before and after each request. Never throws.
 */
export interface TaskMeter {
  /** What it reads, e.g. "cgroup v1". */
  readonly source: string;
  /** Whether resetPeak() can work here (cgroup v1); otherwise the peak is the task's since it started. */
  readonly peakResettable: boolean;
  /**
   * Its readings are samples the runtime took, up to about a second old (the Engine API's
   * statistics): a request's figures are then coarse, and never marked exact.
   */
  readonly sampled?: boolean;
  /** The counters now (the peak only `withPeak`, default true); undefined when they cannot be read (the task is gone). */
  read(withPeak?: boolean): UsageReading | undefined;
  /** Starts the peak memory again from the current use; false where it cannot. */
  resetPeak(): boolean;
}

/** A task running and ready: it printed the ready mark, and its port 8080 is reachable at `endpoint`. */
export interface StartedTask {
  /** The runtime's id for it (a container id); what remove(), inspect() and events name it by. */
  id: string;
  /** Base URL of its port 8080, as TaskClient takes it, e.g. `http://127.0.0.1:49153`. */
  endpoint: string;
  placement: Placement;
  /** Where the start's time went, for the log: each step's end, in ms after start() was called. */
  steps: Record<string, number>;
  /** Its resource meter; undefined where the runtime cannot see its accounting (or usage is off). */
  meter?: TaskMeter;
}

/** A task's state as the runtime sees it now. */
export interface TaskState {
  running: boolean;
  /** The runtime's status word (Docker: created, running, exited, dead). */
  status: string;
  exitCode: number;
  /** Killed for passing its memory limit. */
  oomKilled: boolean;
}

/** Something that happened to a task: it died (exit code), was killed for memory, or was removed. */
export interface TaskEvent {
  id: string;
  action: "die" | "oom" | "destroy";
  exitCode?: number;
}

/**
 * A task an earlier run of this instance left, as facts for adoption to judge (adoption.ts): the
 * runtime judges nothing but whether it could reach it again (`unreachable`).
 */
export interface LeftoverTask {
  id: string;
  name: string;
  running: boolean;
  status: string;
  /** What its launch kept (TaskLaunch.keyHash, specLabel); undefined when absent. */
  keyHash?: string;
  specLabel?: string;
  /** Its limits as the runtime holds them: CPU in 1e-9 cores, memory in bytes. */
  nanoCpus?: number;
  memoryBytes?: number;
  /** The runtime it runs under ("" for the engine's default). */
  runtime?: string;
  /** Devices of its GPUs, as TaskLaunch.gpus gave them. */
  gpus?: string[];
  /** Why it could not be reached as one of this run's tasks (e.g. not on a network of its own); undefined: it can. */
  unreachable?: string;
  /** Whether its output holds the ready mark: the earlier run saw it ready. */
  ready: boolean;
  /** When it started, ms since the epoch; 0 when unknown. */
  startedAt: number;
}

/**
 * The engine's one door to where tasks run (docs/architecture.md, "The task runtime"). The engine
 * decides (keys, admission, the ledger, adoption's rules, every timeout: through the signals it
 * passes); the runtime carries out. Docker's is src/platform/docker/docker-tasks.ts; an in-memory
 * one is in test/fakes. Failures are the errors of errors.ts.
 */
export interface TaskRuntime {
  /** What to tell an operator: the engine's name, and how to get one when it does not answer. */
  readonly help: { name: string; unreachable: string };
  /**
   * The engine behind it. Rejects with EngineUnavailableError (its message says how to get one)
   * when it does not answer, or with the signal's reason.
   */
  info(signal?: AbortSignal): Promise<EngineInfo>;
  /** Where a task will be reached before it starts: a network of its own ("" until then), a shared one, or published. */
  readonly placement: Placement;
  /** Whether the image is in the engine's store. */
  hasImage(ref: string): Promise<boolean>;
  /**
   * Pulls `ref`; `onProgress` gets every progress message (so a pull that sends none has stalled).
   * Aborting `signal` cancels it. Rejects with ImageNotFoundError or ImagePullFailedError.
   */
  pullImage(
    ref: string,
    opts?: { onProgress?: (p: PullProgress) => void; signal?: AbortSignal },
  ): Promise<void>;
  /**
   * Runs the launch until it is ready (its ready mark, its endpoint) and resolves with it.
   * `onCreated` gets the task's id as soon as it exists; `onStarted` is called once its process
   * runs, and the signal it returns bounds the wait for its readiness from then on (the engine's
   * ready timeout: a slow engine's create and start do not count against the task). Rejects with ContainerExitedError when
   * the task exits first (exit code, last lines), with NoCapacityError when it has no room of its
   * own (no free network), with TaskStartError for the engine's refusals, and with
   * StartAbortedError (the signal's reason, the task's last lines) when `signal` aborts. On every
   * failure what it made is removed before it rejects.
   */
  start(
    launch: TaskLaunch,
    opts: {
      signal: AbortSignal;
      onCreated?: (id: string) => void;
      onStarted?: () => AbortSignal;
    },
  ): Promise<StartedTask>;
  /** Removes a task and what it alone used (its network); one already gone is not an error. */
  remove(id: string): Promise<void>;
  /** A task's state now; undefined when it is gone. */
  inspect(id: string): Promise<TaskState | undefined>;
  /**
   * Streams the events of this instance's tasks until the stream ends (resolves) or fails
   * (rejects); the caller reconnects.
   */
  watch(opts: { onEvent: (event: TaskEvent) => void; signal: AbortSignal }): Promise<void>;
  /** Tasks of this instance that earlier runs left, running or not. */
  leftovers(): Promise<LeftoverTask[]>;
  /**
   * Takes a leftover back as one of this run's tasks: reachable again (its network held and
   * joined) at the endpoint it resolves with. Rejects with the reason it cannot; then it is not
   * this run's, and remove() removes it.
   */
  adopt(id: string): Promise<StartedTask>;
  /**
   * Tidies what no task of this run holds: this run's containers it never handed back (a create
   * whose answer was lost) and removals that failed; with `earlierRuns` (once adoption is done),
   * also what earlier runs left that no adopted task holds, and tops up what it keeps ready.
   * Never touches a task started or adopted and not removed.
   */
  sweep(opts?: { earlierRuns?: boolean }): Promise<void>;
  /** Stops keeping anything ready and removes it; what tasks not removed hold stays (for adoption). */
  close(): Promise<void>;
}

/** Where a pull stands, after one progress message of the engine. */
export interface PullProgress {
  /** A line for the log; undefined when byte progress came sooner than a second after the last line. */
  line?: string;
  /** Layers seen so far, and those downloaded and extracted ("Pull complete", "Already exists"). */
  layers: number;
  layersDone: number;
  /** Bytes downloaded so far, and the sum of the layers' sizes known so far. */
  bytesDone: number;
  bytesTotal: number;
}

export interface TaskRequest {
  method: "GET" | "POST";
  /** The task's base URL, as TaskRuntime.start() gave it: `http://127.0.0.1:<port>` or `http://<name>:8080`. */
  endpoint: string;
  /** "/", "/ra" or "/run". */
  path: string;
  body?: string;
  signal?: AbortSignal;
}

export interface TaskResponse {
  status: number;
  body: string;
  /** Bytes of the request's body as sent (UTF-8), and of the answer's body as received. */
  sent: number;
  received: number;
}

/**
 * Whether something accepts a TCP connection at a task's base URL now (opened and closed at once,
 * nothing sent): adoption's check that a leftover task still listens. Never rejects.
 */
export type ConnectProbe = (endpoint: string, signal: AbortSignal) => Promise<boolean>;

/**
 * HTTP client for task containers: the hot path. Rejects with
 * TaskConnectError when no connection could be made (nothing reached the
 * task), so the engine knows a retry is safe.
 */
export interface TaskClient {
  send(req: TaskRequest): Promise<TaskResponse>;
  /** Drops pooled connections to an endpoint whose task is gone. */
  forget(endpoint: string): void;
  close(): Promise<void>;
}
