/**
 * Keeps the host's declared tasks warm (`prewarm`): for each entry, `count` replicas of its task
 * key, started from free capacity only when nobody waits in line, held past the idle timeout while
 * within the count, evicted like any idle replica when demand needs the room, and started again
 * when there is room. A start that fails backs off (1 s doubling to 60 s), never in a tight loop.
 * See docs/architecture.md, "Prewarm".
 */
import { amountOf } from "./admission.ts";
import { BadRequestError, ExecutorError } from "./errors.ts";
import type { Ledger } from "./ledger.ts";
import type { EngineMetrics } from "./metrics.ts";
import type { Clock, Logger } from "./ports.ts";
import type { PrewarmEntry } from "./settings.ts";
import { resolveSpec, taskKey, type SpecLimits, type TaskSpec } from "./task-spec.ts";
import type { TaskPool } from "./task-pool.ts";
import type { Task } from "./task.ts";

export interface PrewarmDeps {
  pool: TaskPool;
  ledger: Ledger;
  clock: Clock;
  logger: Logger;
  metrics?: EngineMetrics;
  /** Requests waiting in line now: demand goes first. */
  queueLength: () => number;
  paused: () => boolean;
  /** Starts a replica added to the pool (the executor's own launch). */
  launch: (task: Task) => void;
}

interface Entry {
  key: string;
  spec: TaskSpec;
  count: number;
  /** Failed starts in a row, and when the next try may come. */
  failures: number;
  notBefore: number;
}

const BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 60_000;
const TICK_MS = 5_000;

/**
 * The entries as task specs under `limits`, with the request's own validation; a BadRequestError
 * naming `prewarm[i]` and the reason for the first that cannot be served.
 */
export function resolvePrewarm(
  entries: readonly PrewarmEntry[],
  limits: SpecLimits,
): { key: string; spec: TaskSpec; count: number }[] {
  return entries.map((e, i) => {
    try {
      const spec = resolveSpec(e.intent, limits);
      return { key: taskKey(spec), spec, count: e.count };
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new BadRequestError(`prewarm[${i}] ("${e.intent.image}"): ${why}`, {
        field: `prewarm[${i}]`,
        code: err instanceof ExecutorError ? err.code : "BAD_REQUEST",
      });
    }
  });
}

export class Prewarm {
  #d: PrewarmDeps;
  #log: Logger;
  #entries: Entry[] = [];
  #cancelRetry?: () => void;
  #cancelTick?: () => void;
  #stopped = true;
  /** Replicas prewarm started whose start has not ended yet: whose outcome moves its backoff. */
  #launched = new Set<Task>();

  constructor(deps: PrewarmDeps) {
    this.#d = deps;
    this.#log = deps.logger.child({ component: "prewarm" });
  }

  /** Replaces the list (start-up, update-config); what an entry already has warm stays. */
  set(resolved: { key: string; spec: TaskSpec; count: number }[]): void {
    const before = new Map(this.#entries.map((e) => [e.key, e]));
    this.#entries = resolved.map((r) => ({
      ...r,
      failures: before.get(r.key)?.failures ?? 0,
      notBefore: before.get(r.key)?.notBefore ?? 0,
    }));
  }

  get size(): number {
    return this.#entries.length;
  }

  /** Whether `task` is one of the first `count` live replicas of a prewarm entry: exempt from the idle timeout. */
  pinned(task: Task): boolean {
    const e = this.#entries.find((x) => x.key === task.key);
    if (!e) return false;
    // Counted in place, no array: the executor asks this on every warm request.
    let live = 0;
    for (const r of this.#d.pool.replicas(task.key)) {
      if (r === task) return isLive(r) && live < e.count;
      if (isLive(r)) live++;
    }
    return false;
  }

  /** Starts what the entries lack, from free capacity, while nobody waits in line. */
  run(): void {
    if (
      this.#stopped ||
      this.#entries.length === 0 ||
      this.#d.paused() ||
      this.#d.queueLength() > 0
    )
      return;
    const now = this.#d.clock.now();
    for (const e of this.#entries) {
      if (now < e.notBefore) continue;
      e.notBefore = 0;
      let live = this.#d.pool.replicas(e.key).filter(isLive).length;
      while (live < e.count) {
        const r = this.#d.ledger.tryReserve(amountOf(e.spec));
        if (!r) return; // no free room: nothing else fits better now, and demand may evict these
        const task = this.#d.pool.add(e.key, e.spec, r);
        this.#launched.add(task);
        this.#d.metrics?.prewarmStarts.inc();
        this.#log.info("Prewarming", { task: task.id, image: e.spec.image });
        this.#d.launch(task);
        live++;
      }
    }
  }

  /** A start ended: when prewarm launched it, a success resets the entry's backoff, a failure doubles it. */
  started(task: Task, error?: Error): void {
    if (!this.#launched.delete(task)) return;
    const e = this.#entries.find((x) => x.key === task.key);
    if (!e) return;
    if (!error) {
      e.failures = 0;
      e.notBefore = 0;
      return;
    }
    const wait = Math.min(MAX_BACKOFF_MS, BACKOFF_MS * 2 ** e.failures);
    e.failures++;
    e.notBefore = this.#d.clock.now() + wait;
    this.#log.warn("Prewarm start failed; retrying later", {
      image: e.spec.image,
      retryInS: wait / 1000,
      error: error.message,
    });
    this.#scheduleRetry();
  }

  /** One timer, for the earliest entry that waits out a backoff. */
  #scheduleRetry(): void {
    this.#cancelRetry?.();
    this.#cancelRetry = undefined;
    const waiting = this.#entries.filter((e) => e.notBefore > 0).map((e) => e.notBefore);
    if (waiting.length === 0) return;
    this.#cancelRetry = this.#d.clock.setTimer(
      Math.max(0, Math.min(...waiting) - this.#d.clock.now()),
      () => {
        this.#cancelRetry = undefined;
        this.run();
        this.#scheduleRetry();
      },
    );
  }

  /**
   * Runs now, then every few seconds: a start it held back while requests waited in line (demand
   * first) goes ahead once the line is empty, even when nothing else happens.
   */
  start(): void {
    this.#stopped = false;
    this.run();
    this.#tick();
  }

  stop(): void {
    this.#stopped = true;
    this.#cancelRetry?.();
    this.#cancelRetry = undefined;
    this.#cancelTick?.();
    this.#cancelTick = undefined;
  }

  #tick(): void {
    this.#cancelTick = this.#d.clock.setTimer(TICK_MS, () => {
      if (this.#stopped) return;
      this.run();
      this.#tick();
    });
  }
}

function isLive(t: Task): boolean {
  return t.state.kind === "starting" || t.state.kind === "ready";
}
