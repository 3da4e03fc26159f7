/** Removes each replica when its own idle time runs out. */
import { pickExpired } from "./policy.ts";
import type { EngineMetrics } from "./metrics.ts";
import type { Clock, Logger } from "./ports.ts";
import type { EngineSettings } from "./settings.ts";
import type { TaskPool } from "./task-pool.ts";
import type { Task } from "./task.ts";

export interface IdleCleanerDeps {
  pool: TaskPool;
  clock: Clock;
  logger: Logger;
  settings: () => EngineSettings;
  /** Counts idle removals. */
  metrics?: EngineMetrics;
  /** Runs the line again after replicas left. */
  freed?: () => void;
  /** Replicas prewarm holds warm: exempt from the idle timeout. */
  pinned?: (task: Task) => boolean;
}

export class IdleCleaner {
  #d: IdleCleanerDeps;
  #log: Logger;
  #cancel?: () => void;

  constructor(deps: IdleCleanerDeps) {
    this.#d = deps;
    this.#log = deps.logger.child({ component: "cleaner" });
  }

  start(): void {
    this.#schedule();
  }

  stop(): void {
    this.#cancel?.();
    this.#cancel = undefined;
  }

  /** Picks up a changed timeout at once. */
  reschedule(): void {
    this.stop();
    this.#schedule();
  }

  /** Removes every expired replica now. */
  sweep(): void {
    const idleMs = this.#d.settings().idleTimeoutMinutes * 60_000;
    let removed = 0;
    for (const id of pickExpired(this.#d.pool.views(), this.#d.clock.now() - idleMs)) {
      const task = this.#d.pool.byId(id);
      if (
        !task ||
        this.#d.pinned?.(task) ||
        this.#d.pool.remove(task, "idle timeout").outcome !== "removing"
      )
        continue;
      removed++;
      this.#d.metrics?.idleRemovals.inc();
      this.#log.info("Removing idle task", {
        task: task.id,
        idleMinutes: this.#d.settings().idleTimeoutMinutes,
      });
    }
    if (removed > 0) this.#d.freed?.();
  }

  #schedule(): void {
    const idleMs = this.#d.settings().idleTimeoutMinutes * 60_000;
    const every = Math.min(5_000, Math.max(100, idleMs / 4));
    this.#cancel = this.#d.clock.setTimer(every, () => {
      this.sweep();
      this.#schedule();
    });
  }
}
