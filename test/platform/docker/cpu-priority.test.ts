import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parentName, setupTaskParent } from "../../../src/platform/docker/cpu-priority.ts";
import { memoryLogger } from "../../fakes/fake-logger.ts";
import { scratchDir } from "../../support/scratch.ts";

const base = { instance: "inst-1", inContainer: false, logger: memoryLogger() };

describe("the tasks' parent cgroup (task_cpu_priority)", () => {
  it("cgroup v1, cgroupfs: a folder of the cpu hierarchy with cpu.shares 2, removed from every hierarchy at stop", async () => {
    const root = scratchDir("meca-cgroup-v1-");
    for (const c of ["cpu", "memory", "pids", "systemd", "unified"]) mkdirSync(join(root, c));
    const p = await setupTaskParent({
      ...base,
      priority: "idle",
      driver: "cgroupfs",
      version: "1",
      root,
    });
    expect(p.status).toMatchObject({
      task_cpu_priority: "idle",
      state: "set",
      parent: "/meca-tasks-inst-1",
    });
    expect(readFileSync(join(root, "cpu/meca-tasks-inst-1/cpu.shares"), "utf8")).toBe("2");
    // The engine makes the parent's copies in the other hierarchies as it puts tasks under it.
    // In a hybrid layout that includes systemd's named hierarchy and the unified tree.
    for (const c of ["memory", "systemd", "unified"]) mkdirSync(join(root, c, "meca-tasks-inst-1"));
    // On the cgroup filesystem a cgroup's files go with its folder (rmdir); here they are plain files.
    rmSync(join(root, "cpu/meca-tasks-inst-1/cpu.shares"));
    await p.remove();
    for (const c of ["cpu", "memory", "systemd", "unified"])
      expect(existsSync(join(root, c, "meca-tasks-inst-1"))).toBe(false);
  });

  it("cgroup v2, cgroupfs: a folder with cpu.weight 1, the cpu controller on for the root's children", async () => {
    const root = scratchDir("meca-cgroup-v2-");
    writeFileSync(join(root, "cgroup.subtree_control"), "");
    const p = await setupTaskParent({
      ...base,
      priority: "idle",
      driver: "cgroupfs",
      version: "2",
      root,
    });
    expect(p.status).toMatchObject({ state: "set", parent: "/meca-tasks-inst-1" });
    expect(readFileSync(join(root, "meca-tasks-inst-1/cpu.weight"), "utf8")).toBe("1");
    expect(readFileSync(join(root, "cgroup.subtree_control"), "utf8")).toBe("+cpu");
    rmSync(join(root, "meca-tasks-inst-1/cpu.weight"));
    await p.remove();
    expect(existsSync(join(root, "meca-tasks-inst-1"))).toBe(false);
  });

  it("systemd: a slice of its own at the top (no '-' in its name), its weight set by systemctl at runtime", async () => {
    expect(parentName("inst-1", "systemd")).toBe("meca_tasks_inst_1.slice");
    const calls: string[][] = [];
    const run = async (cmd: string, args: string[]) => void calls.push([cmd, ...args]);
    for (const [version, property] of [
      ["2", "CPUWeight=1"],
      ["1", "CPUShares=2"],
    ]) {
      calls.length = 0;
      const p = await setupTaskParent({
        ...base,
        priority: "idle",
        driver: "systemd",
        version,
        run,
      });
      expect(p.status).toMatchObject({ state: "set", parent: "meca_tasks_inst_1.slice" });
      expect(calls).toEqual([
        ["systemctl", "set-property", "--runtime", "meca_tasks_inst_1.slice", property],
      ]);
    }
    const broken = await setupTaskParent({
      ...base,
      priority: "idle",
      driver: "systemd",
      version: "2",
      run: async () => {
        throw new Error("Failed to connect to bus");
      },
    });
    expect(broken.status).toMatchObject({
      state: "failed",
      command: "systemctl set-property --runtime meca_tasks_inst_1.slice CPUWeight=1",
    });
    expect(broken.status.detail).toContain("Failed to connect to bus");
  });

  it("in a container: tasks still go under the parent, and the operator gets the one command that sets its weight", async () => {
    const p = await setupTaskParent({
      ...base,
      inContainer: true,
      priority: "idle",
      driver: "cgroupfs",
      version: "1",
      root: "/nowhere",
    });
    expect(p.status).toEqual({
      task_cpu_priority: "idle",
      state: "unknown",
      parent: "/meca-tasks-inst-1",
      detail: expect.stringContaining("run the command once as root on the host"),
      command:
        "mkdir -p /nowhere/cpu/meca-tasks-inst-1 && echo 2 > /nowhere/cpu/meca-tasks-inst-1/cpu.shares",
    });
  });

  it("normal: no parent, tasks at the engine's default weight; a parent that cannot be made is said, with the command", async () => {
    const normal = await setupTaskParent({
      ...base,
      priority: "normal",
      driver: "cgroupfs",
      version: "1",
    });
    expect(normal.status).toMatchObject({
      task_cpu_priority: "normal",
      state: "normal",
      parent: "",
    });
    const root = scratchDir("meca-cgroup-ro-");
    writeFileSync(join(root, "cpu"), "a file, not a hierarchy");
    const failed = await setupTaskParent({
      ...base,
      priority: "idle",
      driver: "cgroupfs",
      version: "1",
      root,
    });
    expect(failed.status).toMatchObject({ state: "failed", parent: "/meca-tasks-inst-1" });
    expect(failed.status.command).toBe(
      `mkdir -p ${root}/cpu/meca-tasks-inst-1 && echo 2 > ${root}/cpu/meca-tasks-inst-1/cpu.shares`,
    );
  });
});
