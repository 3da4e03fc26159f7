import { describe, expect, it } from "vitest";
import { SystemHostProbe } from "../../src/platform/host.ts";

describe("SystemHostProbe", () => {
  it("reports this host's cores and memory", async () => {
    const probe = new SystemHostProbe();
    const cores = await probe.cores();
    expect(Number.isInteger(cores)).toBe(true);
    expect(cores).toBeGreaterThanOrEqual(1);
    const memoryMB = await probe.memoryMB();
    expect(Number.isInteger(memoryMB)).toBe(true);
    expect(memoryMB).toBeGreaterThan(0);
  });

  it("usage() reports CPU and memory use in percent", async () => {
    const { cpuPercent, memPercent } = await new SystemHostProbe().usage();
    for (const value of [cpuPercent, memPercent]) {
      expect(value).toBeGreaterThanOrEqual(0);
      expect(value).toBeLessThanOrEqual(100);
    }
    expect(memPercent).toBeGreaterThan(0);
  });

  it("usage() reuses one reading within the cache period", async () => {
    let now = 0;
    const probe = new SystemHostProbe({ cacheMs: 1000, now: () => now });
    const first = probe.usage();
    now = 999;
    expect(probe.usage()).toBe(first);
    now = 1000;
    const second = probe.usage();
    expect(second).not.toBe(first);
    await Promise.all([first, second]);
  });
});
