/**
 * ContainerBackend over the Docker Engine API. The transport is a DockerApi:
 * fetch (unix socket, plain tcp) or dockerode (ssh, TLS); every rule and
 * mapping lives here once.
 */
import { ContainerExitedError, TaskStartError } from "../../engine/errors.ts";
import type { EngineInfo, PullProgress } from "../../engine/ports.ts";
import type {
  ContainerBackend,
  ContainerEvent,
  ContainerSpec,
  ContainerState,
  ContainerSummary,
  NetworkSpec,
  NetworkSummary,
  StatsSample,
} from "./backend.ts";
import type { RegistryCredentials } from "./registry-auth.ts";
import { isApiStatus, type DockerApi, type Filters } from "./docker-api.ts";
import {
  toContainerState,
  toContainerSummary,
  toCreateBody,
  toEndpoint,
  toEngineInfo,
  toLogConfig,
  toNetworkBody,
  toNetworkSummary,
  type TaskLogOptions,
} from "./container-json.ts";
import { createFailure, engineFailure, startFailure } from "./failures.ts";
import { eventFilters, labelFilters, readEvents } from "./events.ts";
import { jsonLines } from "./json-lines.ts";
import { demuxLines, type ByteSource } from "./log-demux.ts";
import { logHasMark, watchForMark } from "./mark-watch.ts";
import { pullError, readPullStream, splitImageRef } from "./pull.ts";
import { isStorageOptRefusal, storageOf, type StorageInfo } from "./storage.ts";

export interface DockerBackendOptions {
  /** Least time between two byte-progress lines of a pull (default 1000 ms). */
  pullThrottleMs?: number;
  /** Log lines kept for a ContainerExitedError (default 20). */
  exitTailLines?: number;
  /** Rotation for task logs, applied when the daemon's log driver is json-file or local. */
  taskLog?: TaskLogOptions;
  /** The credentials for the registry of an image, as the Docker client's config gives them (registry-auth.ts). */
  registryAuth?: (ref: string) => Promise<RegistryCredentials | undefined>;
}

/** Longest log line an error report keeps. */
const REPORT_LINE_CHARS = 1000;

export class DockerBackend implements ContainerBackend {
  #api: DockerApi;
  #pullThrottleMs: number;
  #registryAuth: DockerBackendOptions["registryAuth"];
  #tailLines: number;
  #taskLog: TaskLogOptions | undefined;
  #logConfig: Promise<Record<string, unknown> | undefined> | undefined;
  /** Whether creates ask the engine to bound the writable layer (StorageOpt size): see probeStorage(). */
  #quota = false;
  /** Output streams attached before start, waiting for waitForMark(); cancelled on remove(). */
  #attached = new Map<string, { source: ByteSource; stop: AbortController }>();

  constructor(api: DockerApi, opts: DockerBackendOptions = {}) {
    this.#api = api;
    this.#pullThrottleMs = opts.pullThrottleMs ?? 1000;
    this.#registryAuth = opts.registryAuth;
    this.#tailLines = opts.exitTailLines ?? 20;
    this.#taskLog = opts.taskLog;
  }

  get transport(): string {
    return this.#api.transport;
  }

