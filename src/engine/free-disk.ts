/** The engine's free disk before a start: min_free_disk_mb (docs/architecture.md, "The host's own resources"). */
import { DiskLowError } from "./errors.ts";
import type { EngineMetrics } from "./metrics.ts";
import type { DiskProbe } from "./ports.ts";

/** Refuses a start while the engine's data root is short of free space (an unreadable one is no refusal). */
export async function checkFreeDisk(
  disk: DiskProbe | undefined,
  minMB: number,
  metrics: EngineMetrics | undefined,
): Promise<void> {
  if (minMB <= 0 || !disk) return;
  const free = await disk.freeMB();
  if (free === undefined || free >= minMB) return;
  metrics?.diskLow.inc();
  throw new DiskLowError(free, minMB);
}
