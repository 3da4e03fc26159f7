/**
 * The owner's memory first (docs/architecture.md, "The host's own resources"): while the host's
 * available memory is below `min_free_host_mem_mb`, no task starts (HostMemoryLowError, with both
 * figures) and idle tasks go, least recently used first, one at a time, until it is back above.
 * Busy tasks are never touched. Every reading goes through the HostProbe; every wait is on the Clock.
 */
import { HostMemoryLowError } from "./errors.ts";
import type { Clock, HostProbe, Logger } from "./ports.ts";
import type { EngineSettings } from "./settings.ts";
import type { Task } from "./task.ts";

/** What the guard needs of the pool: its tasks, and their removal (TaskPool.remove). */
export interface RemovablePool {
  all(): Task[];
  remove(task: Task, reason: string): { outcome: string; done: Promise<void> };
}

/** How often the guard reads the host's available memory. */
export const HOST_MEMORY_CHECK_MS = 2_000;

/** Refuses a start while the host's available memory is below `minMB` (an unreadable one is no refusal). */
export async function checkHostMemory(host: HostProbe | undefined, minMB: number): Promise<void> {
  if (minMB <= 0 || !host) return;
  const available = await host.availableMemoryMB().catch(() => undefined);
  if (available !== undefined && available < minMB) throw new HostMemoryLowError(available, minMB);
}

export interface HostMemoryGuardDeps {
  host: HostProbe;
  pool: RemovablePool;
  clock: Clock;
  logger: Logger;
  settings: () => EngineSettings;
  /** Runs the line again after a task left. */
  freed?: () => void;
}

export class HostMemoryGuard {
  #d: HostMemoryGuardDeps;
  #log: Logger;
  #cancel?: () => void;
  #running = false;

  constructor(deps: HostMemoryGuardDeps) {
    this.#d = deps;
    this.#log = deps.logger.child({ component: "memory" });
  }

  /** Reads once (saying so when the host's memory cannot be read), then every HOST_MEMORY_CHECK_MS. */
  async start(): Promise<void> {
    const minMB = this.#d.settings().minFreeHostMemMB;
    if (minMB <= 0) return;
    const available = await this.#d.host.availableMemoryMB().catch(() => undefined);
    if (available === undefined)
      this.#log.warn(
        "Cannot read the host's available memory: min_free_host_mem_mb is not enforced",
        { min_free_host_mem_mb: minMB },
      );
    this.#running = true;
    this.#schedule();
  }

  stop(): void {
    this.#running = false;
    this.#cancel?.();
    this.#cancel = undefined;
  }

  #schedule(): void {
    if (!this.#running) return;
    this.#cancel = this.#d.clock.setTimer(HOST_MEMORY_CHECK_MS, () => {
      void this.check().finally(() => this.#schedule());
    });
  }

  /**
   * While the host's available memory is below the bound, removes the least recently used idle
   * task and reads again once its container is gone. How many tasks went.
   */
  async check(): Promise<number> {
    const minMB = this.#d.settings().minFreeHostMemMB;
    let removed = 0;
    for (;;) {
      if (minMB <= 0) return removed;
      const available = await this.#d.host.availableMemoryMB().catch(() => undefined);
      if (available === undefined || available >= minMB) return removed;
      const idle = this.#d.pool
        .all()
        .filter((t) => t.state.kind === "ready" && t.inFlight === 0)
        .sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (!idle) return removed;
      this.#log.warn("The host is short of memory: removing the least recently used idle task", {
        task: idle.id,
        availableMB: available,
        min_free_host_mem_mb: minMB,
      });
      const r = this.#d.pool.remove(
        idle,
        `the host's available memory (${available} MB) is below min_free_host_mem_mb (${minMB} MB)`,
      );
      if (r.outcome !== "removing") return removed;
      removed++;
      this.#d.freed?.();
      await r.done;
    }
  }
}
