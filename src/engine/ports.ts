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
}

/** The host the executor runs on. */
export interface HostProbe {
  /** Logical CPU cores. */
  cores(): Promise<number>;
  /** Total memory in MB (1 MB = 2^20 bytes). */
  memoryMB(): Promise<number>;
  /** Current whole-host use, in percent. */
  usage(): Promise<{ cpuPercent: number; memPercent: number }>;
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
}

/** What the engine asks the container backend to create. */
export interface ContainerSpec {
  name: string;
  image: string;
  labels: Record<string, string>;
  /** CPU limit in units of 1e-9 cores. */
  nanoCpus: number;
  /** Memory limit in bytes; swap is limited to the same value. */
  memoryBytes: number;
  pidsLimit: number;
  /** Docker runtime name; undefined means the engine's default. */
  runtime?: string;
  /** GPUs to pass through (DeviceRequests, driver nvidia, capability gpu), by NVML index. */
  gpus?: string[];
  /** SGX: host device mapped to /dev/sgx/enclave, AESM socket folder bound to /var/run/aesmd. */
  sgx?: { device: string; aesmdPath: string };
  /** Join this Docker network and be reached by name; otherwise 8080 is published on 127.0.0.1. */
  network?: string;
  securityOpt: string[];
  /** Capabilities taken away on top of Docker's defaults, e.g. ["NET_RAW"]. */
  capDrop?: string[];
  /** Open-files limit, soft and hard. */
  nofile?: number;
  /**
   * Bound on the writable layer; the backend asks the engine to enforce it (StorageOpt size) where
   * the storage driver can, and says so in DiskProbe.enforcedByEngine(). Unset: unbounded.
   */
  diskBytes?: number;
  /** Size of /dev/shm (a tmpfs, charged to the container's memory). */
  shmBytes?: number;
  privileged: false;
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

/** A bridge network of one task's own (see docs/architecture.md, "Isolation"). */
export interface NetworkSpec {
  name: string;
  /** IPv4 CIDR, e.g. "10.201.0.16/28"; the engine takes its first address as the gateway. */
  subnet: string;
  /** The bridge's interface name on the host (`com.docker.network.bridge.name`), at most 15 characters. */
  bridge?: string;
  /** No route out of the network: Docker's `Internal` flag. */
  internal: boolean;
  /**
   * The host takes no address on the bridge (`com.docker.network.bridge.inhibit_ipv4`): nothing of
   * the host is on the network. Only where the executor joins it from a container of its own.
   */
  hostless?: boolean;
  labels: Record<string, string>;
}

export interface NetworkSummary {
  id: string;
  name: string;
  labels: Record<string, string>;
  /** IPv4 CIDRs of its IPAM config. */
  subnets: string[];
}

export interface ContainerState {
  id: string;
  running: boolean;
  /** Docker's status word: created, running, exited, dead, ... */
  status: string;
  exitCode: number;
  oomKilled: boolean;
  /**
   * What adoption reads back (see docs/architecture.md, "Adoption"); a backend fills them where it
   * can. The container's name, labels, CPU limit (1e-9 cores), memory limit (bytes), Docker runtime
   * ("" for the engine's default), GPU device ids (DeviceRequests), the networks it is attached to,
   * and when it started (ms since the epoch).
   */
  name?: string;
  labels?: Record<string, string>;
  nanoCpus?: number;
  memoryBytes?: number;
  runtime?: string;
  gpuIds?: string[];
  networks?: string[];
  startedAt?: number;
}

export interface ContainerSummary {
  id: string;
  name: string;
  labels: Record<string, string>;
  state: string;
}

export interface ContainerEvent {
  id: string;
  /** Docker's action: die, oom, kill, stop, destroy, start, ... */
  action: string;
  labels: Record<string, string>;
  exitCode?: number;
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

/**
 * A Docker-like container engine. Implementations wrap their low-level
 * failures in the errors of `errors.ts` (EngineUnavailableError when the
 * engine does not answer, ImageNotFoundError when a pull finds nothing).
 */
export interface ContainerBackend {
  info(signal?: AbortSignal): Promise<EngineInfo>;
  hasImage(ref: string): Promise<boolean>;
  /**
   * Pulls `ref` with the credentials the engine's client has for its registry. `onProgress` gets
   * every progress message of the engine (so a pull that sends none has stalled), with a readable
   * `line` at most once a second for byte progress. Aborting `signal` cancels the engine's pull.
   * Failures: ImageNotFoundError (no such image), ImagePullFailedError (refused, or failed).
   */
  pullImage(
    ref: string,
    opts?: { onProgress?: (p: PullProgress) => void; signal?: AbortSignal },
  ): Promise<void>;
  /** Creates the container and returns its id. */
  create(spec: ContainerSpec): Promise<string>;
  start(id: string): Promise<void>;
  /**
   * Base URL of the task's port 8080 once started: `http://127.0.0.1:<published port>`,
   * or, when it joined `network`, `http://<container name>:8080` (`http://<its address>:8080`
   * with `byAddress`, and always on Docker's default bridge, which has no DNS).
   */
  endpoint(id: string, opts?: { network?: string; byAddress?: boolean }): Promise<string>;
  /**
   * Follows the container's demultiplexed stdout until `mark` appears within a line (after a
   * prefix, or in a last line with no newline), as soon as its bytes arrive.
   * Rejects with ContainerExitedError (exit code, last log lines) when the
   * container stops first, with the signal's reason when `signal` aborts.
   */
  waitForMark(id: string, opts: { mark: string; signal: AbortSignal }): Promise<void>;
  /** undefined when no such container exists. */
  inspect(id: string): Promise<ContainerState | undefined>;
  /** Whether `mark` is in the container's output so far (no waiting for more); false when it is gone. */
  hasMark(id: string, mark: string): Promise<boolean>;
  /** The last `lines` lines of stdout and stderr. */
  logsTail(id: string, lines: number): Promise<string[]>;
  /** Force-removes the container; a container already gone is not an error. */
  remove(id: string): Promise<void>;
  /** Containers (running or not) carrying every one of `labels`. */
  list(labels: Record<string, string>): Promise<ContainerSummary[]>;
  /**
   * Streams container events for containers carrying `labels` until the
   * stream ends (resolves) or fails (rejects); the caller reconnects.
   */
  watchEvents(opts: {
    labels: Record<string, string>;
    onEvent: (event: ContainerEvent) => void;
    signal: AbortSignal;
  }): Promise<void>;
  /**
   * Creates a bridge network and returns its id. Rejects with TaskStartError code
   * "SUBNET_TAKEN" when the subnet overlaps another network of the engine.
   */
  createNetwork(spec: NetworkSpec): Promise<string>;
  /** Removes a network; one already gone is not an error. */
  removeNetwork(id: string): Promise<void>;
  /** Networks carrying every one of `labels`. */
  listNetworks(labels: Record<string, string>): Promise<NetworkSummary[]>;
  /** Attaches a container to a network; already attached is not an error. */
  connectNetwork(network: string, container: string): Promise<void>;
  /** Detaches a container; not attached, or either gone, is not an error. */
  disconnectNetwork(network: string, container: string): Promise<void>;
  close(): Promise<void>;
}

export interface TaskRequest {
  method: "GET" | "POST";
  /** The task's base URL, as ContainerBackend.endpoint() gave it: `http://127.0.0.1:<port>` or `http://<name>:8080`. */
  endpoint: string;
  /** "/", "/ra" or "/run". */
  path: string;
  body?: string;
  signal?: AbortSignal;
}

export interface TaskResponse {
  status: number;
  body: string;
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
