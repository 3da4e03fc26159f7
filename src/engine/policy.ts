/**
 * Pool policy as pure functions over plain data (OpenWhisk's ContainerPool
 * companion object): which warm tasks to evict, whether an intent can ever fit.
 */
import type { Amount } from "./ledger.ts";

/** What policy needs to know about one task. */
export interface TaskView {
  key: string;
  state: string;
  inFlight: number;
  lastUsed: number;
  cpuTenths: number;
  memMB: number;
  gpuCount: number;
}

/** Idle: ready and serving nothing. Only idle tasks may be evicted. */
export function isIdle(t: TaskView): boolean {
  return t.state === "ready" && t.inFlight === 0;
}

/**
 * Idle tasks to remove so that `shortage` is covered: least recently used
 * first, skipping those that free nothing still missing, no more than needed.
 * Undefined when even every idle task would not be enough.
 */
export function pickEvictions(tasks: readonly TaskView[], shortage: Amount): string[] | undefined {
  const missing = { ...shortage };
  const chosen: string[] = [];
  const idle = tasks.filter(isIdle).sort((a, b) => a.lastUsed - b.lastUsed || (a.key < b.key ? -1 : 1));
  for (const t of idle) {
    if (covered(missing)) break;
    const helps =
      (missing.cpuTenths > 0 && t.cpuTenths > 0) || (missing.memMB > 0 && t.memMB > 0) || (missing.gpuCount > 0 && t.gpuCount > 0);
    if (!helps) continue;
    chosen.push(t.key);
    missing.cpuTenths -= t.cpuTenths;
    missing.memMB -= t.memMB;
    missing.gpuCount -= t.gpuCount;
  }
  return covered(missing) ? chosen : undefined;
}

/** Tasks idle since before `cutoff` (ms since the epoch), oldest first. */
export function pickExpired(tasks: readonly TaskView[], cutoff: number): string[] {
  return tasks
    .filter((t) => isIdle(t) && t.lastUsed <= cutoff)
    .sort((a, b) => a.lastUsed - b.lastUsed)
    .map((t) => t.key);
}

function covered(m: Amount): boolean {
  return m.cpuTenths <= 0 && m.memMB <= 0 && m.gpuCount <= 0;
}
