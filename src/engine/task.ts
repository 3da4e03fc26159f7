/**
 * One replica of a task: its lifecycle as an explicit state machine
 * (OpenWhisk's ContainerProxy) and its counters. Each state carries its own
 * data; only `transition` moves it, and an event a state does not accept is
 * refused as a value, never ignored. See docs/architecture.md (lifecycle).
 *
 *   starting ──created──▶ starting ──ready──▶ ready ──remove──▶ removing ──removed──▶ gone
 *       └──fail──▶ failed        └──remove──▶ removing
 */
import type { Reservation } from "./ledger.ts";
import type { TaskMeter, UsageReading } from "./ports.ts";
import type { TaskSpec } from "./task-spec.ts";

export type TaskState =
  | { kind: "starting"; since: number; reservation: Reservation; containerId?: string }
  | {
      kind: "ready";
      since: number;
      reservation: Reservation;
      containerId: string;
      endpoint: string;
    }
  | { kind: "removing"; reason: string; containerId?: string }
  | { kind: "gone"; reason: string }
  | { kind: "failed"; error: Error; containerId?: string };

export type TaskEvent =
  | { type: "created"; containerId: string }
  | { type: "ready"; endpoint: string; at: number }
  | { type: "fail"; error: Error }
  | { type: "remove"; reason: string }
  | { type: "removed" };

export type StateKind = TaskState["kind"];
export type EventType = TaskEvent["type"];

/** The next state, or why the current state refuses the event. */
export type Transition = { ok: true; state: TaskState } | { ok: false; refused: string };

/** Which events each state accepts; every other pair is refused. */
export const ACCEPTS: Record<StateKind, readonly EventType[]> = {
  starting: ["created", "ready", "fail", "remove"],
  ready: ["remove"],
  removing: ["removed"],
  // Stryker disable next-line ArrayDeclaration: no event type is named "Stryker was here", so the list still accepts none
  gone: [],
  // Stryker disable next-line ArrayDeclaration: as above
  failed: [],
};

export function transition(state: TaskState, event: TaskEvent): Transition {
  const refuse = (why = "") => ({
    ok: false as const,
    refused: `A task in state "${state.kind}" does not accept event "${event.type}"${why}`,
  });
  if (!ACCEPTS[state.kind].includes(event.type)) return refuse();
  switch (event.type) {
    case "created":
      // Stryker disable next-line ConditionalExpression: ACCEPTS lets "created" reach only a starting task; this check narrows the type
      if (state.kind !== "starting") return refuse();
      if (state.containerId !== undefined) return refuse(": it already has a container");
      return { ok: true, state: { ...state, containerId: event.containerId } };
    case "ready":
      // Stryker disable next-line ConditionalExpression: ACCEPTS lets "ready" reach only a starting task; this check narrows the type
      if (state.kind !== "starting") return refuse();
      if (state.containerId === undefined) return refuse(": it has no container yet");
      return {
        ok: true,
        state: {
          kind: "ready",
          since: event.at,
          reservation: state.reservation,
          containerId: state.containerId,
          endpoint: event.endpoint,
        },
      };
    case "fail":
      return {
        ok: true,
        state: { kind: "failed", error: event.error, containerId: containerOf(state) },
      };
    case "remove":
      return {
        ok: true,
        state: { kind: "removing", reason: event.reason, containerId: containerOf(state) },
      };
    case "removed":
      // Stryker disable next-line ConditionalExpression: ACCEPTS lets "removed" reach only a removing task; this check narrows the type
      if (state.kind !== "removing") return refuse();
      return { ok: true, state: { kind: "gone", reason: state.reason } };
  }
}

function containerOf(state: TaskState): string | undefined {
  return "containerId" in state ? state.containerId : undefined;
}

export class Task {
  /** Unique among replicas: the container name. */
  readonly id: string;
  readonly key: string;
  readonly spec: TaskSpec;
  /** Aborts the start (pull, create, ready wait) when the task is removed while starting. */
  readonly abort = new AbortController();
  #state: TaskState;
  #inFlight = 0;
  #overlaps = 0;
  #served = 0;
  /** Its resource meter, from its start (TaskRuntime); undefined where there is none. */
  meter?: TaskMeter;
  /** How long its start took (pull, create, ready), ms; 0 for an adopted task. */
  startMs = 0;
  /** Its meter's CPU reading after its last request (usage.ts). */
  lastCpuMs?: number;
  /** Its peak memory was reset after its last answer, and no request has started since (usage.ts). */
  peakFresh = false;
  /** The reading overlapping requests answered in this I/O turn share (usage.ts). */
  turnReading?: UsageReading;
  #lastUsed: number;

  constructor(o: {
    id: string;
    key: string;
    spec: TaskSpec;
    reservation: Reservation;
    now: number;
  }) {
    this.id = o.id;
    this.key = o.key;
    this.spec = o.spec;
    this.#lastUsed = o.now;
    this.#state = { kind: "starting", since: o.now, reservation: o.reservation };
  }

  get state(): TaskState {
    return this.#state;
  }

  /** Applies an event; the refusal comes back as a value for the caller to act on. */
  apply(event: TaskEvent): Transition {
    const t = transition(this.#state, event);
    if (t.ok) {
      this.#state = t.state;
      if (t.state.kind === "ready") this.#lastUsed = t.state.since;
    }
    return t;
  }

  /** A request takes one of this replica's slots; only a ready replica has any. */
  take(): boolean {
    if (this.#state.kind !== "ready") return false;
    // A request that joins others in flight: their usage is no longer theirs alone (usage.ts).
    // Stryker disable next-line ConditionalExpression,EqualityOperator,UpdateOperator: usage.ts compares the count before and after a request, so any change of it while the request is in flight marks the overlap; a request that finds the task idle takes its slot before its own count is read
    if (this.#inFlight > 0) this.#overlaps++;
    this.#inFlight++;
    return true;
  }

  /** A request leaves its slot at `now`. */
  leave(now: number): void {
    if (this.#inFlight > 0) this.#inFlight--;
    this.#lastUsed = now;
  }

  /** The task answered a request. */
  answered(): void {
    this.#served++;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** How many times a request took a slot while another was in flight: usage.ts tells overlapped requests by it. */
  get overlaps(): number {
    return this.#overlaps;
  }

  get served(): number {
    return this.#served;
  }

  get lastUsed(): number {
    return this.#lastUsed;
  }

  get name(): string {
    return this.id;
  }

  get reservation(): Reservation | undefined {
    // Stryker disable next-line ConditionalExpression: the other states carry no reservation, so reading theirs gives undefined as well
    return this.#state.kind === "starting" || this.#state.kind === "ready"
      ? this.#state.reservation
      : undefined;
  }

  get containerId(): string | undefined {
    return containerOf(this.#state);
  }

  get endpoint(): string | undefined {
    // Stryker disable next-line ConditionalExpression: the other states carry no endpoint, so reading theirs gives undefined as well
    return this.#state.kind === "ready" ? this.#state.endpoint : undefined;
  }
}
