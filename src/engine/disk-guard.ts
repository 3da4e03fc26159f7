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
import type { Task } from "./task.ts";

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

/**
 * The share of one core the guard may spend measuring, all tasks together. A task whose layer is
 * costly to walk (many files) is measured less often, so that no task can make the guard expensive;
 * a cheap layer is still measured every interval. See docs/isolation.md, "Disk".
 */
export const DISK_CHECK_CPU_SHARE = 0.05;

/** When a task is next measured, and whether a measurement of it is under way. */
interface Schedule {
  due: number;
  measuring: boolean;
}

export class DiskGuard {
  #d: DiskGuardDeps;
  #log: Logger;
  #cancel?: () => void;
  #stopped = true;
  /** The last reading of each task's layer, in bytes, by task id. */
  #used = new Map<string, number>();
  #schedule = new Map<string, Schedule>();

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
    if (this.#d.settings().taskDiskMB > 0) this.#tick();
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

  /**
   * Measures every task with a container that is due and not being measured already, and removes
   * those over the bound; how many went. Each task is measured on its own: a layer that takes long
   * to walk delays no other task's check.
   */
  async check(): Promise<number> {
    if (!this.active) return 0;
    const now = this.#d.clock.now();
    const tasks = this.#d.pool
      .all()
      .filter(
        (t) =>
          t.containerId !== undefined && (t.state.kind === "starting" || t.state.kind === "ready"),
      );
    const live = new Set(tasks.map((t) => t.id));
    for (const id of this.#schedule.keys()) if (!live.has(id)) this.#schedule.delete(id);
    for (const id of this.#used.keys()) if (!live.has(id)) this.#used.delete(id);
    const due = tasks.filter((t) => {
      const s = this.#schedule.get(t.id);
      return s === undefined || (!s.measuring && s.due <= now);
    });
    const removed = await Promise.all(due.map((t) => this.#measure(t, tasks.length)));
    const count = removed.filter(Boolean).length;
    if (count > 0) this.#d.freed?.();
    return count;
  }

  /** One task's measurement; true when it was removed for being over its bound. */
  async #measure(task: Task, tasks: number): Promise<boolean> {
    const clock = this.#d.clock;
    const schedule: Schedule = { due: Infinity, measuring: true };
    this.#schedule.set(task.id, schedule);
    const boundMB = this.#d.settings().taskDiskMB;
    const started = clock.now();
    // The probe does not throw (DiskProbe); were it to, the task must still be measured again.
    const reading = await this.#d.disk
      .layerBytes(task.containerId!, { stopAbove: boundMB * MB })
      .catch(() => undefined);
    // The next reading waits so long that measuring every task keeps within the guard's share of a
    // core: a walk that took 400 ms of work, with 4 tasks, waits 32 s; a cheap one waits the
    // interval. Counted from the start of this reading, so that a cheap one is due at the next tick.
    const costMs = reading?.workMs ?? 0;
    schedule.due =
      started +
      Math.max(this.#d.settings().diskCheckIntervalMs, (costMs * tasks) / DISK_CHECK_CPU_SHARE);
    schedule.measuring = false;
    if (reading === undefined || this.#schedule.get(task.id) !== schedule) return false;
    const bytes = reading.bytes;
    this.#used.set(task.id, bytes);
    if (bytes <= boundMB * MB) return false;
    // Rounded up: a layer just past its bound must not read as "wrote 40 MB, more than 40 MB".
    const usedMB = Math.ceil(bytes / MB);
    if (
      this.#d.pool.remove(
        task,
        "over its disk bound",
        new TaskDiskExceededError(task.spec.image, usedMB, boundMB),
      ).outcome !== "removing"
    )
      return false;
    this.#d.metrics?.diskExceeded.inc();
    this.#log.warn("Removed a task that wrote more than task_disk_mb", {
      task: task.id,
      image: task.spec.image,
      usedMB,
      boundMB,
      costMs,
    });
    return true;
  }

  /** Every interval the due tasks are measured; a measurement still under way is not waited for. */
  #tick(): void {
    this.#cancel = this.#d.clock.setTimer(this.#d.settings().diskCheckIntervalMs, () => {
      this.#cancel = undefined;
      this.check().catch((e: unknown) =>
        this.#log.warn("Cannot check the tasks' disk use", { error: (e as Error).message }),
      );
      if (!this.#stopped) this.#tick();
    });
  }
}
