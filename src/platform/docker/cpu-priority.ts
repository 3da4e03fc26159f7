/**
 * The owner's CPU first (docs/isolation.md, "The owner's CPU"): with `task_cpu_priority: idle` every
 * task container runs under one parent cgroup of the lowest weight (cgroup v1 `cpu.shares` 2,
 * v2 `cpu.weight` 1), so tasks get only the CPU the host's own programs leave idle. The executor
 * makes the parent at start-up and removes it at stop: a folder of the cgroup filesystem with the
 * cgroupfs driver, a slice with systemd's (`systemctl set-property --runtime`). Where it cannot (in a
 * container of its own, the host's cgroups are not its to write), the tasks still go under the
 * parent and the operator is given the one command that sets its weight.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../../engine/ports.ts";

export type CpuPriority = "idle" | "normal";

/** The lowest weights: v1 `cpu.shares` (2 is the kernel's minimum), v2 `cpu.weight` (1..10000). */
export const IDLE_SHARES = 2;
export const IDLE_WEIGHT = 1;

/** What GET /tasks, doctor and the start-up log say about it. */
export interface CpuPriorityStatus {
  task_cpu_priority: CpuPriority;
  /** `set`: the parent exists at the lowest weight; `normal`: tasks at the default weight; `unknown`: not the executor's to check. */
  state: "set" | "normal" | "unknown" | "failed";
  /** HostConfig.CgroupParent of every task container; "" for the engine's default. */
  parent: string;
  detail: string;
  /** The operator's one command, as root on the host, where the executor could not set the weight. */
  command?: string;
}

export interface TaskParent {
  status: CpuPriorityStatus;
  /** Removes the parent (once no task is under it); nothing when tasks are kept for the next start. */
  remove(): Promise<void>;
}

type Run = (cmd: string, args: string[]) => Promise<void>;

const runCommand: Run = (cmd, args) =>
  new Promise((resolve, reject) =>
    execFile(cmd, args, { timeout: 10_000 }, (err) => (err ? reject(err) : resolve())),
  );

/** The parent's name for an instance: a cgroupfs folder, or a systemd slice (no "-": it nests slices). */
export function parentName(instance: string, driver: string): string {
  return driver === "systemd"
    ? `meca_tasks_${instance.replace(/[^a-zA-Z0-9_]/g, "_")}.slice`
    : `meca-tasks-${instance}`;
}

/**
 * Sets the parent up for the engine's cgroup driver ("cgroupfs" or "systemd") and version ("1" or
 * "2"), as /info reports them. Never throws: a parent it cannot make is said in the status.
 */
export async function setupTaskParent(o: {
  priority: CpuPriority;
  instance: string;
  driver: string;
  version: string;
  inContainer: boolean;
  logger: Logger;
  /** The cgroup filesystem's mount (tests give a folder of their own). */
  root?: string;
  run?: Run;
  /** Says what a start would do, changing nothing (doctor). */
  dryRun?: boolean;
}): Promise<TaskParent> {
  const nothing = async () => {};
  if (o.priority === "normal")
    return {
      status: {
        task_cpu_priority: "normal",
        state: "normal",
        parent: "",
        detail:
          "tasks run at the engine's default CPU weight: they compete with the host's own programs as equals",
      },
      remove: nothing,
    };
  const root = o.root ?? "/sys/fs/cgroup";
  const run = o.run ?? runCommand;
  const name = parentName(o.instance, o.driver);
  const v2 = o.version === "2";
  const weight = v2 ? `cpu.weight ${IDLE_WEIGHT}` : `cpu.shares ${IDLE_SHARES}`;
  if (o.driver === "systemd") {
    const property = v2 ? `CPUWeight=${IDLE_WEIGHT}` : `CPUShares=${IDLE_SHARES}`;
    const command = `systemctl set-property --runtime ${name} ${property}`;
    if (o.inContainer) return unknown(name, command);
    try {
      if (!o.dryRun) await run("systemctl", ["set-property", "--runtime", name, property]);
    } catch (e) {
      return failed(name, command, (e as Error).message);
    }
    return {
      status: set(name, `the slice ${name} has ${weight} (systemd)`),
      remove: nothing, // a runtime property; systemd removes an empty transient slice itself
    };
  }
  const dir = v2 ? join(root, name) : join(root, "cpu", name);
  const file = join(dir, v2 ? "cpu.weight" : "cpu.shares");
  const value = String(v2 ? IDLE_WEIGHT : IDLE_SHARES);
  const command = `mkdir -p ${dir} && echo ${value} > ${file}`;
  if (o.inContainer) return unknown(`/${name}`, command);
  if (o.dryRun)
    return {
      status: set(`/${name}`, `a start gives the cgroup ${dir} ${weight} (cgroupfs)`),
      remove: nothing,
    };
  try {
    // The cpu controller in the parent's children: runc enables the rest it needs.
    if (v2) writeFileSync(join(root, "cgroup.subtree_control"), "+cpu");
  } catch {
    // Already on, or not ours to change: the weight below fails in turn if it matters.
  }
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, value);
  } catch (e) {
    return failed(`/${name}`, command, (e as Error).message);
  }
  return {
    status: set(`/${name}`, `the cgroup ${dir} has ${weight} (cgroupfs)`),
    remove: async () => {
      // The task containers' own cgroups are gone with them; each controller's copy of the parent goes now.
      const copies = v2 ? [dir] : controllers(root).map((c) => join(root, c, name));
      for (const d of copies) {
        try {
          if (existsSync(d)) rmdirSync(d);
        } catch (e) {
          o.logger.warn("Cannot remove the tasks' parent cgroup", {
            cgroup: d,
            error: (e as Error).message,
          });
        }
      }
    },
  };

  function set(parent: string, detail: string): CpuPriorityStatus {
    return {
      task_cpu_priority: "idle",
      state: "set",
      parent,
      detail: `${detail}: tasks get only the CPU the host's own programs leave idle`,
    };
  }
}

function unknown(parent: string, command: string): TaskParent {
  return {
    status: {
      task_cpu_priority: "idle",
      state: "unknown",
      parent,
      detail: `tasks run under ${parent}; in a container the executor cannot set its weight on the host: run the command once as root on the host`,
      command,
    },
    remove: async () => {},
  };
}

function failed(parent: string, command: string, why: string): TaskParent {
  return {
    status: {
      task_cpu_priority: "idle",
      state: "failed",
      parent,
      detail: `cannot give the tasks' parent ${parent} the lowest CPU weight (${why}): tasks compete with the host's own programs`,
      command,
    },
    remove: async () => {},
  };
}

/**
 * The v1 hierarchies mounted under `root` (cpu, memory, pids, ...; in a hybrid layout also systemd's
 * named one and the unified tree): the engine makes the parent in each.
 */
function controllers(root: string): string[] {
  try {
    return readdirSync(root, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return [];
  }
}
