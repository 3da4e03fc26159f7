/**
 * What a task's container used, from the kernel's own accounting of its cgroup (docs/usage.md):
 * its CPU time and its peak memory. Paths follow the engine's cgroup driver and version; the files
 * are opened once per task and read with one positioned read each (no Engine API call, no path
 * lookup on the warm path). cgroup v1: `cpuacct.usage` (ns) and `memory.max_usage_in_bytes`, which
 * can be reset (written 0) so that a request that has its container to itself gets its own peak;
 * cgroup v2: `cpu.stat` (`usage_usec`) and `memory.peak`, the peak since the task started (this
 * kernel interface cannot be reset by the executor), marked so.
 */
import { closeSync, existsSync, openSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { TaskMeter, UsageReading } from "../../engine/ports.ts";

export interface CgroupLayout {
  /** "cgroupfs" or "systemd", as /info says. */
  driver: string;
  /** "1" or "2". */
  version: string;
  /** HostConfig.CgroupParent of the tasks ("" for the engine's default). */
  parent: string;
  /** Where the cgroup filesystem is mounted. */
  root?: string;
}

/** The folder of a container's cgroup in one hierarchy (`controller`, v1) or in the unified tree (v2). */
export function containerCgroup(id: string, l: CgroupLayout, controller?: string): string {
  const root = l.root ?? "/sys/fs/cgroup";
  const base = l.version === "2" ? root : join(root, controller ?? "cpuacct");
  if (l.driver === "systemd") return join(base, l.parent || "system.slice", `docker-${id}.scope`);
  return join(base, l.parent || "/docker", id);
}

const buf = new Uint8Array(4096);

/** The file's first number (its decimal digits), read with one positioned read: no string made. */
function readNumber(fd: number): number {
  const n = readSync(fd, buf, 0, buf.length, 0);
  let v = 0;
  let i = 0;
  while (i < n && (buf[i]! < 48 || buf[i]! > 57)) i++;
  if (i === n) return NaN;
  for (; i < n && buf[i]! >= 48 && buf[i]! <= 57; i++) v = v * 10 + (buf[i]! - 48);
  return v;
}

/**
 * A meter for a container, or undefined where its cgroup cannot be opened (the executor in a
 * container of its own, a remote engine): the usage then says what is missing.
 */
export function openMeter(
  id: string,
  l: CgroupLayout,
): (TaskMeter & { close(): void }) | undefined {
  try {
    if (l.version === "2") {
      const dir = containerCgroup(id, l);
      const cpu = openSync(join(dir, "cpu.stat"), "r");
      const peakFile = join(dir, "memory.peak");
      const mem = existsSync(peakFile) ? openSync(peakFile, "r") : undefined;
      return new Meter(
        // cpu.stat's first line is `usage_usec <n>`: its first number.
        () => readNumber(cpu) / 1000,
        mem === undefined ? undefined : () => readNumber(mem) / 2 ** 20,
        undefined,
        [cpu, ...(mem === undefined ? [] : [mem])],
        "cgroup v2",
      );
    }
    const cpuDir = containerCgroup(
      id,
      l,
      existsSync(join(l.root ?? "/sys/fs/cgroup", "cpuacct")) ? "cpuacct" : "cpu,cpuacct",
    );
    const cpu = openSync(join(cpuDir, "cpuacct.usage"), "r");
    const memDir = containerCgroup(id, l, "memory");
    let mem: number | undefined;
    try {
      mem = openSync(join(memDir, "memory.max_usage_in_bytes"), "r+");
    } catch {
      mem = undefined;
    }
    return new Meter(
      () => readNumber(cpu) / 1e6,
      mem === undefined ? undefined : () => readNumber(mem) / 2 ** 20,
      mem === undefined ? undefined : () => void writeSync(mem, "0", 0),
      [cpu, ...(mem === undefined ? [] : [mem])],
      "cgroup v1",
    );
  } catch {
    return undefined;
  }
}

class Meter implements TaskMeter {
  readonly source: string;
  readonly peakResettable: boolean;
  #cpu: () => number;
  #mem?: () => number;
  #reset?: () => void;
  #fds: number[];
  #closed = false;

  constructor(
    cpu: () => number,
    mem: (() => number) | undefined,
    reset: (() => void) | undefined,
    fds: number[],
    source: string,
  ) {
    this.#cpu = cpu;
    this.#mem = mem;
    this.#reset = reset;
    this.#fds = fds;
    this.source = source;
    this.peakResettable = reset !== undefined;
  }

  read(withPeak = true): UsageReading | undefined {
    if (this.#closed) return undefined;
    try {
      const cpuMs = this.#cpu();
      let memPeakMB: number | undefined;
      try {
        memPeakMB = withPeak ? this.#mem?.() : undefined;
      } catch {
        memPeakMB = undefined;
      }
      return Number.isFinite(cpuMs)
        ? { cpuMs, memPeakMB: Number.isFinite(memPeakMB) ? memPeakMB : undefined }
        : undefined;
    } catch {
      return undefined; // the container is gone: its cgroup with it
    }
  }

  resetPeak(): boolean {
    if (!this.#reset || this.#closed) return false;
    try {
      this.#reset();
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const fd of this.#fds) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
  }
}
