import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LABELS } from "../../src/platform/docker/labels.ts";
import { ECHO_IMAGE, releaseHeld, taskBody } from "../support/fixtures.ts";
import { docker, taskUrl } from "../support/docker-env.ts";
import { containerEvents, engineNow } from "../support/docker-events.ts";
import { startExecutor, until, type Harness } from "../support/harness.ts";
import { spawnExecutor } from "../support/process.ts";

const small = { cpu: 0.1, mem: 32 };
let h: Harness | undefined;
afterEach(async () => {
  if (h) expect(await h.close()).toEqual([]);
  h = undefined;
});

describe("task lifecycle on the real engine", () => {
  it("removes tasks idle longer than the timeout (fractions of a minute)", async () => {
    h = await startExecutor({ timeout: 0.02 }); // 1.2 s
    const since = engineNow();
    // The task's hostname is its container's short id: which container served, without racing its removal.
    const served = await h.execute({ id: ECHO_IMAGE, resource: small, input: taskBody.whoami });
    expect(served.status).toBe(200);
    await until(async () => (await h!.containers()).length === 0, "idle task removed");
    expect(h.executor.tasks()).toEqual([]);
    expect(h.executor.ledger.used()).toEqual({ cpuTenths: 0, memMB: 0, gpus: [] });
    expect(h.logger.records.some((l) => l.msg === "Removing idle task")).toBe(true);
    const events = containerEvents({ since, labels: { [LABELS.instance]: h.instance } });
    const created = events.filter((e) => e.action === "create");
    expect(created).toHaveLength(1);
    expect(created[0]!.id.startsWith(served.body.msg)).toBe(true);
    expect(events.some((e) => e.action === "destroy" && e.id === created[0]!.id)).toBe(true);
  });

  it("applies update-config while running, saying what changed; pauses: refuses executions, removes every task, accepts update-config, unpauses", async () => {
    h = await startExecutor({ cpu: 1, mem: 512 });
    await h.execute({ id: ECHO_IMAGE, resource: small, input: "x" });
    const live = await h.call("POST", "/update-config", { mem: 256 });
    expect(live.status).toBe(200);
    expect(live.body.changed).toEqual({ mem: { from: 512, to: 256 } });
    expect((await h.call("GET", "/stats")).body.task_mem).toBe(256);
    expect(
      (await h.execute({ id: ECHO_IMAGE, resource: small, input: "still warm" })).body.msg,
    ).toBe("still warm");
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
    const upd = await h.call("POST", "/update-config", {
      cpu: 2,
      mem: 1024,
      timeout: 0.5,
      microVM_runtime: "runsc",
    });
    expect(upd.status).toBe(200);
    const stats = (await h.call("GET", "/stats")).body;
    expect(stats.task_cpu).toBe(Math.min(2, stats.total_cpu));
    expect(stats.task_mem).toBe(1024);

    expect((await h.call("POST", "/unpause")).status).toBe(200);
    expect((await h.execute({ id: ECHO_IMAGE, resource: small, input: "again" })).body.msg).toBe(
      "again",
    );
  });

  it("with task_concurrency 1, concurrent requests for one key run in their own replicas", async () => {
    h = await startExecutor({ task_concurrency: 1 });
    const both = await Promise.all(
      [1, 2].map(() => h!.execute({ id: ECHO_IMAGE, resource: small, input: taskBody.sleep(300) })),
    );
    expect(both.map((r) => r.body.msg)).toEqual(["slept:300", "slept:300"]);
    expect(await h.containers()).toHaveLength(2);
    expect(new Set(h.executor.tasks().map((t) => t.key_hash)).size).toBe(1);
  });

  it("lets in-flight requests finish when pausing", async () => {
    h = await startExecutor();
    await h.execute({ id: ECHO_IMAGE, resource: small, input: "warm" });
    const [task] = h.executor.tasks();
    const url = taskUrl(task!.container_id!);
    let heldDone = false;
    const held = h
      .execute({ id: ECHO_IMAGE, resource: small, input: taskBody.hold("pause") })
      .finally(() => (heldDone = true));
    await until(() => h!.executor.tasks().some((t) => t.in_flight === 1), "request in flight");
    const paused = h.call("POST", "/pause");
    await until(async () => (await h!.call("GET", "/stats")).body.paused === true, "pausing");
    // Paused while the held request is in flight: new work is refused, the task stays for it.
    expect((await h.execute({ id: ECHO_IMAGE, resource: small, input: "x" })).body.error).toBe(
      "PAUSED",
    );
    expect(heldDone).toBe(false);
    expect((await h.containers()).map((c) => c.id)).toEqual([task!.container_id]);
    await releaseHeld(url, "pause");
    expect((await held).body).toEqual({ success: true, msg: "held:pause" });
    expect((await paused).status).toBe(200);
    expect(await h.containers()).toEqual([]);
  });

  it("removes containers an earlier executor of the same instance left behind when it was killed, where the config no longer allows them", async () => {
    const instance = `crash-${process.pid}`;
    const dir = mkdtempSync(join(tmpdir(), "meca-crash-"));
    writeFileSync(join(dir, "c.yaml"), `instance: ${instance}\n`);
    const first = await spawnExecutor(["--config", join(dir, "c.yaml")]);
    try {
      expect((await first.post("/", { id: ECHO_IMAGE, resource: small, input: "x" })).status).toBe(
        200,
      );
    } finally {
      // A crash: no shutdown, no cleanup.
      first.child.kill("SIGKILL");
      await first.exited;
      rmSync(dir, { recursive: true, force: true });
    }
    const left = docker([
      "ps",
      "-aq",
      "--no-trunc",
      "--filter",
      `label=${LABELS.instance}=${instance}`,
    ])
      .split("\n")
      .filter(Boolean);
    expect(left).toHaveLength(1);
    // Its image is no longer allowed: not adopted (see adoption.test.ts for what is), removed.
    h = await startExecutor({ instance, allowed_images: ["meca-test/ready-late:*"] });
    expect(h.executor.tasks()).toEqual([]);
    await until(
      async () => !(await h!.containers()).some((c) => c.id === left[0]),
      "leftover removed",
    );
    expect(
      docker([
        "ps",
        "-a",
        "--format",
        "{{.ID}} {{.Names}} {{.Status}}",
        "--filter",
        `label=${LABELS.instance}=${instance}`,
      ]).trim(),
    ).toBe("");
    expect(await h.close()).toEqual([]);
    h = undefined;
    expect(
      docker([
        "network",
        "ls",
        "--format",
        "{{.Name}}",
        "--filter",
        `label=${LABELS.instance}=${instance}`,
      ]).trim(),
    ).toBe("");
  });

  it("answers /health and /stats with the original fields", async () => {
    h = await startExecutor({ cpu: 1, mem: 256 });
    expect((await h.call("GET", "/health")).body).toEqual({ status: "ok" });
    await h.execute({ id: ECHO_IMAGE, resource: { cpu: 0.5, mem: 64 }, input: "x" });
    const s = (await h.call("GET", "/stats")).body;
    for (const k of [
      "total_cpu",
      "total_mem",
      "used_cpu",
      "used_mem",
      "task_cpu",
      "task_mem",
      "task_used_cpu",
      "task_used_mem",
      "gpu_model",
      "task_gpu",
      "task_used_gpu",
    ]) {
      expect(s).toHaveProperty(k);
    }
    expect(s).toMatchObject({
      task_cpu: 1,
      task_mem: 256,
      task_used_cpu: 50,
      task_used_mem: 25,
      task_gpu: 0,
      task_used_gpu: 0,
    });
    const tasks = (await h.call("GET", "/tasks")).body.tasks;
    expect(tasks[0]).toMatchObject({
      image: ECHO_IMAGE,
      cpu: 0.5,
      mem: 64,
      state: "ready",
      in_flight: 0,
      served: 1,
    });
  });
});
