/**
 * Admission: the line of requests waiting for a replica, and the one method
 * that applies `decide` to it. `run()` is called whenever capacity or a slot
 * frees up (a request ends, a replica becomes ready or leaves, the config
 * changes); nothing it calls leads back into it. See docs/architecture.md.
 */
import { ExceedsCapacityError, NoCapacityError, type ExecutorError } from "./errors.ts";
import type { Amount, Ledger } from "./ledger.ts";
import type { EngineMetrics } from "./metrics.ts";
import { decide, type Decision, type SchedulingView, type TaskView } from "./policy.ts";
import type { Clock } from "./ports.ts";
import type { EngineSettings } from "./settings.ts";
import type { TaskPool } from "./task-pool.ts";
import type { Task } from "./task.ts";
import type { TaskSpec } from "./task-spec.ts";

interface Waiter {
  key: string;
  spec: TaskSpec;
  want: Amount;
  resolve: (t: Task) => void;
  reject: (e: Error) => void;
  /** What it waited for at the last run; a queue timeout spares those whose start is under way. */
  waiting: "start" | "slot" | "capacity";
  counted: boolean;
  cancelTimer: () => void;
  detach: () => void;
}

export interface AdmissionDeps {
  ledger: Ledger;
  pool: TaskPool;
  clock: Clock;
  settings: () => EngineSettings;
  /** Launches a replica that `run()` added to the pool; called after `run()` returns. */
  launch: (task: Task) => void;
  metrics?: EngineMetrics;
}

export class Admission {
  #d: AdmissionDeps;
  #queue: Waiter[] = [];

  constructor(deps: AdmissionDeps) {
    this.#d = deps;
  }

