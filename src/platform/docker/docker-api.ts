/**
 * The raw Docker Engine operations the backend needs, in Docker's own JSON
 * shapes. Two implementations: `EngineApi` (fetch, unix socket or plain tcp)
 * and `DockerodeApi` (ssh and TLS). `DockerBackend` turns them into the
 * engine's port, so both transports share every mapping and rule.
 *
 * Implementations throw EngineUnavailableError when the engine cannot be
 * reached, DockerApiError for an HTTP error status, and the signal's reason
 * when a request is aborted.
 */
import type { ByteSource } from "./log-demux.ts";
import type { RegistryCredentials } from "./registry-auth.ts";

export type Filters = Record<string, string[]>;

export interface VersionJson {
  Version: string;
  ApiVersion: string;
  MinAPIVersion?: string;
}

export interface InfoJson {
  /** "cgroupfs" or "systemd". */
  CgroupDriver?: string;
  /** "1" or "2". */
  CgroupVersion?: string;
  Runtimes?: Record<string, unknown>;
  /** The engine host's machine, as `uname -m` says it: x86_64, aarch64, ... */
  Architecture?: string;
  DefaultRuntime?: string;
  /** The daemon's default log driver: json-file, local, journald, syslog, none, ... */
  LoggingDriver?: string;
  /** The storage driver: overlay2, btrfs, zfs, devicemapper, vfs, ... */
  Driver?: string;
  /** Its details as pairs, e.g. ["Backing Filesystem", "extfs"]. */
  DriverStatus?: [string, string][] | null;
  /** Where the engine keeps images and containers, on its own host. */
  DockerRootDir?: string;
}

export interface ContainerJson {
  Id: string;
  Name: string;
  State: {
    Status: string;
    Running: boolean;
    ExitCode: number;
    OOMKilled: boolean;
    StartedAt?: string;
  };
  Config?: { Labels?: Record<string, string> | null };
  HostConfig?: Record<string, unknown>;
  /** The storage driver's paths: for overlay2, `Data.UpperDir` is the writable layer on the engine's host. */
  GraphDriver?: { Name?: string; Data?: Record<string, string> | null };
  /** Bytes of the writable layer, only when inspected with `size`. */
  SizeRw?: number;
  NetworkSettings?: {
    Ports?: Record<string, { HostIp: string; HostPort: string }[] | null> | null;
    /** Every network the container is attached to, by name. */
    Networks?: Record<string, { IPAddress?: string; NetworkID?: string }> | null;
  };
}

export interface ContainerListJson {
  Id: string;
  Names?: string[];
  Labels?: Record<string, string> | null;
  State: string;
}

export interface NetworkJson {
  Id: string;
  Name: string;
  Labels?: Record<string, string> | null;
  Internal?: boolean;
  IPAM?: { Config?: { Subnet?: string; Gateway?: string }[] | null } | null;
}

export interface DockerApi {
  /** How the engine is reached, e.g. "unix:///var/run/docker.sock". */
  readonly transport: string;
  version(signal?: AbortSignal): Promise<VersionJson>;
  info(signal?: AbortSignal): Promise<InfoJson>;
  /** true when the image is present locally. */
  imageExists(ref: string): Promise<boolean>;
  /** Starts a pull and returns its JSON-lines progress stream. */
  /** `auth`: sent as X-Registry-Auth (the engine passes it to the registry; never logged). */
  pull(
    image: { fromImage: string; tag: string },
    signal?: AbortSignal,
    auth?: RegistryCredentials,
  ): Promise<ByteSource>;
  /**
   * Makes an image of one layer from a tar of its files (`POST /images/create?fromSrc=-`);
   * `changes` are Dockerfile instructions such as `ENTRYPOINT ["/hold"]`. Returns its JSON-lines
   * answer, which says whether it worked, as a pull's does.
   */
  importImage(
    tar: Uint8Array,
    image: { repo: string; tag: string },
    changes: string[],
  ): Promise<ByteSource>;
  createContainer(name: string, body: Record<string, unknown>): Promise<string>;
  startContainer(id: string): Promise<void>;
  /** With `size`, the engine also measures the writable layer (SizeRw): slower. */
  inspectContainer(id: string, opts?: { size?: boolean }): Promise<ContainerJson>;
  /**
   * The container's multiplexed output as it is written, attached before the
   * container starts, so that nothing is lost to log rotation. Optional: a
   * transport without it follows the logs instead.
   */
  attach?(id: string, signal: AbortSignal): Promise<ByteSource>;
  /** The multiplexed log stream (stdout and stderr, from the start, or the last `tail` lines). */
  logs(
    id: string,
    opts: { follow: boolean; tail?: number; signal?: AbortSignal },
  ): Promise<ByteSource>;
  removeContainer(id: string): Promise<void>;
  listContainers(filters: Filters): Promise<ContainerListJson[]>;
  createNetwork(body: Record<string, unknown>): Promise<string>;
  removeNetwork(id: string): Promise<void>;
  listNetworks(filters: Filters): Promise<NetworkJson[]>;
  connectNetwork(id: string, container: string): Promise<void>;
  disconnectNetwork(id: string, container: string): Promise<void>;
  /** The JSON-lines event stream. */
  events(filters: Filters, signal: AbortSignal): Promise<ByteSource>;
  /** A container's resource statistics as the engine samples them (about once a second), JSON lines, until `signal`. */
  stats(id: string, signal: AbortSignal): Promise<ByteSource>;
  close(): Promise<void>;
}

/** The engine answered with an error status; `message` is Docker's own. */
export class DockerApiError extends Error {
  readonly code = "DOCKER_API_ERROR";
  readonly status: number;
  readonly reason: string;

  constructor(status: number, reason: string, opts?: { cause?: unknown }) {
    super(`Docker engine answered ${status}: ${reason}`, opts);
    this.name = "DockerApiError";
    this.status = status;
    this.reason = reason;
  }
}

export function isApiStatus(err: unknown, ...statuses: number[]): err is DockerApiError {
  return err instanceof DockerApiError && statuses.includes(err.status);
}
