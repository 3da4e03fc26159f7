/**
 * The owner's CPU first, on this host's real engine: with task_cpu_priority idle (the default) every
 * task runs in a cgroup under the instance's parent of the lowest CPU weight, which the executor made
 * and removes at stop; with normal, under the engine's default. Read from the kernel's own files.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { IDLE_SHARES, IDLE_WEIGHT } from "../../src/platform/docker/cpu-priority.ts";
import { docker } from "../support/docker-env.ts";
import { ECHO_IMAGE } from "../support/fixtures.ts";
import { startExecutor } from "../support/harness.ts";

const small = { cpu: 0.1, mem: 32 };
const cgroups = JSON.parse(
  docker([
    "info",
    "--format",
    '{"driver":{{json .CgroupDriver}},"version":{{json .CgroupVersion}}}',
  ]),
) as { driver: string; version: string };

/** The weight file of a cgroupfs parent on this host. */
const weightFile = (parent: string) =>
  cgroups.version === "2"
    ? [`/sys/fs/cgroup${parent}/cpu.weight`, String(IDLE_WEIGHT)]
    : [`/sys/fs/cgroup/cpu${parent}/cpu.shares`, String(IDLE_SHARES)];

describe.skipIf(cgroups.driver !== "cgroupfs")(
  `task_cpu_priority on this host (cgroup v${cgroups.version}, ${cgroups.driver})`,
  () => {
    it("idle: the task's cgroup is under the instance's parent, which has the lowest weight, is shown on /tasks, and goes at stop", async () => {
      const h = await startExecutor({});
      const parent = `/meca-tasks-${h.instance}`;
      const [file, weight] = weightFile(parent);
      try {
        expect((await h.execute({ id: ECHO_IMAGE, resource: small, input: "x" })).status).toBe(200);
        const [c] = await h.containers();
        const pid = docker(["inspect", "--format", "{{.State.Pid}}", c!.id]).trim();
        expect(docker(["inspect", "--format", "{{.HostConfig.CgroupParent}}", c!.id]).trim()).toBe(
          parent,
        );
        // The kernel's own view of the task's process: its cpu cgroup is a child of the parent.
        const cpuLine = readFileSync(`/proc/${pid}/cgroup`, "utf8")
          .split("\n")
          .find((l) => /(^0::|[:,]cpu[,:])/.test(l))!;
        expect(cpuLine).toContain(`${parent}/`);
        expect(readFileSync(file!, "utf8").trim()).toBe(weight);
        const tasks = (await h.call("GET", "/tasks")).body as Record<string, unknown>;
        expect(tasks.cpu_priority).toMatchObject({
          task_cpu_priority: "idle",
          state: "set",
          parent,
        });
      } finally {
        expect(await h.close()).toEqual([]);
      }
      expect(existsSync(file!.replace(/\/cpu\.(shares|weight)$/, ""))).toBe(false);
      // Nor any other hierarchy's copy, which the engine made as it put the task under it.
      const left = readdirSync("/sys/fs/cgroup").filter((c) =>
        existsSync(`/sys/fs/cgroup/${c}${parent}`),
      );
      expect(left).toEqual([]);
    });

    it("normal: tasks under the engine's default cgroup, no parent made", async () => {
      const h = await startExecutor({ task_cpu_priority: "normal" });
      try {
        expect((await h.execute({ id: ECHO_IMAGE, resource: small, input: "x" })).status).toBe(200);
        const [c] = await h.containers();
        expect(docker(["inspect", "--format", "{{.HostConfig.CgroupParent}}", c!.id]).trim()).toBe(
          "",
        );
        const [file] = weightFile(`/meca-tasks-${h.instance}`);
        expect(existsSync(file!)).toBe(false);
      } finally {
        expect(await h.close()).toEqual([]);
      }
    });
  },
);
