/** Between the engine's shapes and Docker's JSON, for both transports. */
import type { EngineInfo } from "../../engine/ports.ts";
import type {
  ContainerSpec,
  ContainerState,
  ContainerSummary,
  NetworkSpec,
  NetworkSummary,
} from "./backend.ts";
import type {
  ContainerJson,
  ContainerListJson,
  InfoJson,
  NetworkJson,
  VersionJson,
} from "./docker-api.ts";

export const TASK_PORT = "8080/tcp";

/** Block I/O weight of a task container (Docker: 10..1000, default 500). */
export const TASK_BLKIO_WEIGHT = 100;

/** Docker's log options for a task container: the rotation that bounds its log on disk. */
export interface TaskLogOptions {
  /** `max-size`, e.g. "10m". */
  maxSize: string;
  /** `max-file`: how many files of `maxSize` are kept. */
  maxFile: number;
}

/** The log drivers that keep a container's log in files and take max-size and max-file. */
const ROTATING_DRIVERS = new Set(["json-file", "local"]);

/**
 * HostConfig.LogConfig that bounds a task's log under the daemon's own driver;
 * undefined for any other driver, which is left as the daemon sets it.
 */
export function toLogConfig(
  daemonDriver: string | undefined,
  opts: TaskLogOptions | undefined,
): Record<string, unknown> | undefined {
  if (opts === undefined || daemonDriver === undefined || !ROTATING_DRIVERS.has(daemonDriver))
    return undefined;
  return {
    Type: daemonDriver,
    Config: { "max-size": opts.maxSize, "max-file": String(opts.maxFile) },
  };
}

/** The body of POST /containers/create for a task container. */
export function toCreateBody(
  spec: ContainerSpec,
  logConfig?: Record<string, unknown>,
): Record<string, unknown> {
  const hostConfig: Record<string, unknown> = {
    NanoCpus: spec.nanoCpus,
    Memory: spec.memoryBytes,
    MemorySwap: spec.memoryBytes,
    PidsLimit: spec.pidsLimit,
    SecurityOpt: spec.securityOpt,
    Privileged: false,
  };
  if (spec.capDrop !== undefined && spec.capDrop.length > 0) hostConfig.CapDrop = spec.capDrop;
  // No core file: it would land in the task's writable layer (or wherever core_pattern says).
  hostConfig.Ulimits = [
    ...(spec.nofile === undefined
      ? []
      : [{ Name: "nofile", Soft: spec.nofile, Hard: spec.nofile }]),
    { Name: "core", Soft: 0, Hard: 0 },
  ];
  // A fifth of the default weight (500) under contention; the engine drops it where the I/O scheduler has no weights.
  hostConfig.BlkioWeight = TASK_BLKIO_WEIGHT;
  if (spec.shmBytes !== undefined) hostConfig.ShmSize = spec.shmBytes;
  if (spec.cgroupParent) hostConfig.CgroupParent = spec.cgroupParent;
  if (spec.diskBytes !== undefined)
    hostConfig.StorageOpt = { size: `${Math.ceil(spec.diskBytes / (1024 * 1024))}M` };
  if (spec.runtime !== undefined && spec.runtime !== "") hostConfig.Runtime = spec.runtime;
  if (logConfig !== undefined) hostConfig.LogConfig = logConfig;
  if (spec.gpus !== undefined && spec.gpus.length > 0) {
    hostConfig.DeviceRequests = [
      { Driver: "nvidia", DeviceIDs: spec.gpus, Capabilities: [["gpu"]] },
    ];
  }
  if (spec.sgx !== undefined) {
    hostConfig.Devices = [
      {
        PathOnHost: spec.sgx.device,
        PathInContainer: "/dev/sgx/enclave",
        CgroupPermissions: "rwm",
      },
    ];
    // A Mounts bind fails when the folder is missing; a Binds entry would make dockerd create it empty.
    hostConfig.Mounts = [{ Type: "bind", Source: spec.sgx.aesmdPath, Target: "/var/run/aesmd" }];
  }
  if (spec.readOnlyRoot) hostConfig.ReadonlyRootfs = true;
  const body: Record<string, unknown> = {
    Image: spec.image,
    Labels: spec.labels,
    // Without a TTY the log stream is multiplexed: stdout and stderr stay apart.
    Tty: false,
    OpenStdin: false,
    HostConfig: hostConfig,
  };
  if (spec.user !== undefined) body.User = spec.user;
  if (spec.sharesNetworkOf !== undefined) {
    // The engine refuses ports (and a hostname) in another container's namespace: it has that one's.
    hostConfig.NetworkMode = `container:${spec.sharesNetworkOf}`;
    return body;
  }
  body.ExposedPorts = { [TASK_PORT]: {} };
  if (spec.network !== undefined && spec.network !== "") {
    hostConfig.NetworkMode = spec.network;
  } else {
    hostConfig.PortBindings = { [TASK_PORT]: [{ HostIp: "127.0.0.1", HostPort: "" }] };
  }
  return body;
}