  async info(signal?: AbortSignal): Promise<EngineInfo> {
    try {
      const [version, info] = await Promise.all([
        this.#api.version(signal),
        this.#api.info(signal),
      ]);
      return toEngineInfo(version, info, this.#api.transport);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw engineFailure(err, "Cannot read the Docker engine's version");
    }
  }

  async hasImage(ref: string): Promise<boolean> {
    try {
      return await this.#api.imageExists(ref);
    } catch (err) {
      throw engineFailure(err, `Cannot inspect image "${ref}"`);
    }
  }

  async pullImage(
    ref: string,
    opts?: { onProgress?: (p: PullProgress) => void; signal?: AbortSignal },
  ): Promise<void> {
    try {
      const auth = await this.#registryAuth?.(ref);
      const stream = await this.#api.pull(splitImageRef(ref), opts?.signal, auth);
      await readPullStream(stream, {
        onProgress: opts?.onProgress,
        throttleMs: this.#pullThrottleMs,
      });
    } catch (err) {
      if (opts?.signal?.aborted) throw opts.signal.reason;
      throw pullError(ref, err);
    }
  }

  async importImage(ref: string, tar: Uint8Array, changes: string[]): Promise<void> {
    const { fromImage: repo, tag } = splitImageRef(ref);
    try {
      // Its answer is read like a pull's: an error line rejects.
      await readPullStream(await this.#api.importImage(tar, { repo, tag }, changes));
    } catch (err) {
      throw engineFailure(err, `Cannot import image "${ref}"`);
    }
  }

  async create(spec: ContainerSpec): Promise<string> {
    const logConfig = await this.#taskLogConfig();
    const quota = this.#quota && spec.diskBytes !== undefined;
    try {
      return await this.#api.createContainer(
        spec.name,
        toCreateBody(quota ? spec : { ...spec, diskBytes: undefined }, logConfig),
      );
    } catch (err) {
      if (!(quota && isApiStatus(err, 400, 500) && isStorageOptRefusal(err.reason)))
        throw createFailure(err, spec);
      // The driver looked able to bound layers but its filesystem cannot: the executor holds the bound from now on.
      this.#quota = false;
      this.storageRefusal = err.reason;
      return this.create(spec);
    }
  }

  /** The daemon's default log driver (json-file, local, journald, ...); undefined when it does not say. */
  async logDriver(): Promise<string | undefined> {
    return (await this.#api.info()).LoggingDriver;
  }

  /** The engine's cgroup driver and version, as /info reports them ("cgroupfs" and "1" when it does not say). */
  async cgroups(): Promise<{ driver: string; version: string }> {
    const info = await this.#api.info();
    return { driver: info.CgroupDriver ?? "cgroupfs", version: info.CgroupVersion ?? "1" };
  }

  /** Reads the storage driver and decides whether creates ask the engine to bound each layer. */
  async probeStorage(): Promise<StorageInfo> {
    let info;
    try {
      info = await this.#api.info();
    } catch (err) {
      throw engineFailure(err, "Cannot read the Docker engine's storage driver");
    }
    const storage = storageOf(info);
    this.#quota = storage.quota;
    return storage;
  }

  /** true while creates ask the engine to bound each task's writable layer. */
  get enforcesDiskQuota(): boolean {
    return this.#quota;
  }

  /** The engine's reason when it refused a StorageOpt size that its driver seemed to support. */
  storageRefusal: string | undefined;

  /**
   * Attaches to the container's output, then starts it: readiness reads the
   * output from its first byte, even when a task floods its log and rotation
   * drops the mark from the log files before anyone reads them.
   */
  async start(id: string): Promise<void> {
    const stop = new AbortController();
    try {
      if (this.#api.attach)
        this.#attached.set(id, { source: await this.#api.attach(id, stop.signal), stop });
      await this.#api.startContainer(id);
    } catch (err) {
      this.#detach(id);
      throw startFailure(err, id, await this.#gpuIds(id));
    }
  }

  async endpoint(id: string, opts?: { network?: string; byAddress?: boolean }): Promise<string> {
    const json = await this.#inspectJson(id);
    const url = json === undefined ? undefined : toEndpoint(json, opts?.network, opts?.byAddress);
    if (url === undefined)
      throw new TaskStartError(`Cannot reach the task's container: port 8080 is not published`, {
        where: id,
      });
    return url;
  }

  async waitForMark(id: string, opts: { mark: string; signal: AbortSignal }): Promise<void> {
    const { mark, signal } = opts;
    signal.throwIfAborted();
    const tail: string[] = [];
    const keep = (line: string) => {
      tail.push(line.length > REPORT_LINE_CHARS ? `${line.slice(0, REPORT_LINE_CHARS)}...` : line);
      if (tail.length > this.#tailLines) tail.shift();
    };
    const attached = this.#attached.get(id);
    this.#attached.delete(id);
    try {
      const logs = (s: AbortSignal) => this.#api.logs(id, { follow: true, signal: s });
      if (await watchForMark({ mark, signal, logs, attached, onLine: keep })) return;
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      // 404 or 409 ("dead or marked for removal"): the container is gone; say so below.
      if (!isApiStatus(err, 404, 409))
        throw engineFailure(err, `Cannot follow the logs of the task's container`, id);
    }
    signal.throwIfAborted();
    const state = await this.#settledState(id, signal);
    if (state === undefined) {
      throw new ContainerExitedError(-1, tail, `Task container was removed before it was ready`);
    }
    if (state.running)
      throw new TaskStartError(
        `Log stream of the task's container ended while it was still running`,
        { where: id },
      );
    throw new ContainerExitedError(state.exitCode, tail);
  }

  async inspect(id: string): Promise<ContainerState | undefined> {
    const json = await this.#inspectJson(id);
    return json === undefined ? undefined : toContainerState(json);
  }

  async hasMark(id: string, mark: string): Promise<boolean> {
    try {
      return await logHasMark(await this.#api.logs(id, { follow: false }), mark);
    } catch (err) {
      if (isApiStatus(err, 404)) return false;
      throw engineFailure(err, `Cannot read the logs of the task's container`, id);
    }
  }

  async logsTail(id: string, lines: number): Promise<string[]> {
    const out: string[] = [];
    try {
      for await (const { line } of demuxLines(
        await this.#api.logs(id, { follow: false, tail: lines }),
      ))
        out.push(line);
    } catch (err) {
      if (isApiStatus(err, 404)) return out;
      throw engineFailure(err, `Cannot read the logs of the task's container`, id);
    }
    return out.slice(-lines);
  }

  async remove(id: string): Promise<void> {
    this.#detach(id);
    try {
      await this.#api.removeContainer(id);
    } catch (err) {
      if (isApiStatus(err, 404)) return;
      if (isApiStatus(err, 409) && /already in progress/i.test(err.reason)) return;
      throw engineFailure(err, `Cannot remove the task's container`, id);
    }
  }

  async list(labels: Record<string, string>): Promise<ContainerSummary[]> {
    try {
      return (await this.#api.listContainers({ label: labelFilters(labels) })).map(
        toContainerSummary,
      );
    } catch (err) {
      throw engineFailure(err, "Cannot list containers");
    }
  }

  /** Resolves when the stream ends or `signal` aborts; rejects when the stream fails. */
  async watchEvents(opts: {
    labels: Record<string, string>;
    onEvent: (event: ContainerEvent) => void;
    signal: AbortSignal;
  }): Promise<void> {
    if (opts.signal.aborted) return;
    try {
      await readEvents(
        await this.#api.events(eventFilters(opts.labels), opts.signal),
        opts.onEvent,
      );
    } catch (err) {
      if (opts.signal.aborted) return;
      throw engineFailure(err, "Cannot watch container events");
    }
  }

  async watchStats(
    id: string,
    opts: { onSample: (s: StatsSample) => void; signal: AbortSignal },
  ): Promise<void> {
    if (opts.signal.aborted) return;
    try {
      for await (const value of jsonLines(await this.#api.stats(id, opts.signal))) {
        const s = toStatsSample(value);
        if (s) opts.onSample(s);
      }
    } catch (err) {
      if (opts.signal.aborted) return;
      throw engineFailure(err, `Cannot read the statistics of container "${id}"`);
    }
  }

  async createNetwork(spec: NetworkSpec): Promise<string> {
    try {
      return await this.#api.createNetwork(toNetworkBody(spec));
    } catch (err) {
      if (isApiStatus(err, 403) && /overlaps/i.test(err.reason)) {
        throw new TaskStartError(
          `Cannot create network "${spec.name}": subnet ${spec.subnet} is taken (${err.reason})`,
          { cause: err, code: "SUBNET_TAKEN" },
        );
      }
      throw engineFailure(err, `Cannot create network "${spec.name}"`);
    }
  }

  async removeNetwork(id: string): Promise<void> {
    try {
      await this.#api.removeNetwork(id);
    } catch (err) {
      if (isApiStatus(err, 404)) return;
      throw engineFailure(err, `Cannot remove network "${id}"`);
    }
  }

  async listNetworks(labels: Record<string, string>): Promise<NetworkSummary[]> {
    try {
      const filters: Filters =
        Object.keys(labels).length > 0 ? { label: labelFilters(labels) } : {};
      return (await this.#api.listNetworks(filters)).map(toNetworkSummary);
    } catch (err) {
      throw engineFailure(err, "Cannot list networks");
    }
  }

  async connectNetwork(network: string, container: string): Promise<void> {
    try {
      await this.#api.connectNetwork(network, container);
    } catch (err) {
      if (isApiStatus(err, 403) && /already exists|already attached/i.test(err.reason)) return;
      throw engineFailure(
        err,
        `Cannot connect the executor's container to the task's network`,
        container,
      );
    }
  }

  async disconnectNetwork(network: string, container: string): Promise<void> {
    try {
      await this.#api.disconnectNetwork(network, container);
    } catch (err) {
      if (
        isApiStatus(err, 404) ||
        (isApiStatus(err, 403, 500) && /not connected/i.test(err.reason))
      )
        return;
      throw engineFailure(
        err,
        `Cannot disconnect the executor's container from the task's network`,
        container,
      );
    }
  }

  async close(): Promise<void> {
    await this.#api.close();
  }

  /** Docker's own JSON of a container (its networks, its host config); undefined when there is none. */
  inspectJson(id: string, opts?: { size?: boolean }) {
    return this.#inspectJson(id, opts);
  }

  /** The GPUs a created container asks for (DeviceRequests), for an error that names them. */
  async #gpuIds(id: string): Promise<string[]> {
    const json = await this.#inspectJson(id).catch(() => undefined);
    const requests = (json?.HostConfig?.DeviceRequests ?? []) as { DeviceIDs?: string[] | null }[];
    return requests.flatMap((r) => r.DeviceIDs ?? []);
  }

  #detach(id: string): void {
    this.#attached.get(id)?.stop.abort();
    this.#attached.delete(id);
  }

  /** The daemon's log driver, read once (again after a failure), decides whether task logs get a rotation. */
  #taskLogConfig(): Promise<Record<string, unknown> | undefined> {
    if (this.#taskLog === undefined) return Promise.resolve(undefined);
    if (this.#logConfig === undefined) {
      const read = this.#api.info().then((info) => toLogConfig(info.LoggingDriver, this.#taskLog));
      this.#logConfig = read;
      read.catch(() => {
        if (this.#logConfig === read) this.#logConfig = undefined;
      });
    }
    return this.#logConfig;
  }

  async #inspectJson(id: string, opts?: { size?: boolean }) {
    try {
      return await this.#api.inspectContainer(id, opts);
    } catch (err) {
      if (isApiStatus(err, 404)) return undefined;
      throw engineFailure(err, `Cannot inspect the task's container`, id);
    }
  }

  /** After the log stream ends Docker may need a moment to record the exit. */
  async #settledState(id: string, signal: AbortSignal): Promise<ContainerState | undefined> {
    for (let attempt = 0; ; attempt++) {
      const state = await this.inspect(id);
      if (state === undefined || !state.running || attempt >= 20) return state;
      await new Promise((resolve) => setTimeout(resolve, 100));
      signal.throwIfAborted();
    }
  }
}

/** The counters of one stats sample; undefined for one without CPU figures (a container not running). */
export function toStatsSample(v: unknown): StatsSample | undefined {
  const j = v as {
    cpu_stats?: { cpu_usage?: { total_usage?: unknown } };
    memory_stats?: { max_usage?: unknown };
  } | null;
  const cpu = j?.cpu_stats?.cpu_usage?.total_usage;
  if (typeof cpu !== "number" || !Number.isFinite(cpu)) return undefined;
  const max = j?.memory_stats?.max_usage;
  return {
    cpuNs: cpu,
    maxMemoryBytes: typeof max === "number" && max > 0 ? max : undefined,
  };
}
