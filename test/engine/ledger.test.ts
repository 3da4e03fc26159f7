import { describe, expect, it } from "vitest";
import { Ledger } from "../../src/engine/ledger.ts";

describe("Ledger", () => {
  it("reserves in integer tenths and MB and refuses what does not fit", () => {
    const l = new Ledger({ cpuTenths: 20, memMB: 1000, gpus: [] });
    const a = l.tryReserve({ cpuTenths: 15, memMB: 500, gpuCount: 0 });
    expect(a).toBeDefined();
    expect(l.tryReserve({ cpuTenths: 6, memMB: 100, gpuCount: 0 })).toBeUndefined();
    expect(l.shortage({ cpuTenths: 6, memMB: 600, gpuCount: 0 })).toEqual({
      cpuTenths: 1,
      memMB: 100,
      gpuCount: 0,
    });
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

describe("Ledger bookkeeping", () => {
  it("reserves exactly the GPUs asked for (an adopted task's), only when each is free, and never one twice", () => {
    const l = new Ledger({ cpuTenths: 80, memMB: 8000, gpus: [0, 1, 2, 3] });
    const one = { cpuTenths: 1, memMB: 1, gpuCount: 1 };
    expect(l.tryReserve(one, [2])?.gpus).toEqual([2]);
    expect(l.tryReserve(one, [2])).toBeUndefined(); // held
    expect(l.tryReserve(one, [7])).toBeUndefined(); // not in the capacity
    l.markBusyGpus([3]);
    expect(l.tryReserve(one, [3])).toBeUndefined(); // busy with other work
    expect(l.tryReserve({ ...one, gpuCount: 2 }, [1])).toBeUndefined(); // fewer than the spec's
    expect(l.tryReserve({ ...one, gpuCount: 2 }, [1, 1])).toBeUndefined(); // one twice
    expect(l.tryReserve({ ...one, gpuCount: 2 }, [1, 0])?.gpus).toEqual([1, 0]);
    expect(l.used().gpus).toEqual([0, 1, 2]);
    expect(l.tryReserve({ cpuTenths: 1, memMB: 1, gpuCount: 0 }, [])?.gpus).toEqual([]);
  });

  it("free is the capacity less what is reserved, and goes back on release", () => {
    const l = new Ledger({ cpuTenths: 20, memMB: 1000, gpus: [0, 1] });
    expect(l.free()).toEqual({ cpuTenths: 20, memMB: 1000, gpuCount: 2 });
    const a = l.tryReserve({ cpuTenths: 3, memMB: 100, gpuCount: 1 })!;
    const b = l.tryReserve({ cpuTenths: 4, memMB: 200, gpuCount: 0 })!;
    expect(l.free()).toEqual({ cpuTenths: 13, memMB: 700, gpuCount: 1 });
    expect(l.used()).toEqual({ cpuTenths: 7, memMB: 300, gpus: [0] });
    expect(l.reservations).toBe(2);
    expect(a.id).not.toBe(b.id);
    l.release(a);
    expect(l.free()).toEqual({ cpuTenths: 16, memMB: 800, gpuCount: 2 });
    expect(l.reservations).toBe(1);
    l.release(b);
    expect([l.free(), l.reservations]).toEqual([{ cpuTenths: 20, memMB: 1000, gpuCount: 2 }, 0]);
  });

  it("takes exactly what is free, in every dimension, and nothing more", () => {
    const l = new Ledger({ cpuTenths: 20, memMB: 1000, gpus: [0] });
    expect(l.shortage({ cpuTenths: 20, memMB: 1000, gpuCount: 1 })).toBeUndefined();
    expect(l.shortage({ cpuTenths: 21, memMB: 1000, gpuCount: 1 })).toEqual({
      cpuTenths: 1,
      memMB: 0,
      gpuCount: 0,
    });
    expect(l.shortage({ cpuTenths: 20, memMB: 1001, gpuCount: 1 })).toEqual({
      cpuTenths: 0,
      memMB: 1,
      gpuCount: 0,
    });
    expect(l.shortage({ cpuTenths: 20, memMB: 1000, gpuCount: 2 })).toEqual({
      cpuTenths: 0,
      memMB: 0,
      gpuCount: 1,
    });
    expect(l.tryReserve({ cpuTenths: 20, memMB: 1001, gpuCount: 0 })).toBeUndefined();
    expect(l.tryReserve({ cpuTenths: 1, memMB: 1, gpuCount: 2 })).toBeUndefined();
    expect(l.reservations).toBe(0);
    const all = l.tryReserve({ cpuTenths: 20, memMB: 1000, gpuCount: 1 });
    expect(all).toEqual({ id: expect.any(Number), cpuTenths: 20, memMB: 1000, gpus: [0] });
    expect(l.free()).toEqual({ cpuTenths: 0, memMB: 0, gpuCount: 0 });
  });

  it("lists held GPUs in order, whatever the order of the capacity", () => {
    const l = new Ledger({ cpuTenths: 20, memMB: 1000, gpus: [3, 1, 2, 0] });
    l.tryReserve({ cpuTenths: 1, memMB: 1, gpuCount: 3 });
    expect(l.used().gpus).toEqual([1, 2, 3]);
    expect(l.freeGpus()).toEqual([0]);
  });

  it("a new capacity applies to what comes next; reservations held stay", () => {
    const l = new Ledger({ cpuTenths: 20, memMB: 1000, gpus: [] });
    l.tryReserve({ cpuTenths: 10, memMB: 500, gpuCount: 0 });
    l.setCapacity({ cpuTenths: 5, memMB: 1000, gpus: [] });
    expect(l.capacity).toEqual({ cpuTenths: 5, memMB: 1000, gpus: [] });
    expect(l.free()).toEqual({ cpuTenths: -5, memMB: 500, gpuCount: 0 });
    expect(l.tryReserve({ cpuTenths: 1, memMB: 1, gpuCount: 0 })).toBeUndefined();
    expect(l.used()).toMatchObject({ cpuTenths: 10, memMB: 500 });
  });

  it("busy GPUs are judged afresh at each sample", () => {
    const l = new Ledger({ cpuTenths: 20, memMB: 1000, gpus: [0, 1] });
    l.markBusyGpus([0, 1]);
    expect(l.freeGpus()).toEqual([]);
    l.markBusyGpus([1]);
    expect(l.freeGpus()).toEqual([0]);
    l.markBusyGpus([]);
    expect(l.freeGpus()).toEqual([0, 1]);
  });
});
