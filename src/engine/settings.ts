import type { TaskIntent } from "./task-spec.ts";
/** When a task's image is pulled: an absent one, at every cold start, or never (image-pulls.ts). */
export type PullPolicy = "missing" | "always" | "never";

/**
 * What the engine is told by whoever wires it (src/config.ts maps the config file onto this). How
 * tasks are placed and confined is the task runtime's (DockerTaskSettings), not the engine's.
 */
export interface EngineSettings {
  /** Idle minutes before a task is removed; fractions allowed. */
  idleTimeoutMinutes: number;
  /** Cores for tasks, before clipping to the host. */
  cpu: number;
  /** MB for tasks, before clipping to 80 % of the host's memory. */
  memMB: number;
  hasGpu: boolean;
  /** Docker runtime used for `runtime: "microVM"`; "" when none. */
  microVMRuntime: string;
  sgx: { enable: boolean; device: string; aesmdPath: string };
  /**
   * Most MB a task may write to its own filesystem (its writable layer); 0: unbounded. Held by the
   * engine where its storage driver can (DiskProbe.enforcedByEngine), else by the executor, which
   * measures each task's layer every `diskCheckIntervalMs` (docs/architecture.md, "The host's own resources").
   */
  taskDiskMB: number;
  diskCheckIntervalMs: number;
  /** No task starts while the engine's data root has less free space than this; 0: no guard. */
  minFreeDiskMB: number;
  /**
   * No task starts, and idle tasks go (least recently used first), while the host's available
   * memory is below this (host-memory.ts); 0: no guard.
   */
  minFreeHostMemMB: number;
  /** Measure what each request used (usage.ts): the Meca-Usage header, /requests, /usage. */
  usage: boolean;
  /** Label value that tells this executor's containers from another's on the same engine. */
  instance: string;
  readyTimeoutMs: number;
  requestTimeoutMs: number;
  queueTimeoutMs: number;
  drainTimeoutMs: number;
  allowedImages: readonly string[];
  /** Tasks kept warm (see prewarm.ts); empty: none. */
  prewarm: readonly PrewarmEntry[];
  /** A GPU is free when its utilisation and memory use are at most this percent. */
  gpuIdlePercent: number;
  gpuSampleIntervalMs: number;
  /** Requests one replica serves at once; 0: unlimited, one replica per key. */
  taskConcurrency: number;
  /** Replicas per key at most when taskConcurrency >= 1; 0: as many as capacity allows. */
  maxReplicas: number;
  /** A stop leaves ready tasks (and their networks) for the next start of the instance to adopt. */
  keepTasksOnStop: boolean;
  /** When to pull a task's image (image-pulls.ts). */
  pullPolicy: PullPolicy;
  /** A pull's bounds: in all, and without any progress from the engine. */
  pullTimeoutMs: number;
  pullStallTimeoutMs: number;
}

/**
 * A change of settings while the executor runs (POST /update-config). Which settings may change is
 * the config table's call (src/config.ts); the engine applies what it is given.
 */
export type SettingsUpdate = Partial<EngineSettings>;

/** What an update changes: each field whose value differs, from and to. */
export type SettingsChange = {
  [K in keyof SettingsUpdate]?: { from: EngineSettings[K]; to: EngineSettings[K] };
};

/** The fields of `update` that differ from `current` (a list by its entries), and the settings after it. */
export function diffSettings(
  current: EngineSettings,
  update: SettingsUpdate,
): { changed: SettingsChange; next: EngineSettings } {
  const changed: SettingsChange = {};
  for (const [k, v] of Object.entries(update) as [
    keyof SettingsUpdate,
    SettingsUpdate[keyof SettingsUpdate],
  ][]) {
    const same =
      k === "prewarm" ? JSON.stringify(v) === JSON.stringify(current.prewarm) : v === current[k];
    if (v !== undefined && !same)
      (changed as Record<string, unknown>)[k] = { from: current[k], to: v };
  }
  const next = {
    ...current,
    ...Object.fromEntries(Object.entries(changed).map(([k, c]) => [k, c.to])),
  };
  return { changed, next };
}

/** One task to keep warm: the execute request's intent and how many replicas. */
export interface PrewarmEntry {
  intent: TaskIntent;
  count: number;
}

export const READY_MARK = "meca-init-done";

/** Task capacity: the configured amount clipped to the host (its cores; 80 % of its memory). */
export function clipCapacity(
  s: Pick<EngineSettings, "cpu" | "memMB">,
  host: { cores: number; memoryMB: number },
) {
  return {
    cpuTenths: Math.min(Math.round(s.cpu * 10), host.cores * 10),
    memMB: Math.min(s.memMB, Math.floor(host.memoryMB * 0.8)),
  };
}
