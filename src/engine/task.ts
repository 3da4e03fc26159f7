/**
 * One warm task: its lifecycle as an explicit state machine (OpenWhisk's
 * ContainerProxy) and its counters. starting → ready → removing → gone,
 * or starting → failed. Events a state does not accept are rejected.
 */
import { InternalError } from "./errors.ts";
import type { Reservation } from "./ledger.ts";
import type { TaskSpec } from "./task-spec.ts";

export type TaskState =
  | { kind: "starting"; since: number }
  | { kind: "ready"; endpoint: string; readyAt: number }
  | { kind: "removing"; reason: string }
  | { kind: "gone"; reason: string }
  | { kind: "failed"; error: Error };

export type TaskEvent =
  | { type: "ready"; endpoint: string; at: number }
  | { type: "fail"; error: Error }
  | { type: "remove"; reason: string; error?: Error }
  | { type: "removed" };

const ACCEPTS: Record<TaskState["kind"], readonly TaskEvent["type"][]> = {
  starting: ["ready", "fail", "remove"],
  ready: ["remove"],
  removing: ["removed"],
  gone: [],
  failed: [],
};

/** The next state, or an InternalError when `state` does not accept `event`. */
export function transition(state: TaskState, event: TaskEvent): TaskState {
  if (!ACCEPTS[state.kind].includes(event.type)) {
    throw new InternalError(`Task in state "${state.kind}" does not accept event "${event.type}"`);
  }
  switch (event.type) {
    case "ready":
      return { kind: "ready", endpoint: event.endpoint, readyAt: event.at };
    case "fail":
      return { kind: "failed", error: event.error };
    case "remove":
      return { kind: "removing", reason: event.reason };
    case "removed":
      return { kind: "gone", reason: state.kind === "removing" ? state.reason : "removed" };
  }
}

export class Task {
  readonly key: string;
  readonly spec: TaskSpec;
  readonly name: string;
  readonly abort = new AbortController();
  #state: TaskState;
  reservation?: Reservation;
  containerId?: string;
  inFlight = 0;
  served = 0;
  lastUsed: number;
  /** Settles when the task is ready (resolves) or fails (rejects). */
  readonly ready: Promise<void>;
  #settle!: { resolve: () => void; reject: (e: Error) => void };

  constructor(opts: { key: string; spec: TaskSpec; name: string; now: number }) {
    this.key = opts.key;
    this.spec = opts.spec;
    this.name = opts.name;
    this.lastUsed = opts.now;
    this.#state = { kind: "starting", since: opts.now };
    this.ready = new Promise<void>((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    // Nobody may be waiting; an unobserved failure must not crash the process.
    this.ready.catch(() => {});
  }

  get state(): TaskState {
    return this.#state;
  }

  /** Applies an event; throws when the current state does not accept it. */
  apply(event: TaskEvent): void {
    const before = this.#state.kind;
    const after: TaskState = transition(this.#state, event);
    this.#state = after;
    if (before !== "starting") return;
    if (after.kind === "ready") this.#settle.resolve();
    else if (after.kind === "failed") this.#settle.reject(after.error);
    else this.#settle.reject(event.type === "remove" && event.error ? event.error : new InternalError(`Task "${this.key}" was removed while starting`));
  }

  get endpoint(): string | undefined {
    return this.#state.kind === "ready" ? this.#state.endpoint : undefined;
  }
}
