/**
 * The Docker engine as the Docker task runtime (docker-tasks.ts) drives it, step by step: containers,
 * networks, logs, events. Implemented over the Engine API (docker-backend.ts, any transport) and over
 * dockerode (TLS and ssh hosts); faked in memory for unit tests. The engine never sees this port:
 * it sees TaskRuntime (src/engine/ports.ts).
 */
import type { EngineInfo, PullProgress } from "../../engine/ports.ts";

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
  /**
   * Run in the network namespace of this (running) container instead (`NetworkMode:
   * container:<id>`): no network of its own to set up at start, reached at that container's
   * address. Overrides `network`.
   */
  sharesNetworkOf?: string;
  /** Its root file system read-only. */
  readOnlyRoot?: boolean;
  /** The user its process runs as, e.g. "65534:65534"; unset: the image's. */
  user?: string;
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
  /** HostConfig.CgroupParent: the tasks' parent cgroup (cpu-priority.ts); unset: the engine's default. */
  cgroupParent?: string;
  privileged: false;
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
  /** The container whose network namespace it runs in (`NetworkMode: container:<id>`). */
  sharesNetworkOf?: string;
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

/**
 * A Docker-like container engine. Implementations wrap their low-level
 * failures in the errors of `errors.ts` (EngineUnavailableError when the
 * engine does not answer, ImageNotFoundError when a pull finds nothing).
 */
/** One sample of a container's counters, as the Engine API's stats give them. */
export interface StatsSample {
  /** CPU time of the container since it started, ns (cpu_stats.cpu_usage.total_usage). */
  cpuNs: number;
  /** Its peak memory since it started, bytes (memory_stats.max_usage: cgroup v1 only). */
  maxMemoryBytes?: number;
}

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
  /**
   * Makes the image `ref` (repository:tag) of one layer from `tar`, the files of its root;
   * `changes` are Dockerfile instructions (`ENTRYPOINT ["/hold"]`). Failures: EngineUnavailableError,
   * TaskStartError with the engine's reason.
   */
  importImage(ref: string, tar: Uint8Array, changes: string[]): Promise<void>;
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
   * Streams a container's counters as the engine samples them (about once a second) until the
   * stream ends (resolves), fails (rejects) or `signal` aborts (resolves). Optional: a backend
   * without it gives no meter where the tasks' cgroups cannot be read (docs/usage.md).
   */
  watchStats?(
    id: string,
    opts: { onSample: (s: StatsSample) => void; signal: AbortSignal },
  ): Promise<void>;
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
