/**
 * Samples NVML in the background and tells the ledger which GPUs other
 * work keeps busy (utilisation or memory use above the idle threshold).
 */
import type { Ledger } from "./ledger.ts";
import type { Clock, GpuDevice, GpuProbe, Logger } from "./ports.ts";
import type { EngineSettings } from "./settings.ts";

export interface GpuMonitorDeps {
  ledger: Ledger;
  clock: Clock;
  logger: Logger;
  settings: () => EngineSettings;
  /** Runs the line again: a GPU that other work left may now be free. */
  freed?: () => void;
}

export class GpuMonitor {
  #d: GpuMonitorDeps;
  #log: Logger;
  #probe?: GpuProbe;
  #devices: GpuDevice[] = [];
  #cancel?: () => void;
  /** Why NVML is not in use although has_gpu is set; undefined when fine. */
  loadError?: string;

  constructor(deps: GpuMonitorDeps) {
    this.#d = deps;
    this.#log = deps.logger.child({ component: "gpu" });
  }

  get devices(): readonly GpuDevice[] {
    return this.#devices;
  }

  get model(): string {
    return this.#devices[0]?.model ?? "";
  }

  get indexes(): number[] {
    return this.#devices.map((d) => d.index);
  }

  /** The indexes of the devices with these UUIDs (or index strings); undefined when one is not a device here. */
  indexesOf(uuids: readonly string[]): number[] | undefined {
    const out: number[] = [];
    for (const u of uuids) {
      const d = this.#devices.find((x) => x.uuid === u || String(x.index) === u);
      if (!d) return undefined;
      out.push(d.index);
    }
    return out;
  }

  /** The UUIDs of the devices at `indexes`, as NVML last reported them (the index when unknown). */
  uuids(indexes: readonly number[]): string[] {
    return indexes.map((i) => this.#devices.find((d) => d.index === i)?.uuid ?? String(i));
  }

  /** Loads NVML and samples once; on failure the host counts 0 GPUs and the reason is logged. */
  async enable(load?: () => Promise<GpuProbe>): Promise<void> {
    this.disable();
    try {
      if (!load) throw new Error("no NVML loader is available on this platform");
      this.#probe = await load();
      await this.#sample();
      this.loadError = undefined;
      this.#log.info("GPUs found", { count: this.#devices.length, model: this.model });
      this.#schedule();
    } catch (e) {
      this.loadError = (e as Error).message;
      this.#probe?.close();
      this.#probe = undefined;
      this.#devices = [];
      this.#log.warn(
        "has_gpu is set but NVML cannot be used, so this host counts 0 GPUs; install the NVIDIA driver (libnvidia-ml.so.1) or set nvml_library",
        { error: this.loadError },
      );
    }
  }

  disable(): void {
    this.#cancel?.();
    this.#cancel = undefined;
    this.#probe?.close();
    this.#probe = undefined;
    this.#devices = [];
  }

  async #sample(): Promise<void> {
    if (!this.#probe) return;
    this.#devices = await this.#probe.sample();
    const limit = this.#d.settings().gpuIdlePercent;
    const busy = this.#devices.filter(
      (d) =>
        d.utilizationPercent > limit ||
        (d.memoryTotalMB > 0 && (d.memoryUsedMB / d.memoryTotalMB) * 100 > limit),
    );
    this.#d.ledger.markBusyGpus(busy.map((d) => d.index));
  }

  #schedule(): void {
    this.#cancel = this.#d.clock.setTimer(this.#d.settings().gpuSampleIntervalMs, () => {
      this.#sample()
        .catch((e) => this.#log.warn("Cannot sample GPUs", { error: (e as Error).message }))
        .finally(() => {
          this.#d.freed?.();
          if (this.#probe) this.#schedule();
        });
    });
  }
}