  /** Requests waiting for a slot or for capacity (not those whose replica is starting). */
  get queueLength(): number {
    let n = 0;
    for (const w of this.#queue) if (w.waiting !== "start") n++;
    return n;
  }

  /** Requests waiting, by key. */
  queuedByKey(): Map<string, number> {
    const m = new Map<string, number>();
    for (const w of this.#queue) m.set(w.key, (m.get(w.key) ?? 0) + 1);
    return m;
  }

  /**
   * The fast path: a slot on a ready replica of `key` now, when nobody of the
   * same key is in line. The same `decide`, with starts held back.
   */
  take(key: string, spec: TaskSpec): Task | undefined {
    const replicas = this.#d.pool.replicas(key);
    // Stryker disable next-line ConditionalExpression: a shortcut; without replicas decide() never answers "reuse"
    if (replicas.length === 0) return undefined;
    for (const w of this.#queue) if (w.key === key) return undefined;
    const d = decide(
      // Stryker disable next-line BooleanLiteral: only "reuse" is acted on here, and decide() answers it before it looks at capacityBlocked
      { ...this.#view(this.#d.pool.views(replicas)), capacityBlocked: true },
      { key, want: amountOf(spec) },
    );
    // Stryker disable next-line ConditionalExpression: another decision has no replica, and #takeSlot(undefined) is undefined
    return d.kind === "reuse" ? this.#takeSlot(d.replica) : undefined;
  }

  /** Waits in line for a slot on a replica of `key`; rejects on abort or after the queue timeout. */
  wait(key: string, spec: TaskSpec, signal?: AbortSignal): Promise<Task> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const p = new Promise<Task>((resolve, reject) => {
      const w: Waiter = {
        key,
        spec,
        want: amountOf(spec),
        resolve,
        reject,
        // Stryker disable next-line StringLiteral: run() below sets `waiting` before anything reads it
        waiting: "capacity",
        counted: false,
        cancelTimer: () => {},
        detach: () => {},
      };
      this.#arm(w);
      if (signal) {
        const onAbort = () => this.#leave(w, signal.reason);
        // Stryker disable next-line ObjectLiteral,BooleanLiteral: settling detaches the listener, and #leave ignores a waiter no longer in line
        signal.addEventListener("abort", onAbort, { once: true });
        w.detach = () => signal.removeEventListener("abort", onAbort);
      }
      this.#queue.push(w);
    });
    this.run();
    return p;
  }

  /**
   * Applies `decide` to every waiter in line, in order: hands out slots,
   * starts replicas (evicting idle ones), refuses what can no longer fit.
   */
  run(): void {
    // Stryker disable next-line ConditionalExpression: a shortcut; an empty line decides and launches nothing
    if (this.#queue.length === 0) return;
    const launches: Task[] = [];
    let blocked = false;
    const ahead = new Map<string, number>();
    let tasks = this.#d.pool.views();
    for (const w of [...this.#queue]) {
      const d: Decision = decide(
        { ...this.#view(tasks), aheadForKey: ahead.get(w.key) ?? 0, capacityBlocked: blocked },
        { key: w.key, want: w.want },
      );
      switch (d.kind) {
        case "reuse": {
          const t = this.#takeSlot(d.replica);
          // Stryker disable next-line ConditionalExpression: unreachable: the view is refreshed after every change to the pool (starts, evictions), and decide reuses only a ready replica with a free slot
          if (!t) break;
          this.#settle(w);
          w.resolve(t);
          tasks = this.#d.pool.views();
          continue;
        }
        case "refuse":
          this.#settle(w);
          w.reject(
            new ExceedsCapacityError(
              `The task "${w.spec.image}" no longer fits the capacity for tasks: it was reduced while the request waited`,
            ),
          );
          continue;
        case "start": {
          for (const id of d.evict) {
            const victim = this.#d.pool.byId(id);
            if (
              victim &&
              this.#d.pool.remove(victim, "evicted to make room for another task").outcome ===
                "removing"
            )
              this.#d.metrics?.evictions.inc();
          }
          // The victims are gone whether or not the reservation below succeeds: the waiters behind
          // must not be handed one of them (docs/architecture.md, "The request path").
          tasks = this.#d.pool.views();
          const r = this.#d.ledger.tryReserve(w.want);
          if (!r) {
            // Stryker disable next-line StringLiteral: any value but "start" and "slot" reads as waiting for capacity
            w.waiting = "capacity";
            blocked = true;
            break;
          }
          launches.push(this.#d.pool.add(w.key, w.spec, r));
          tasks = this.#d.pool.views();
          w.waiting = "start";
          break;
        }
        case "wait":
          w.waiting = d.for;
          if (d.for === "capacity") blocked = true;
          break;
      }
      if (w.waiting !== "start" && !w.counted) {
        w.counted = true;
        this.#d.metrics?.queued.inc();
      }
      ahead.set(w.key, (ahead.get(w.key) ?? 0) + 1);
    }
    for (const t of launches) this.#d.launch(t);
  }

  /**
   * A replica of `key` failed to start: the requests it was starting for get
   * its error (every one in line for the key when replicas are off).
   */
  startFailed(key: string, error: ExecutorError): void {
    const n = this.#d.settings().taskConcurrency;
    const starting = this.#d.pool.replicas(key).filter((t) => t.state.kind === "starting").length;
    let covered = n === 0 ? (starting > 0 ? Infinity : 0) : starting * n;
    let share = n === 0 ? Infinity : n;
    for (const w of [...this.#queue]) {
      if (w.key !== key) continue;
      if (covered > 0) {
        covered--;
        continue;
      }
      if (share-- <= 0) break;
      this.#settle(w);
      w.reject(error);
    }
  }

  /** Rejects every waiter with `error` (pause, stop). */
  rejectAll(error: Error): void {
    for (const w of [...this.#queue]) {
      this.#settle(w);
      w.reject(error);
    }
  }

  #view(tasks: TaskView[]): SchedulingView {
    const s = this.#d.settings();
    const cap = this.#d.ledger.capacity;
    return {
      concurrency: s.taskConcurrency,
      maxReplicas: s.maxReplicas,
      capacity: { cpuTenths: cap.cpuTenths, memMB: cap.memMB, gpuCount: cap.gpus.length },
      free: this.#d.ledger.free(),
      tasks,
      aheadForKey: 0,
      // Stryker disable next-line BooleanLiteral: both callers set capacityBlocked themselves
      capacityBlocked: false,
    };
  }

  #takeSlot(id: string): Task | undefined {
    const t = this.#d.pool.byId(id);
    // Stryker disable next-line OptionalChaining: ids come from views refreshed after every change to the pool, so the replica is there
    return t?.take() ? t : undefined;
  }

  /** The queue timeout; a waiter whose replica is starting waits on (the start has its own bounds). */
  #arm(w: Waiter): void {
    const ms = this.#d.settings().queueTimeoutMs;
    w.cancelTimer = this.#d.clock.setTimer(ms, () => {
      if (w.waiting === "start") return this.#arm(w);
      this.#d.metrics?.queueTimeouts.inc();
      const why = w.waiting === "slot" ? "every replica of the task is busy" : "every task is busy";
      this.#leave(
        w,
        new NoCapacityError(
          `No capacity for the task within the queue timeout of ${ms / 1000} s: ${why}`,
          1,
        ),
      );
    });
  }

  /** A waiter leaves the line (abort, timeout); those behind it may now go ahead. */
  #leave(w: Waiter, error: unknown): void {
    // Stryker disable next-line ConditionalExpression: settling cancels the timer and detaches the listener, so only a waiter in line leaves; again would change nothing
    if (!this.#queue.includes(w)) return;
    this.#settle(w);
    w.reject(error as Error);
    this.run();
  }

  #settle(w: Waiter): void {
    const i = this.#queue.indexOf(w);
    // Stryker disable next-line ConditionalExpression: every caller settles a waiter that is in line
    if (i >= 0) this.#queue.splice(i, 1);
    w.cancelTimer();
    w.detach();
  }
}

export function amountOf(spec: TaskSpec): Amount {
  return { cpuTenths: spec.cpuTenths, memMB: spec.memMB, gpuCount: spec.gpuCount };
}
