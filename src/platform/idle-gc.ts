/**
 * A full garbage collection once the executor goes quiet after serving
 * requests. Under load V8's old generation grows with what the requests
 * left behind, and V8's own memory reducer, which should shrink it once the
 * process is idle, never judges a Node daemon idle: an executor kept 30-40 MB
 * more than it needed after a burst, for as long as no new load came
 * (docs/architecture.md, "Memory"). One collection after each quiet spell
 * gives it back; it costs a few milliseconds, while nothing is being served.
 * Needs `gc` (the executable runs with --expose-gc); elsewhere it does nothing.
 */

type Gc = (options?: {
  type?: "major" | "minor";
  execution?: "sync" | "async";
  flavor?: "regular" | "last-resort";
}) => unknown;

export interface IdleGcOptions {
  /** Requests served so far (a counter that only grows). */
  served: () => number;
  /** How long without a request counts as quiet (ms; default 5000). */
  quietMs?: number;
  /** The collector; defaults to the global `gc` that --expose-gc installs. */
  gc?: Gc;
}

/** Starts watching; returns a function that stops it. */
export function startIdleGc(o: IdleGcOptions): () => void {
  const gc = o.gc ?? (globalThis as { gc?: Gc }).gc;
  if (typeof gc !== "function") return () => {};
  let seen = o.served();
  let busy = false;
  const timer = setInterval(() => {
    const now = o.served();
    if (now !== seen) {
      seen = now;
      busy = true;
    } else if (busy) {
      busy = false;
      gc({ type: "major", execution: "async", flavor: "last-resort" });
    }
  }, o.quietMs ?? 5000);
  (timer as { unref?: () => void }).unref?.();
  return () => clearInterval(timer);
}
