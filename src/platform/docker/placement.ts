/**
 * Where the executor runs, and so how it reaches its task containers (the `network` key).
 * See docs/architecture.md, "Deployments" and "Isolation".
 *
 * - `auto` (the default): each task on a network of its own. Inside a container with a network
 *   of its own, the executor joins each task's network and calls the task by name; on a bare
 *   host or with host networking, it calls the task at its address there.
 * - `publish`: tasks publish 8080 on 127.0.0.1 (a shared bridge: weaker).
 * - a network's name: tasks share that network, called by name (weaker).
 */
import { readFileSync } from "node:fs";
import type { ContainerJson } from "./docker-api.ts";

export interface SelfContainer {
  id: string;
  name: string;
  /** HostConfig.NetworkMode: "host", "bridge", "default", a network name, "container:<id>", "none". */
  networkMode: string;
  /** Attached networks and the container's address on each. */
  networks: { name: string; ip: string }[];
}

export interface Placement {
  /** "isolated": a network per task; "network": tasks share `network`; "publish": 8080 on 127.0.0.1. */
  mode: "isolated" | "network" | "publish";
  network?: string;
  /** For a person: why this mode is in force (start-up log, GET /tasks, doctor). */
  reason: string;
  /** The executor's own container, when it runs in one that the engine knows. */
  self?: SelfContainer;
  /** The executor has a network namespace of its own (a container without host networking). */
  ownNetwork: boolean;
}

export interface PlacementSource {
  /** The `network` setting: "auto", "publish" or a network name. */
  setting: string;
  /** This process's container id or name as the kernel shows it, if any (see `ownContainerRef`). */
  containerRef?: string;
  /** Inspects a container through the engine; undefined when the engine has no such container. */
  inspect(ref: string): Promise<ContainerJson | undefined>;
}

export async function resolvePlacement(src: PlacementSource): Promise<Placement> {
  const self = src.containerRef === undefined ? undefined : await findSelf(src);
  const ownNetwork =
    self !== undefined && self.networkMode !== "host" && !self.networkMode.startsWith("container:");
  const where = self === undefined ? "" : ` (the executor runs in container "${self.name}")`;
  if (src.setting === "publish") {
    return {
      mode: "publish",
      reason: `network: publish in the config${where}: tasks publish 8080 on 127.0.0.1 and share Docker's default bridge`,
      self,
      ownNetwork,
    };
  }
  if (src.setting !== "auto") {
    return {
      mode: "network",
      network: src.setting,
      reason: `network: "${src.setting}" in the config${where}: tasks share it and are called by name`,
      self,
      ownNetwork,
    };
  }
  if (src.containerRef !== undefined && self === undefined) {
    return {
      mode: "publish",
      reason: `network: auto, and the engine knows no container "${src.containerRef}" (a remote engine?): tasks publish 8080 on 127.0.0.1`,
      ownNetwork,
    };
  }
  const reason =
    self === undefined
      ? "network: auto on a host: each task on a network of its own, called at its address there"
      : ownNetwork
        ? `network: auto, and the executor runs in container "${self.name}": each task on a network of its own, which the executor joins to call it by name`
        : `network: auto, and container "${self.name}" shares the host's network (${self.networkMode}): each task on a network of its own, called at its address there`;
  return { mode: "isolated", reason, self, ownNetwork };
}

async function findSelf(src: PlacementSource): Promise<SelfContainer | undefined> {
  const json = await src.inspect(src.containerRef!);
  if (json === undefined) return undefined;
  const networks = Object.entries(json.NetworkSettings?.Networks ?? {}).map(([name, n]) => ({
    name,
    ip: n.IPAddress ?? "",
  }));
  const mode = json.HostConfig?.NetworkMode;
  return {
    id: json.Id,
    name: json.Name.replace(/^\//, ""),
    // "default" means the daemon's default network, the bridge.
    networkMode: typeof mode === "string" && mode !== "default" ? mode : "bridge",
    networks,
  };
}

/**
 * This process's container id, read from the kernel: Docker bind-mounts the container's
 * hostname, hosts and resolv.conf files from `.../containers/<id>/`, and cgroup v1 paths
 * carry `/docker/<id>`. Undefined on a bare host. The inputs are the texts of
 * /proc/self/mountinfo and /proc/self/cgroup.
 */
export function ownContainerRef(files: {
  mountinfo?: string;
  cgroup?: string;
}): string | undefined {
  const mount = /\/containers\/([0-9a-f]{64})\/(?:hostname|hosts|resolv\.conf)\s/.exec(
    files.mountinfo ?? "",
  );
  if (mount) return mount[1];
  const cgroup = /\/docker[/-]([0-9a-f]{64})(?:\.scope)?\s*$/m.exec(files.cgroup ?? "");
  return cgroup?.[1];
}

/**
 * The placement as the engine sees it: reads this process's container id from /proc and
 * inspects it. In a container, an engine that does not answer is retried for `waitMs`,
 * then start-up fails: guessing would leave every task unreachable.
 */
export async function detectPlacement(o: {
  setting: string;
  inspect: (ref: string) => Promise<ContainerJson | undefined>;
  waitMs?: number;
  readText?: (path: string) => string | undefined;
}): Promise<Placement> {
  const read = o.readText ?? readTextOrUndefined;
  const containerRef = ownContainerRef({
    mountinfo: read("/proc/self/mountinfo"),
    cgroup: read("/proc/self/cgroup"),
  });
  const deadline = Date.now() + (o.waitMs ?? 10_000);
  for (;;) {
    try {
      return await resolvePlacement({ setting: o.setting, containerRef, inspect: o.inspect });
    } catch (e) {
      if (Date.now() >= deadline) {
        throw new Error(
          `Cannot find the executor's own container "${containerRef?.slice(0, 12)}" through the Docker engine: ${(e as Error).message}. Mount the engine's socket, or set network to "publish" or a network's name`,
          { cause: e },
        );
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

function readTextOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}
