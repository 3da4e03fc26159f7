import { afterEach, describe, expect, it } from "vitest";
import { LABELS } from "../../src/engine/settings.ts";
import { ECHO_IMAGE, taskBody } from "../support/fixtures.ts";
import { docker } from "../support/docker-env.ts";
import { startExecutor, until, type Harness } from "../support/harness.ts";

const small = { cpu: 0.1, mem: 32 };
let h: Harness | undefined;
afterEach(async () => {
  if (h) expect(await h.close()).toEqual([]);
  h = undefined;
});

describe("task lifecycle on the real engine", () => {
  it("removes tasks idle longer than the timeout (fractions of a minute)", async () => {
    h = await startExecutor({ timeout: 0.02 }); // 1.2 s
    await h.execute({ id: ECHO_IMAGE, resource: small, input: "x" });
    expect(await h.containers()).toHaveLength(1);
    await until(async () => (await h!.containers()).length === 0, "idle task removed");
    expect(h.executor.tasks()).toEqual([]);
    expect(h.executor.ledger.used()).toEqual({ cpuTenths: 0, memMB: 0, gpus: [] });
    expect(h.logger.records.some((l) => l.msg === "Removing idle task")).toBe(true);
  });

  it("applies update-config while running, saying what changed; pauses: refuses executions, removes every task, accepts update-config, unpauses", async () => {
    h = await startExecutor({ cpu: 1, mem: 512 });
    await h.execute({ id: ECHO_IMAGE, resource: small, input: "x" });
    const live = await h.call("POST", "/update-config", { mem: 256 });
    expect(live.status).toBe(200);
    expect(live.body.changed).toEqual({ mem: { from: 512, to: 256 } });
    expect((await h.call("GET", "/stats")).body.task_mem).toBe(256);
    expect((await h.execute({ id: ECHO_IMAGE, resource: small, input: "still warm" })).body.msg).toBe("still warm");
    expect(await h.containers()).toHaveLength(1);

    expect((await h.call("POST", "/pause")).status).toBe(200);
    expect(await h.containers()).toEqual([]);
    expect(h.executor.ledger.used()).toEqual({ cpuTenths: 0, memMB: 0, gpus: [] });
    const refused = await h.execute({ id: ECHO_IMAGE, resource: small, input: "x" });
    expect(refused.status).toBe(503);
    expect(refused.body.error).toBe("PAUSED");
    expect(refused.headers.get("retry-after")).toBeTruthy();
    expect((await h.call("GET", "/stats")).body.paused).toBe(true);

    const bad = await h.call("POST", "/update-config", { cpu: 0.25 });
    expect(bad.status).toBe(400);
    expect(bad.body.msg).toContain('"cpu"');
    const upd = await h.call("POST", "/update-config", { cpu: 2, mem: 1024, timeout: 0.5, microVM_runtime: "runsc" });
    expect(upd.status).toBe(200);
    const stats = (await h.call("GET", "/stats")).body;
    expect(stats.task_cpu).toBe(Math.min(2, stats.total_cpu));
    expect(stats.task_mem).toBe(1024);

    expect((await h.call("POST", "/unpause")).status).toBe(200);
    expect((await h.execute({ id: ECHO_IMAGE, resource: small, input: "again" })).body.msg).toBe("again");
  });

  it("with task_concurrency 1, concurrent requests for one key run in their own replicas", async () => {
    h = await startExecutor({ task_concurrency: 1 });
    const both = await Promise.all([1, 2].map(() => h!.execute({ id: ECHO_IMAGE, resource: small, input: taskBody.sleep(300) })));
    expect(both.map((r) => r.body.msg)).toEqual(["slept:300", "slept:300"]);
    expect(await h.containers()).toHaveLength(2);
    expect(new Set(h.executor.tasks().map((t) => t.key_hash)).size).toBe(1);
  });

  it("lets in-flight requests finish when pausing", async () => {
    h = await startExecutor();
    await h.execute({ id: ECHO_IMAGE, resource: small, input: "warm" });
    const slow = h.execute({ id: ECHO_IMAGE, resource: small, input: taskBody.sleep(500) });
    await until(() => h!.executor.tasks().some((t) => t.in_flight === 1), "request in flight");
    const paused = h.call("POST", "/pause");
    expect((await slow).body).toEqual({ success: true, msg: "slept:500" });
    expect((await paused).status).toBe(200);
    expect(await h.containers()).toEqual([]);
  });

  it("removes containers an earlier executor of the same instance left behind", async () => {
    const first = await startExecutor();
    await first.execute({ id: ECHO_IMAGE, resource: small, input: "x" });
    const [left] = await first.containers();
    // Simulate a crash: the executor goes away without cleaning up.
    const instance = first.instance;
    h = await startExecutor({ instance });
    await until(async () => !(await h!.containers()).some((c) => c.id === left!.id), "leftover removed");
    expect(docker(["ps", "-a", "--format", "{{.ID}} {{.Names}} {{.Status}}", "--filter", `label=${LABELS.instance}=${instance}`]).trim()).toBe("");
    await first.close();
  });

  it("answers /health and /stats with the original fields", async () => {
    h = await startExecutor({ cpu: 1, mem: 256 });
    expect((await h.call("GET", "/health")).body).toEqual({ status: "ok" });
    await h.execute({ id: ECHO_IMAGE, resource: { cpu: 0.5, mem: 64 }, input: "x" });
    const s = (await h.call("GET", "/stats")).body;
    for (const k of ["total_cpu", "total_mem", "used_cpu", "used_mem", "task_cpu", "task_mem", "task_used_cpu", "task_used_mem", "gpu_model", "task_gpu", "task_used_gpu"]) {
      expect(s).toHaveProperty(k);
    }
    expect(s).toMatchObject({ task_cpu: 1, task_mem: 256, task_used_cpu: 50, task_used_mem: 25, task_gpu: 0, task_used_gpu: 0 });
    const tasks = (await h.call("GET", "/tasks")).body.tasks;
    expect(tasks[0]).toMatchObject({ image: ECHO_IMAGE, cpu: 0.5, mem: 64, state: "ready", in_flight: 0, served: 1 });
  });
});
