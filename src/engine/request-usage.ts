/**
 * One request's use of the host, in the units its names say (usage.ts); in a module of its own so
 * that errors.ts and recent.ts can carry it.
 */
export interface RequestUsage {
  /** CPU time of the task's container during the request, ms; null where it could not be read. */
  cpuMs: number | null;
  /** The container's peak memory, MB: during the request, or since the task started (`memPeakSinceStart`). */
  memPeakMB: number | null;
  memPeakSinceStart: boolean;
  /** From the request reaching the task to its answer, ms. */
  wallMs: number;
  /** Waiting for capacity or a slot, not counting a start it caused, ms. */
  queueMs: number;
  /** The start this request caused (pull, create, ready), ms; 0 when it found a ready task. */
  startMs: number;
  /** GPUs held × wall, ms. */
  gpuMs: number;
  /** Bytes of input sent to the task, and of its answer. */
  inBytes: number;
  outBytes: number;
  /**
   * false when other requests overlapped it in the same container (CPU is then shared among them),
   * or when its figures are the runtime's samples rather than its own (TaskMeter.sampled).
   */
  exact: boolean;
}
