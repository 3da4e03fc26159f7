/**
 * A task's meter from the Engine API's statistics, for where its cgroup cannot be read: the
 * executor in a container of its own (the desktop app's deployment) or a remote engine. The engine
 * samples a container about once a second, so a request's figures are the difference of the last
 * samples before and after it: coarse, never marked exact; the peak is the container's since it
 * started (the engine gives one on cgroup v1 only). See docs/usage.md.
 */
import type { Clock, TaskMeter, UsageReading } from "../../engine/ports.ts";
import type { ContainerBackend, StatsSample } from "./backend.ts";

/** Waits before following a container's statistics again after their stream ended or failed, ms. */
const RETRY_MS = [1000, 2000, 5000, 10_000, 30_000] as const;

export class StatsMeter implements TaskMeter {
  readonly source = "engine stats";
  readonly peakResettable = false;
  readonly sampled = true;
  #last?: StatsSample;
  #abort = new AbortController();
  #cancelRetry?: () => void;

  constructor(
    readonly id: string,
    backend: Required<Pick<ContainerBackend, "watchStats">>,
    clock: Clock,
  ) {
    this.#follow(backend, clock, 0);
  }

  /** Follows the stream; when it ends or fails (the engine restarted, say) follows it again after a wait, until close(). */
  #follow(
    backend: Required<Pick<ContainerBackend, "watchStats">>,
    clock: Clock,
    failures: number,
  ): void {
    const signal = this.#abort.signal;
    let got = false;
    const again = () => {
      if (signal.aborted) return;
      const n = got ? 0 : failures + 1;
      this.#cancelRetry = clock.setTimer(RETRY_MS[Math.min(n, RETRY_MS.length - 1)]!, () =>
        this.#follow(backend, clock, n),
      );
    };
    backend
      .watchStats(this.id, {
        signal,
        onSample: (s) => {
          got = true;
          this.#last = s;
        },
      })
      .then(again, again);
  }

  read(withPeak = true): UsageReading | undefined {
    const s = this.#last;
    if (!s || this.#abort.signal.aborted) return undefined;
    return {
      cpuMs: s.cpuNs / 1e6,
      memPeakMB:
        withPeak && s.maxMemoryBytes !== undefined ? s.maxMemoryBytes / 2 ** 20 : undefined,
    };
  }

  resetPeak(): boolean {
    return false;
  }

  close(): void {
    this.#abort.abort();
    this.#cancelRetry?.();
  }
}
