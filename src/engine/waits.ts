/**
 * Every wait of the engine, on its Clock (see docs/architecture.md, "Time"): so that tests drive
 * time, and so that each timer is cancelled when what it waited for is done. One controller and one
 * timer per wait: `AbortSignal.timeout` + `AbortSignal.any` cost WeakRefs and finalization-registry
 * work on every request.
 */
import type { Clock } from "./ports.ts";

/** Resolves after `ms`; rejects with the signal's reason when `signal` aborts first. */
export function delay(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      cancel();
      reject(signal.reason);
    };
    const cancel = clock.setTimer(ms, () => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
    // Stryker disable next-line ObjectLiteral,BooleanLiteral: an abort happens once, so a listener kept after it never runs again
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Resolves after `ms`, or at once when `signal` aborts (for a loop that checks its signal next). */
export function pause(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return delay(clock, ms, signal).catch(() => {});
}

/**
 * Resolves when `wake` is called or after `ms`, whichever comes first; rejects with the signal's
 * reason when `signal` aborts. `subscribe` hands `wake` to whoever will call it and returns how to
 * take it back; it is taken back however the wait ends. `onTimeout` runs when the time ran out.
 */
export function wakeOrTimeout(
  clock: Clock,
  ms: number,
  subscribe: (wake: () => void) => () => void,
  opts: { signal?: AbortSignal; onTimeout?: () => void } = {},
): Promise<void> {
  const { signal, onTimeout } = opts;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const end = () => {
      cancel();
      unsubscribe();
      signal?.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      end();
      reject(signal!.reason);
    };
    const cancel = clock.setTimer(ms, () => {
      end();
      onTimeout?.();
      resolve();
    });
    const unsubscribe = subscribe(() => {
      end();
      resolve();
    });
    // Stryker disable next-line ObjectLiteral,BooleanLiteral: an abort happens once, so a listener kept after it never runs again
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Resolves with true when `p` has not settled within `ms` (the caller stops waiting), false when it has. */
export function outlasts(p: Promise<unknown>, ms: number, clock: Clock): Promise<boolean> {
  return new Promise((resolve) => {
    const cancel = clock.setTimer(ms, () => resolve(true));
    const settled = () => {
      cancel();
      resolve(false);
    };
    void p.then(settled, settled);
  });
}

/**
 * A signal that aborts with `reason()` after `ms`, or with the parent's reason when `parent`
 * aborts first. `cancel()` stops the timer and lets go of the parent; call it however the work
 * ends. A class, so that the hot path (one per request) allocates no closures for its methods.
 */
export class Deadline {
  readonly #ac = new AbortController();
  readonly #parent: AbortSignal | undefined;
  readonly #cancelTimer: () => void;
  #timedOut = false;

  constructor(clock: Clock, ms: number, reason: () => unknown, parent?: AbortSignal) {
    this.#parent = parent;
    this.#cancelTimer = clock.setTimer(ms, () => {
      this.#timedOut = true;
      this.#ac.abort(reason());
    });
    if (parent?.aborted) this.#ac.abort(parent.reason);
    else {
      // Stryker disable next-line ObjectLiteral,BooleanLiteral: an abort happens once, so a listener kept after it never runs again
      parent?.addEventListener("abort", this, { once: true });
    }
  }

  get signal(): AbortSignal {
    return this.#ac.signal;
  }

  /** Whether it aborted because the time ran out (not because the parent aborted). */
  timedOut(): boolean {
    return this.#timedOut;
  }

  cancel(): void {
    this.#cancelTimer();
    this.#parent?.removeEventListener("abort", this);
  }

  /** The parent aborted (an EventListener object: no closure to keep for removeEventListener). */
  handleEvent(): void {
    this.#ac.abort(this.#parent!.reason);
  }
}

/** A Deadline: see the class. */
export function deadline(
  clock: Clock,
  ms: number,
  reason: () => unknown,
  parent?: AbortSignal,
): Deadline {
  return new Deadline(clock, ms, reason, parent);
}

/** `p`, or the signal's reason as soon as it aborts. */
export function raceAbort<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    // Stryker disable next-line ObjectLiteral,BooleanLiteral: a signal aborts once, and settling removes the listener
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
