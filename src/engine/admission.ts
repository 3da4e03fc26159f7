/**
 * Admission: reserve from the ledger, evicting idle tasks when that covers
 * the shortage, else wait in FIFO order, bounded by the queue timeout.
 */
import { NoCapacityError } from "./errors.ts";
import type { Amount, Ledger, Reservation } from "./ledger.ts";
import type { EngineMetrics } from "./metrics.ts";
import { pickEvictions, type TaskView } from "./policy.ts";
import type { Clock } from "./ports.ts";

interface Waiter {
  want: Amount;
  resolve: (r: Reservation) => void;
  reject: (e: Error) => void;
  cancelTimer: () => void;
  detach: () => void;
}

export interface AdmissionOptions {
  ledger: Ledger;
  clock: Clock;
  queueTimeoutMs: () => number;
  /** A snapshot of the pool for eviction decisions. */
  tasks: () => TaskView[];
  /** Removes these idle tasks now; their reservations must be released before it returns. */
  evict: (keys: string[]) => void;
  /** Counts queued starts and queue timeouts. */
  metrics?: EngineMetrics;
}

export class Admission {
  #o: AdmissionOptions;
  #queue: Waiter[] = [];
  /** Evictions release resources, which calls pump() again: never re-enter, loop instead. */
  #busy = false;
  #again = false;

  constructor(opts: AdmissionOptions) {
    this.#o = opts;
  }

  get queueLength(): number {
    return this.#queue.length;
  }

  /** A reservation for `want`, now or after waiting in line; rejects with NoCapacityError on timeout. */
  acquire(want: Amount, signal?: AbortSignal): Promise<Reservation> {
    if (this.#queue.length === 0 && !this.#busy) {
      this.#busy = true;
      let r: Reservation | undefined;
      try {
        r = this.#admit(want);
      } finally {
        this.#busy = false;
      }
      if (r) return Promise.resolve(r);
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<Reservation>((resolve, reject) => {
      const timeoutMs = this.#o.queueTimeoutMs();
      const w: Waiter = {
        want,
        resolve,
        reject,
        cancelTimer: this.#o.clock.setTimer(timeoutMs, () => {
          this.#drop(w);
          this.#o.metrics?.queueTimeouts.inc();
          reject(new NoCapacityError(`No capacity for the task within the queue timeout of ${timeoutMs / 1000} s: every task is busy`, 1));
        }),
        detach: () => {},
      };
      if (signal) {
        const onAbort = () => {
          this.#drop(w);
          reject(signal.reason);
        };
        signal.addEventListener("abort", onAbort, { once: true });
        w.detach = () => signal.removeEventListener("abort", onAbort);
      }
      this.#queue.push(w);
      this.#o.metrics?.queued.inc();
    });
  }

  /** Serves waiters in order while the head fits; call whenever resources are released or a task goes idle. */
  pump(): void {
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#busy = true;
    try {
      do {
        this.#again = false;
        while (this.#queue.length > 0) {
          const head = this.#queue[0]!;
          const r = this.#admit(head.want);
          if (!r) break;
          this.#queue.shift();
          head.cancelTimer();
          head.detach();
          head.resolve(r);
        }
      } while (this.#again && this.#queue.length > 0);
    } finally {
      this.#busy = false;
    }
  }

  /** Rejects every waiter with `error` (pause, stop). */
  rejectAll(error: Error): void {
    const waiters = this.#queue.splice(0);
    for (const w of waiters) {
      w.cancelTimer();
      w.detach();
      w.reject(error);
    }
  }

  #admit(want: Amount): Reservation | undefined {
    const { ledger } = this.#o;
    const shortage = ledger.shortage(want);
    if (shortage === undefined) return ledger.tryReserve(want);
    const victims = pickEvictions(this.#o.tasks(), shortage);
    if (victims === undefined) return undefined;
    this.#o.evict(victims);
    return ledger.tryReserve(want);
  }

  #drop(w: Waiter): void {
    const i = this.#queue.indexOf(w);
    if (i >= 0) this.#queue.splice(i, 1);
    w.cancelTimer();
    w.detach();
    // The head may have been holding others back.
    if (i === 0) this.pump();
  }
}
