/**
 * The resource ledger: integer tenths of a core, MB and a set of GPU
 * indexes, reserved against a capacity. Pure bookkeeping, no I/O.
 */

export interface Amount {
  cpuTenths: number;
  memMB: number;
  gpuCount: number;
}

export interface Capacity {
  cpuTenths: number;
  memMB: number;
  /** GPU indexes tasks may use. */
  gpus: readonly number[];
}

export interface Reservation {
  readonly id: number;
  readonly cpuTenths: number;
  readonly memMB: number;
  readonly gpus: readonly number[];
}

export class Ledger {
  #capacity: Capacity;
  #cpu = 0;
  #mem = 0;
  #held = new Map<number, Reservation>();
  #gpusHeld = new Set<number>();
  /** GPUs busy with work that is not ours, from the last sample. */
  #gpusBusy = new Set<number>();
  #nextId = 1;

  constructor(capacity: Capacity) {
    this.#capacity = capacity;
  }

  get capacity(): Capacity {
    return this.#capacity;
  }

  /** Changes the capacity; reservations already held stay until released. */
  setCapacity(capacity: Capacity): void {
    this.#capacity = capacity;
  }

  used(): { cpuTenths: number; memMB: number; gpus: number[] } {
    return {
      cpuTenths: this.#cpu,
      memMB: this.#mem,
      gpus: [...this.#gpusHeld].sort((a, b) => a - b),
    };
  }

  /** GPUs neither held by a task nor busy with someone else's work. */
  freeGpus(): number[] {
    return this.#capacity.gpus.filter((g) => !this.#gpusHeld.has(g) && !this.#gpusBusy.has(g));
  }

  free(): Amount {
    return {
      cpuTenths: this.#capacity.cpuTenths - this.#cpu,
      memMB: this.#capacity.memMB - this.#mem,
      gpuCount: this.freeGpus().length,
    };
  }

  /**
   * Records which GPUs other work keeps busy. A GPU one of our tasks holds is
   * busy because of it, so only GPUs not held are judged.
   */
  markBusyGpus(busy: Iterable<number>): void {
    this.#gpusBusy = new Set([...busy].filter((g) => !this.#gpusHeld.has(g)));
  }

  /** What would still be missing after reserving `want`; undefined when it fits now. */
  shortage(want: Amount): Amount | undefined {
    const f = this.free();
    const s = {
      cpuTenths: Math.max(0, want.cpuTenths - f.cpuTenths),
      memMB: Math.max(0, want.memMB - f.memMB),
      gpuCount: Math.max(0, want.gpuCount - f.gpuCount),
    };
    return s.cpuTenths === 0 && s.memMB === 0 && s.gpuCount === 0 ? undefined : s;
  }

  /**
   * Reserves `want` when it fits now; undefined otherwise. `gpus`: exactly these GPUs, each free
   * (an adopted task keeps the ones its container was given).
   */
  tryReserve(want: Amount, exact?: readonly number[]): Reservation | undefined {
    if (this.shortage(want) !== undefined) return undefined;
    const free = this.freeGpus();
    if (
      exact !== undefined &&
      (exact.length !== want.gpuCount ||
        exact.some((g) => !free.includes(g)) ||
        new Set(exact).size !== exact.length)
    )
      return undefined;
    const gpus = exact !== undefined ? [...exact] : free.slice(0, want.gpuCount);
    const r: Reservation = {
      // Stryker disable next-line UpdateOperator: ids only need to be unique, which counting down keeps them too
      id: this.#nextId++,
      cpuTenths: want.cpuTenths,
      memMB: want.memMB,
      gpus,
    };
    this.#cpu += r.cpuTenths;
    this.#mem += r.memMB;
    for (const g of gpus) this.#gpusHeld.add(g);
    this.#held.set(r.id, r);
    return r;
  }

  /** Returns a reservation; returning one twice is harmless. */
  release(r: Reservation): void {
    if (!this.#held.delete(r.id)) return;
    this.#cpu -= r.cpuTenths;
    this.#mem -= r.memMB;
    for (const g of r.gpus) this.#gpusHeld.delete(g);
  }

  get reservations(): number {
    return this.#held.size;
  }
}
