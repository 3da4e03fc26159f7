import { describe, expect, it } from "vitest";
import { Ledger } from "../../src/engine/ledger.ts";

describe("Ledger", () => {
  it("reserves in integer tenths and MB and refuses what does not fit", () => {
    const l = new Ledger({ cpuTenths: 20, memMB: 1000, gpus: [] });
    const a = l.tryReserve({ cpuTenths: 15, memMB: 500, gpuCount: 0 });
    expect(a).toBeDefined();
    expect(l.tryReserve({ cpuTenths: 6, memMB: 100, gpuCount: 0 })).toBeUndefined();
    expect(l.shortage({ cpuTenths: 6, memMB: 600, gpuCount: 0 })).toEqual({ cpuTenths: 1, memMB: 100, gpuCount: 0 });
    l.release(a!);
    l.release(a!); // twice is harmless
    expect(l.used()).toEqual({ cpuTenths: 0, memMB: 0, gpus: [] });
  });

  it("hands out whole GPUs that nobody holds and that are not busy", () => {
    const l = new Ledger({ cpuTenths: 80, memMB: 8000, gpus: [0, 1, 2] });
    l.markBusyGpus([1]);
    const a = l.tryReserve({ cpuTenths: 1, memMB: 1, gpuCount: 2 });
    expect(a?.gpus).toEqual([0, 2]);
    expect(l.tryReserve({ cpuTenths: 1, memMB: 1, gpuCount: 1 })).toBeUndefined();
    // A GPU we hold is busy because of us: a sample taken while held does not mark it.
    l.markBusyGpus([0, 2]);
    l.release(a!);
    expect(l.freeGpus()).toEqual([0, 1, 2]);
  });
});
