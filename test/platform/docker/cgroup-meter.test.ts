import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { containerCgroup, openMeter } from "../../../src/platform/docker/cgroup-meter.ts";
import { scratchDir } from "../../support/scratch.ts";

const id = "abc123";

function files(root: string, entries: Record<string, string>) {
  for (const [path, text] of Object.entries(entries)) {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), text);
  }
}

describe("a task's meter from its cgroup", () => {
  it("finds the container's cgroup by driver, version and parent", () => {
    const l = { root: "/cg", parent: "" };
    expect(containerCgroup(id, { ...l, driver: "cgroupfs", version: "1" }, "memory")).toBe(
      "/cg/memory/docker/abc123",
    );
    expect(
      containerCgroup(id, { ...l, driver: "cgroupfs", version: "1", parent: "/meca-tasks-x" }),
    ).toBe("/cg/cpuacct/meca-tasks-x/abc123");
    expect(containerCgroup(id, { ...l, driver: "cgroupfs", version: "2" })).toBe(
      "/cg/docker/abc123",
    );
    expect(containerCgroup(id, { ...l, driver: "systemd", version: "2" })).toBe(
      "/cg/system.slice/docker-abc123.scope",
    );
    expect(
      containerCgroup(id, { ...l, driver: "systemd", version: "1", parent: "m.slice" }, "memory"),
    ).toBe("/cg/memory/m.slice/docker-abc123.scope");
  });

  it("cgroup v1: CPU from cpuacct.usage (ns), the peak from memory.max_usage_in_bytes, which it resets", () => {
    const root = scratchDir("meca-meter-v1-");
    files(root, {
      [`cpuacct/docker/${id}/cpuacct.usage`]: "412500000\n",
      [`memory/docker/${id}/memory.max_usage_in_bytes`]: `${64 * 2 ** 20}\n`,
    });
    const m = openMeter(id, { root, driver: "cgroupfs", version: "1", parent: "" })!;
    expect(m.source).toBe("cgroup v1");
    expect(m.peakResettable).toBe(true);
    expect(m.read()).toEqual({ cpuMs: 412.5, memPeakMB: 64 });
    writeFileSync(join(root, `cpuacct/docker/${id}/cpuacct.usage`), "500000000\n");
    expect(m.read()!.cpuMs).toBe(500); // each reading is fresh
    expect(m.resetPeak()).toBe(true);
    expect(
      readFileSync(join(root, `memory/docker/${id}/memory.max_usage_in_bytes`), "utf8")[0],
    ).toBe("0");
    m.close();
    expect(m.read()).toBeUndefined();
  });

  it("cgroup v2: CPU from cpu.stat's usage_usec, the peak from memory.peak (since start: no reset)", () => {
    const root = scratchDir("meca-meter-v2-");
    files(root, {
      [`system.slice/docker-${id}.scope/cpu.stat`]: "usage_usec 61200\nuser_usec 60000\n",
      [`system.slice/docker-${id}.scope/memory.peak`]: `${32 * 2 ** 20}\n`,
    });
    const m = openMeter(id, { root, driver: "systemd", version: "2", parent: "" })!;
    expect(m.read()).toEqual({ cpuMs: 61.2, memPeakMB: 32 });
    expect(m.peakResettable).toBe(false);
    expect(m.resetPeak()).toBe(false);
    m.close();
  });

  it("is undefined where the cgroup cannot be seen, and a reading whose peak file is gone still gives the CPU", () => {
    const root = scratchDir("meca-meter-none-");
    expect(openMeter(id, { root, driver: "cgroupfs", version: "1", parent: "" })).toBeUndefined();
    files(root, { [`docker/${id}/cpu.stat`]: "usage_usec 1000\n" });
    const m = openMeter(id, { root, driver: "cgroupfs", version: "2", parent: "" })!;
    expect(m.read()).toEqual({ cpuMs: 1, memPeakMB: undefined });
    rmSync(join(root, `docker/${id}`), { recursive: true });
    m.close();
  });
});
