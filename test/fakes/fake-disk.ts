/** DiskProbe in memory: a test sets each container's layer size and the free space. */
import type { DiskProbe } from "../../src/engine/ports.ts";

export class FakeDisk implements DiskProbe {
  /** Bytes in each container's writable layer; a container not here reads as undefined. */
  readonly layers = new Map<string, number>();
  /** Free MB on the engine's data root; undefined: the executor cannot see it. */
  free: number | undefined = 100_000;
  /** How many layer readings were made. */
  reads = 0;
  /** Whether the engine holds the bound (then the executor does not measure). */
  engine = false;

  enforcedByEngine(): boolean {
    return this.engine;
  }

  async layerBytes(containerId: string): Promise<number | undefined> {
    this.reads++;
    return this.layers.get(containerId);
  }

  async freeMB(): Promise<number | undefined> {
    return this.free;
  }
}
