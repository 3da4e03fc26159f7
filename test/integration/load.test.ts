import { readFileSync } from "node:fs";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ECHO_IMAGE } from "../support/fixtures.ts";
import { docker } from "../support/docker-env.ts";
import { until } from "../support/harness.ts";
import { spawnExecutor } from "../support/process.ts";
import { scratchDir } from "../support/scratch.ts";

/** RSS in MB of the executor process. */
function rssMB(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
  return Math.round(kb / 102.4) / 10;
}

describe("load", () => {
  it("32 clients, 8 keys, room for 3 tasks: every request succeeds or gets 503 with Retry-After, nothing leaks", async () => {
    const instance = `load-${process.pid}`;
    const dir = scratchDir("meca-load-");
    // Room for exactly three 0.1-core tasks; idle tasks go after 3 s.
    writeFileSync(
      join(dir, "c.yaml"),
      `instance: ${instance}\nfailure_status: http\ncpu: 0.3\nmem: 96\nqueue_timeout: 2\ntimeout: 0.05\n`,
    );
    const ex = await spawnExecutor(["--config", join(dir, "c.yaml"), "--log-level", "warn"]);
    try {
      const rssBefore = rssMB(ex.child.pid!);
      const clients = 32;
      const perClient = 10; // 320 requests
      let ok = 0;
      let refused = 0;
      const bad: string[] = [];
      // While the load runs, the tasks holding reservations never hold more than the capacity
      // (a removed task's container may outlive its reservation for a moment, so containers are
      // counted once the executor has settled, below).
      const overCapacity: string[] = [];
      let loading = true;
      const watching = (async () => {
        while (loading) {
          const { tasks } = (await ex.get("/tasks")).body as {
            tasks: { reservation: { cpu: number } | null }[];
          };
          const reserved = tasks.filter((t) => t.reservation !== null);
          const cpu = reserved.reduce((sum, t) => sum + t.reservation!.cpu, 0);
          if (reserved.length > 3 || cpu > 0.3 + 1e-9)
            overCapacity.push(`${reserved.length} tasks, ${cpu} cores`);
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      await Promise.all(
        Array.from({ length: clients }, async (_, c) => {
          for (let i = 0; i < perClient; i++) {
            const key = (c + i) % 8;
            const input = `client ${c} request ${i}`;
            const res = await fetch(`${ex.base}/`, {
              method: "POST",
              body: JSON.stringify({
                id: ECHO_IMAGE,
                resource: { cpu: 0.1, mem: 24 + key },
                input,
              }),
            });
            const body = (await res.json()) as { success: boolean; msg: string; error?: string };
            if (res.status === 200 && body.msg === input) ok++;
            else if (res.status === 503 && res.headers.get("retry-after")) refused++;
            else bad.push(`${res.status} ${JSON.stringify(body)}`);
          }
        }),
      );
      loading = false;
      await watching;
      const rssAfter = rssMB(ex.child.pid!);
      console.log(
        `load: ${ok} ok, ${refused} refused (503), ${bad.length} bad; executor RSS ${rssBefore} MB before, ${rssAfter} MB after`,
      );
      expect(bad).toEqual([]);
      expect(ok + refused).toBe(clients * perClient);
      expect(ok).toBeGreaterThan(0);
      expect(overCapacity).toEqual([]);

      const running = () =>
        docker(["ps", "-aq", "--filter", `label=meca.executor.instance=${instance}`])
          .split("\n")
          .filter(Boolean).length;
      // Settled: every container left is one of the warm tasks (removals done), and there are at most 3.
      await until(
        async () => running() === (await ex.get("/tasks")).body.tasks.length,
        "removals to finish",
        30_000,
      );
      expect(running()).toBeLessThanOrEqual(3);
      // After the idle timeout every task is gone and the ledger is back to zero.
      await until(async () => running() === 0, "idle tasks removed", 30_000);
      await until(
        async () => (await ex.get("/stats")).body.task_used_cpu === 0,
        "ledger at zero",
        10_000,
      );
      const stats = (await ex.get("/stats")).body;
      expect(stats).toMatchObject({ task_used_cpu: 0, task_used_mem: 0, tasks: 0, queued: 0 });
    } finally {
      ex.child.kill("SIGTERM");
      await ex.exited;
    }
  }, 150_000);
});
