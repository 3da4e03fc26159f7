/**
 * Scheduling policy as pure functions over plain data (OpenWhisk's
 * ContainerPool companion object): the one decision for a request, which
 * idle tasks to evict, which have idled out. The decision table is in
 * docs/architecture.md (scheduler).
 */
import type { Amount } from "./ledger.ts";

/** What policy needs to know about one replica. */
export interface TaskView {
  /** Unique per replica. */
  id: string;
  key: string;
  state: string;
  inFlight: number;
  lastUsed: number;
  cpuTenths: number;
  memMB: number;
  gpuCount: number;
}

/** Everything `decide` looks at, as plain data. */
export interface SchedulingView {
  /** Requests one replica serves at once; 0 means unlimited: one replica per key. */
  concurrency: number;
  /** Replicas per key at most; 0 means as many as capacity allows. */
  maxReplicas: number;
  /** The whole capacity for tasks. */
  capacity: Amount;
  /** What is not reserved now; negative after the capacity shrank below the reservations. */
  free: Amount;
  /** Every replica that is starting or ready, of every key. */
  tasks: readonly TaskView[];
  /** Requests for the same key earlier in line that no replica has taken yet. */
  aheadForKey: number;
  /** An earlier request waits for capacity: starts wait behind it (one FIFO across keys). */
  capacityBlocked: boolean;
}

export interface SchedulingRequest {
  key: string;
  want: Amount;
}

export type Decision =
  /** Take a slot on this ready replica now. */
  | { kind: "reuse"; replica: string }
  /** Start a replica for the key after removing these idle replicas (of other keys). */
  | { kind: "start"; evict: string[] }
  /** Wait: for a replica already starting, for a slot on the key's busy replicas, or for capacity. */
  | { kind: "wait"; for: "start" | "slot" | "capacity" }
  /** Never: the intent does not fit the whole capacity (it shrank after the request came). */
  | { kind: "refuse"; reason: "exceeds_capacity" };

/** The one scheduling decision for a request; the table in docs/architecture.md lists its rows in order. */
export function decide(view: SchedulingView, req: SchedulingRequest): Decision {
  const { want, key } = req;
  const cap = view.capacity;
  if (want.cpuTenths > cap.cpuTenths || want.memMB > cap.memMB || want.gpuCount > cap.gpuCount) {
    return { kind: "refuse", reason: "exceeds_capacity" };
  }
  const n = view.concurrency;
  let best: TaskView | undefined;
  let starting = 0;
  let replicas = 0;
  for (const t of view.tasks) {
    if (t.key !== key) continue;
    if (t.state === "starting") {
      starting++;
      replicas++;
    } else if (t.state === "ready") {
      replicas++;
      // Least busy first; among equals the most recently used, so the others can idle out.
      if (
        (n === 0 || t.inFlight < n) &&
        (!best ||
          t.inFlight < best.inFlight ||
          (t.inFlight === best.inFlight && t.lastUsed > best.lastUsed))
      )
        best = t;
    }
  }
  if (best) return { kind: "reuse", replica: best.id };
  // Stryker disable next-line ConditionalExpression: with n = 0 a starting replica also makes it wait for its start through the limit of 1 below
  const coming = n === 0 ? (starting > 0 ? Infinity : 0) : starting * n;
  if (view.aheadForKey < coming) return { kind: "wait", for: "start" };
  const perKey = view.maxReplicas > 0 ? view.maxReplicas : Infinity;
  // Stryker disable next-line ConditionalExpression: with n = 0 no replica of the key is left by here (a ready one is reused, a starting one waited for)
  const limit = n === 0 ? 1 : perKey;
  if (replicas >= limit) return { kind: "wait", for: starting > 0 ? "start" : "slot" };
  if (view.capacityBlocked) return { kind: "wait", for: "capacity" };
  const short = shortage(want, view.free);
  if (!short) return { kind: "start", evict: [] };
  const evict = pickEvictions(view.tasks, short);
  return evict ? { kind: "start", evict } : { kind: "wait", for: "capacity" };
}

/** Idle: ready and serving nothing. Only idle tasks may be evicted. */
export function isIdle(t: TaskView): boolean {
  return t.state === "ready" && t.inFlight === 0;
}

/** What is missing for `want` beyond `free`; undefined when it fits. */
export function shortage(want: Amount, free: Amount): Amount | undefined {
  const s = {
    cpuTenths: Math.max(0, want.cpuTenths - free.cpuTenths),
    memMB: Math.max(0, want.memMB - free.memMB),
    gpuCount: Math.max(0, want.gpuCount - free.gpuCount),
  };
  return covered(s) ? undefined : s;
}

/**
 * Idle tasks to remove so that `missing` is covered: least recently used
 * first, skipping those that free nothing still missing, no more than needed.
 * Undefined when even every idle task would not be enough, unless
 * `bestEffort`, which returns every one that helps.
 */
export function pickEvictions(
  tasks: readonly TaskView[],
  missing: Amount,
  o: { bestEffort?: boolean } = {},
): string[] | undefined {
  const m = { ...missing };
  const chosen: string[] = [];
  const idle = tasks.filter(isIdle).sort(byLastUse);
  for (const t of idle) {
    // Stryker disable next-line ConditionalExpression: once covered nothing is missing, so no later task helps and none is chosen
    if (covered(m)) break;
    const helps =
      (m.cpuTenths > 0 && t.cpuTenths > 0) ||
      (m.memMB > 0 && t.memMB > 0) ||
      (m.gpuCount > 0 && t.gpuCount > 0);
    if (!helps) continue;
    chosen.push(t.id);
    m.cpuTenths -= t.cpuTenths;
    m.memMB -= t.memMB;
    m.gpuCount -= t.gpuCount;
  }
  return covered(m) || o.bestEffort ? chosen : undefined;
}

/** Replicas idle since before `cutoff` (ms since the epoch), oldest first; each by its own idle time. */
export function pickExpired(tasks: readonly TaskView[], cutoff: number): string[] {
  return tasks
    .filter((t) => isIdle(t) && t.lastUsed <= cutoff)
    .sort((a, b) => a.lastUsed - b.lastUsed)
    .map((t) => t.id);
}

function covered(m: Amount): boolean {
  return m.cpuTenths <= 0 && m.memMB <= 0 && m.gpuCount <= 0;
}

/** Least recently used first; ties by id, so the order never depends on the input's. */
function byLastUse(a: TaskView, b: TaskView): number {
  // Stryker disable next-line EqualityOperator: ids are unique, so two replicas never compare equal
  return a.lastUsed - b.lastUsed || (a.id < b.id ? -1 : 1);
}