/** The body of POST /networks/create for a task's own network. */
export function toNetworkBody(spec: NetworkSpec): Record<string, unknown> {
  return {
    Name: spec.name,
    Driver: "bridge",
    CheckDuplicate: true,
    Internal: spec.internal,
    Attachable: false,
    EnableIPv6: false,
    Labels: spec.labels,
    Options: {
      ...(spec.bridge === undefined ? {} : { "com.docker.network.bridge.name": spec.bridge }),
      ...(spec.hostless ? { "com.docker.network.bridge.inhibit_ipv4": "true" } : {}),
    },
    IPAM: { Driver: "default", Config: [{ Subnet: spec.subnet }] },
  };
}

export function toNetworkSummary(json: NetworkJson): NetworkSummary {
  return {
    id: json.Id,
    name: json.Name,
    labels: json.Labels ?? {},
    subnets: (json.IPAM?.Config ?? []).map((c) => c.Subnet ?? "").filter((s) => s.includes(".")),
  };
}

export function toContainerState(json: ContainerJson): ContainerState {
  return {
    id: json.Id,
    running: json.State.Running,
    status: json.State.Status,
    exitCode: json.State.ExitCode,
    oomKilled: json.State.OOMKilled,
    name: stripSlash(json.Name),
    labels: json.Config?.Labels ?? {},
    nanoCpus: numberOr(json.HostConfig?.NanoCpus, 0),
    memoryBytes: numberOr(json.HostConfig?.Memory, 0),
    runtime: typeof json.HostConfig?.Runtime === "string" ? json.HostConfig.Runtime : "",
    gpuIds: ((json.HostConfig?.DeviceRequests ?? []) as { DeviceIDs?: string[] | null }[]).flatMap(
      (r) => r.DeviceIDs ?? [],
    ),
    networks: Object.keys(json.NetworkSettings?.Networks ?? {}),
    sharesNetworkOf: sharedNamespace(json.HostConfig?.NetworkMode),
    startedAt: Date.parse(json.State.StartedAt ?? "") || 0,
  };
}

/** The container named by `container:<id>`; undefined for any other mode. */
function sharedNamespace(mode: unknown): string | undefined {
  return typeof mode === "string" && mode.startsWith("container:")
    ? mode.slice("container:".length)
    : undefined;
}

function numberOr(v: unknown, fallback: number): number {
  return typeof v === "number" ? v : fallback;
}

export function toContainerSummary(json: ContainerListJson): ContainerSummary {
  return {
    id: json.Id,
    name: stripSlash(json.Names?.[0] ?? ""),
    labels: json.Labels ?? {},
    state: json.State,
  };
}

/**
 * The published 127.0.0.1 port; or, on a network, the container's name (its address on Docker's
 * default bridge, which has no DNS); undefined when there is neither.
 */
export function toEndpoint(
  json: ContainerJson,
  network?: string,
  byAddress = false,
): string | undefined {
  if (network !== undefined && network !== "" && (byAddress || network === "bridge")) {
    const ip = json.NetworkSettings?.Networks?.[network]?.IPAddress;
    return ip ? `http://${ip}:8080` : undefined;
  }
  if (network !== undefined && network !== "") return `http://${stripSlash(json.Name)}:8080`;
  const bindings = json.NetworkSettings?.Ports?.[TASK_PORT] ?? [];
  const port = bindings.find((b) => b.HostPort !== "")?.HostPort;
  return port === undefined ? undefined : `http://127.0.0.1:${port}`;
}

export function toEngineInfo(version: VersionJson, info: InfoJson, transport: string): EngineInfo {
  return {
    version: version.Version,
    apiVersion: version.ApiVersion,
    runtimes: Object.keys(info.Runtimes ?? {}),
    defaultRuntime: info.DefaultRuntime ?? "runc",
    transport,
    ...(info.Architecture ? { machine: info.Architecture } : {}),
  };
}

function stripSlash(name: string): string {
  return name.startsWith("/") ? name.slice(1) : name;
}
