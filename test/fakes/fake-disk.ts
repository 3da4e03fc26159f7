/** DiskProbe in memory: a test sets each container's layer size and the free space. */
import type { DiskProbe, LayerReading } from "../../src/engine/ports.ts";

export class FakeDisk implements DiskProbe {
  /** Bytes in each container's writable layer; a container not here reads as undefined. */
  readonly layers = new Map<string, number>();
  /** Free MB on the engine's data root; undefined: the executor cannot see it. */
  free: number | undefined = 100_000;
  /** How many layer readings were made, in all and by container. */
  reads = 0;
  readonly readsOf = new Map<string, number>();
  /** A container's reading waits for this promise: a layer that takes long to walk. */
  readonly hold = new Map<string, Promise<void>>();
  /** The work each container's reading reports (ms; default 0). */
  readonly costs = new Map<string, number>();
  /** The `stopAbove` each reading was given. */
  readonly stops: (number | undefined)[] = [];
  /** Whether the engine holds the bound (then the executor does not measure). */
  engine = false;

  enforcedByEngine(): boolean {
    return this.engine;
  }

  async layerBytes(
    containerId: string,
    opts?: { stopAbove?: number },
  ): Promise<LayerReading | undefined> {
    this.reads++;
    this.readsOf.set(containerId, (this.readsOf.get(containerId) ?? 0) + 1);
    this.stops.push(opts?.stopAbove);
    await this.hold.get(containerId);
    const bytes = this.layers.get(containerId);
    return bytes === undefined ? undefined : { bytes, workMs: this.costs.get(containerId) ?? 0 };
  }

  async freeMB(): Promise<number | undefined> {
    return this.free;
  }
}
