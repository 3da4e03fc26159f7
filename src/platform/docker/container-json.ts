/** Between the engine's shapes and Docker's JSON, for both transports. */
import type { ContainerSpec, ContainerState, ContainerSummary, EngineInfo } from "../../engine/ports.ts";
import type { ContainerJson, ContainerListJson, InfoJson, VersionJson } from "./docker-api.ts";

export const TASK_PORT = "8080/tcp";

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
export function toLogConfig(daemonDriver: string | undefined, opts: TaskLogOptions | undefined): Record<string, unknown> | undefined {
  if (opts === undefined || daemonDriver === undefined || !ROTATING_DRIVERS.has(daemonDriver)) return undefined;
  return { Type: daemonDriver, Config: { "max-size": opts.maxSize, "max-file": String(opts.maxFile) } };
}

/** The body of POST /containers/create for a task container. */
export function toCreateBody(spec: ContainerSpec, logConfig?: Record<string, unknown>): Record<string, unknown> {
  const hostConfig: Record<string, unknown> = {
    NanoCpus: spec.nanoCpus,
    Memory: spec.memoryBytes,
    MemorySwap: spec.memoryBytes,
    PidsLimit: spec.pidsLimit,
    SecurityOpt: spec.securityOpt,
    Privileged: false,
  };
  if (spec.runtime !== undefined && spec.runtime !== "") hostConfig.Runtime = spec.runtime;
  if (logConfig !== undefined) hostConfig.LogConfig = logConfig;
  if (spec.gpus !== undefined && spec.gpus.length > 0) {
    hostConfig.DeviceRequests = [{ Driver: "nvidia", DeviceIDs: spec.gpus, Capabilities: [["gpu"]] }];
  }
  if (spec.sgx !== undefined) {
    hostConfig.Devices = [{ PathOnHost: spec.sgx.device, PathInContainer: "/dev/sgx/enclave", CgroupPermissions: "rwm" }];
    hostConfig.Binds = [`${spec.sgx.aesmdPath}:/var/run/aesmd`];
  }
  if (spec.network !== undefined && spec.network !== "") {
    hostConfig.NetworkMode = spec.network;
  } else {
    hostConfig.PortBindings = { [TASK_PORT]: [{ HostIp: "127.0.0.1", HostPort: "" }] };
  }
  return {
    Image: spec.image,
    Labels: spec.labels,
    // Without a TTY the log stream is multiplexed: stdout and stderr stay apart.
    Tty: false,
    OpenStdin: false,
    ExposedPorts: { [TASK_PORT]: {} },
    HostConfig: hostConfig,
  };
}

export function toContainerState(json: ContainerJson): ContainerState {
  return {
    id: json.Id,
    running: json.State.Running,
    status: json.State.Status,
    exitCode: json.State.ExitCode,
    oomKilled: json.State.OOMKilled,
  };
}

export function toContainerSummary(json: ContainerListJson): ContainerSummary {
  return {
    id: json.Id,
    name: stripSlash(json.Names?.[0] ?? ""),
    labels: json.Labels ?? {},
    state: json.State,
  };
}

/** The published 127.0.0.1 port, or the container's name on a network; undefined when not published. */
export function toEndpoint(json: ContainerJson, network?: string): string | undefined {
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
  };
}

function stripSlash(name: string): string {
  return name.startsWith("/") ? name.slice(1) : name;
}
