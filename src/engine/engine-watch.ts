/**
 * Keeps an eye on the container engine: whether it answers, which runtimes
 * it has, and its event stream (reconnected when it drops). On every
 * (re)connection it reconciles the pool; on the first, it adopts or removes an earlier run's leftovers.
 */
import { BadRequestError } from "./errors.ts";
import type { Clock, EngineInfo, Logger, TaskRuntime } from "./ports.ts";
import type { TaskPool } from "./task-pool.ts";
import { pause } from "./waits.ts";

export interface EngineStatus {
  reachable: boolean;
  info?: EngineInfo;
  error?: string;
}

export interface EngineWatchDeps {
  runtime: TaskRuntime;
  pool: TaskPool;
  clock: Clock;
  logger: Logger;
  /** Runs the line again after replicas whose containers died left. */
  freed?: () => void;
}

export class EngineWatch {
  #d: EngineWatchDeps;
  #log: Logger;
  #stop = new AbortController();
  #status: EngineStatus = { reachable: false, error: "not checked yet" };
  #leftoversRemoved = false;
  #firstCheck: Promise<void>;
  #markChecked!: () => void;
  #leftoversHandled: Promise<void>;
  #markHandled!: () => void;

  constructor(deps: EngineWatchDeps) {
    this.#d = deps;
    this.#log = deps.logger.child({ component: "engine" });
    this.#firstCheck = new Promise((r) => (this.#markChecked = r));
    this.#leftoversHandled = new Promise((r) => (this.#markHandled = r));
  }

  /**
   * Resolves once an earlier run's tasks are adopted (the rest of its leftovers are then being
   * removed), or once the first attempt to reach the engine failed (the sweep then runs when it answers).
   */
  get leftoversHandled(): Promise<void> {
    return this.#leftoversHandled;
  }

  get status(): EngineStatus {
    return this.#status;
  }

  /** Resolves after the first attempt to reach the engine, whatever its outcome. */
  get firstCheck(): Promise<void> {
    return this.#firstCheck;
  }

  start(): void {
    void this.#loop();
  }

  stop(): void {
    this.#stop.abort();
    this.#markHandled();
  }

  /** Refuses a microVM request whose runtime the engine does not have, never downgrading it. */
  async requireRuntime(name: string): Promise<void> {
    let runtimes = this.#status.info?.runtimes;
    if (!runtimes?.includes(name)) {
      const info = await this.#d.runtime.info();
      this.#status = { reachable: true, info };
      runtimes = info.runtimes;
    }
    if (!runtimes.includes(name)) {
      throw new BadRequestError(
        `Field "runtime" asks for "microVM" but the runtime "${name}" (microVM_runtime) is not registered in the Docker engine; registered: ${runtimes.join(", ")}`,
        { field: "runtime", code: "MICROVM_UNAVAILABLE" },
      );
    }
  }

  async #loop(): Promise<void> {
    const signal = this.#stop.signal;
    let backoff = 250;
    while (!signal.aborted) {
      try {
        const info = await this.#d.runtime.info(signal);
        if (!this.#status.reachable)
          this.#log.info(`${this.#d.runtime.help.name} reachable`, {
            version: info.version,
            api: info.apiVersion,
            transport: info.transport,
          });
        this.#status = { reachable: true, info };
        this.#markChecked();
        backoff = 250;
        const events = this.#d.runtime.watch({
          onEvent: (ev) => {
            if (this.#d.pool.onEvent(ev)) this.#d.freed?.();
          },
          signal,
        });
        if (!this.#leftoversRemoved) {
          // The executor may serve once the adoption is done; the rest goes while it serves.
          await this.#d.pool.removeLeftovers(() => this.#markHandled());
          this.#leftoversRemoved = true;
        }
        if ((await this.#d.pool.reconcile()) > 0) this.#d.freed?.();
        await events;
      } catch (e) {
        if (signal.aborted) return;
        if (this.#status.reachable || this.#status.error === "not checked yet") {
          const { name, unreachable } = this.#d.runtime.help;
          this.#log.warn(
            `${name} unreachable; execute requests get 503 until it answers. ${unreachable}`,
            { error: (e as Error).message },
          );
        }
        this.#status = { reachable: false, error: (e as Error).message };
        this.#markChecked();
        this.#markHandled();
        await pause(this.#d.clock, backoff, signal);
        backoff = Math.min(backoff * 2, 5_000);
      }
    }
  }
}
