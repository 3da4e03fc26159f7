/**
 * Holds each task's disk bound where the engine's storage driver cannot (`enforcedByEngine()` false):
 * every `diskCheckIntervalMs` it measures the writable layer of each task container and removes a
 * task that is over `taskDiskMB`. Its in-flight requests get TaskDiskExceededError (507), its
 * reservation goes back at once. See docs/architecture.md, "The host's own resources".
 */
import { TaskDiskExceededError } from "./errors.ts";
import type { EngineMetrics } from "./metrics.ts";
import type { Clock, DiskProbe, Logger } from "./ports.ts";
import type { EngineSettings } from "./settings.ts";
import type { TaskPool } from "./task-pool.ts";

export interface DiskGuardDeps {
  pool: TaskPool;
  disk: DiskProbe;
  clock: Clock;
  logger: Logger;
  settings: () => EngineSettings;
  metrics?: EngineMetrics;
  /** Runs the line again after tasks left. */
  freed?: () => void;
}

const MB = 1024 * 1024;

export class DiskGuard {
  #d: DiskGuardDeps;
  #log: Logger;
  #cancel?: () => void;
  #stopped = true;
  /** The last reading of each task's layer, in bytes, by task id. */
  #used = new Map<string, number>();

  constructor(deps: DiskGuardDeps) {
    this.#d = deps;
    this.#log = deps.logger.child({ component: "disk" });
  }

  /** Whether this guard holds the bound now: there is one, and the engine does not enforce it. */
  get active(): boolean {
    return this.#d.settings().taskDiskMB > 0 && !this.#d.disk.enforcedByEngine();
  }

  /** Checks on its interval while the bound is set; each check asks whether the engine holds it now. */
  start(): void {
    this.#stopped = false;
    if (this.#d.settings().taskDiskMB > 0) this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    this.#cancel?.();
    this.#cancel = undefined;
  }

  /** MB the task's writable layer held at the last check; undefined before the first. */
  usedMB(taskId: string): number | undefined {
    const b = this.#used.get(taskId);
    return b === undefined ? undefined : Math.round((b / MB) * 10) / 10;
  }

  /** Measures every task with a container now and removes those over the bound; how many went. */
  async check(): Promise<number> {
    if (!this.active) return 0;
    const boundMB = this.#d.settings().taskDiskMB;
    const tasks = this.#d.pool.all().filter((t) => t.containerId !== undefined && (t.state.kind === "starting" || t.state.kind === "ready"));
    const readings = await Promise.all(tasks.map((t) => this.#d.disk.layerBytes(t.containerId!)));
    const seen = new Map<string, number>();
    let removed = 0;
    tasks.forEach((task, i) => {
      const bytes = readings[i];
      if (bytes === undefined) return;
      seen.set(task.id, bytes);
      if (bytes <= boundMB * MB) return;
      // Rounded up: a layer just past its bound must not read as "wrote 40 MB, more than 40 MB".
      const usedMB = Math.ceil(bytes / MB);
      if (this.#d.pool.remove(task, "over its disk bound", new TaskDiskExceededError(task.spec.image, usedMB, boundMB)).outcome !== "removing") return;
      removed++;
      this.#d.metrics?.diskExceeded.inc();
      this.#log.warn("Removed a task that wrote more than task_disk_mb", { task: task.id, image: task.spec.image, usedMB, boundMB });
    });
    this.#used = seen;
    if (removed > 0) this.#d.freed?.();
    return removed;
  }

  /** The next check starts only after this one ended, so slow readings never pile up. */
  #schedule(): void {
    this.#cancel = this.#d.clock.setTimer(this.#d.settings().diskCheckIntervalMs, () => {
      this.#cancel = undefined;
      void this.check()
        .catch((e: unknown) => this.#log.warn("Cannot check the tasks' disk use", { error: (e as Error).message }))
        .finally(() => {
          if (!this.#stopped) this.#schedule();
        });
    });
  }
}
