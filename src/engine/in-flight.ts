/**
 * The requests in flight at tasks, and the wait for them to finish before a pause or a stop
 * (bounded by the drain timeout, on the Clock).
 */
import type { Clock, Logger } from "./ports.ts";
import { wakeOrTimeout } from "./waits.ts";

export class InFlight {
  #count = 0;
  #waiters: (() => void)[] = [];

  get count(): number {
    return this.#count;
  }

  /** Drains waiting: one that timed out no longer is. */
  get draining(): number {
    return this.#waiters.length;
  }

  enter(): void {
    this.#count++;
  }

  leave(): void {
    this.#count--;
    if (this.#count === 0) for (const w of this.#waiters.splice(0)) w();
  }

  /** Resolves once none is in flight, or after `timeoutMs` (then it says so on `log`). */
  async drain(clock: Clock, timeoutMs: number, log: Logger): Promise<void> {
    if (this.#count === 0) return;
    await wakeOrTimeout(
      clock,
      timeoutMs,
      (wake) => {
        this.#waiters.push(wake);
        return () => (this.#waiters = this.#waiters.filter((w) => w !== wake));
      },
      {
        onTimeout: () =>
          log.warn("Drain timeout reached with requests still in flight", {
            inFlight: this.#count,
          }),
      },
    );
  }
}
