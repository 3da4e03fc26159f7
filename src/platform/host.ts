/**
 * HostProbe with systeminformation. It reports the whole host, not a cgroup:
 * the executor clips its task capacity to the host (docs/configuration.md), and /stats
 * reports host use. Cores and memory do not change while the executor runs,
 * so they are read once; usage is cached briefly because /stats may be polled.
 */
import * as si from "systeminformation";
import type { HostProbe } from "../engine/ports.ts";

const MIB = 2 ** 20;

export interface SystemHostProbeOptions {
  /** How long one usage reading is reused, in ms (default 1000). */
  cacheMs?: number;
  /** Milliseconds clock, for tests (default Date.now). */
  now?: () => number;
}

export class SystemHostProbe implements HostProbe {
  readonly #cacheMs: number;
  readonly #now: () => number;
  #cores?: Promise<number>;
  #memoryMB?: Promise<number>;
  #usage?: { at: number; value: Promise<{ cpuPercent: number; memPercent: number }> };

  constructor(opts: SystemHostProbeOptions = {}) {
    this.#cacheMs = opts.cacheMs ?? 1000;
    this.#now = opts.now ?? Date.now;
  }

  /** Logical cores (hardware threads). */
  cores(): Promise<number> {
    this.#cores ??= retryOnFailure(
      si.cpu().then((cpu) => Math.max(1, cpu.cores)),
      () => (this.#cores = undefined),
    );
    return this.#cores;
  }

  memoryMB(): Promise<number> {
    this.#memoryMB ??= retryOnFailure(
      si.mem().then((mem) => Math.floor(mem.total / MIB)),
      () => (this.#memoryMB = undefined),
    );
    return this.#memoryMB;
  }

  /** MemAvailable, in MB: what the host can give without swapping; undefined when unreadable. */
  async availableMemoryMB(): Promise<number | undefined> {
    const mem = await si.mem().catch(() => undefined);
    return mem && mem.total > 0 ? Math.floor(mem.available / MIB) : undefined;
  }

  /** CPU load since the previous reading, and memory in active use (not cache), both 0..100. */
  usage(): Promise<{ cpuPercent: number; memPercent: number }> {
    const now = this.#now();
    if (this.#usage === undefined || now - this.#usage.at >= this.#cacheMs) {
      const entry = { at: now, value: readUsage() };
      // A failed reading is not cached: the next call tries again.
      entry.value.catch(() => {
        if (this.#usage === entry) this.#usage = undefined;
      });
      this.#usage = entry;
    }
    return this.#usage.value;
  }
}

async function readUsage(): Promise<{ cpuPercent: number; memPercent: number }> {
  const [load, mem] = await Promise.all([si.currentLoad(), si.mem()]);
  return {
    cpuPercent: clampPercent(load.currentLoad),
    memPercent: clampPercent(mem.total > 0 ? (mem.active / mem.total) * 100 : 0),
  };
}

function clampPercent(value: number): number {
  return Number.isFinite(value) ? Math.min(100, Math.max(0, value)) : 0;
}

function retryOnFailure<T>(value: Promise<T>, forget: () => void): Promise<T> {
  value.catch(forget);
  return value;
}
