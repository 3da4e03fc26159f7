import { describe, expect, it } from "vitest";
import { fakeApp } from "../support/fake-app.ts";
import { until } from "../support/until.ts";

describe("admin routes", () => {
  it("need the bearer token when one is set: 401 without or with a wrong one", async () => {
    const { request, executor } = await fakeApp({ adminToken: "s3cret" });
    for (const path of ["/pause", "/unpause", "/update-config", "/stop"]) {
      expect((await request("POST", path)).status).toBe(401);
      const wrong = await request("POST", path, undefined, { Authorization: "Bearer nope" });
      expect(wrong).toMatchObject({ status: 401, body: { success: false, error: "UNAUTHORIZED" } });
    }
    expect(executor.paused).toBe(false);
    expect(
      (await request("POST", "/pause", undefined, { Authorization: "Bearer s3cret" })).status,
    ).toBe(200);
    expect(executor.paused).toBe(true);
  });

  it("answer 401, not 400, to a malformed Authorization header", async () => {
    const { request, executor } = await fakeApp({ adminToken: "s3cret" });
    for (const h of ["Basic czNjcmV0", "Bearer !", "Bearer", "s3cret", "Bearer s3cret extra"]) {
      const r = await request("POST", "/pause", undefined, { Authorization: h });
      expect(r, h).toMatchObject({ status: 401, body: { success: false, error: "UNAUTHORIZED" } });
    }
    expect(executor.paused).toBe(false);
  });

  it("apply update-config running or paused, saying what changed, validating every key", async () => {
    const { request } = await fakeApp();
    expect(await request("POST", "/update-config", { cpu: 3 })).toMatchObject({
      status: 200,
      body: { msg: "config updated", changed: { cpu: { from: 4, to: 3 } } },
    });
    expect(await request("POST", "/update-config", { cpu: 3 })).toMatchObject({
      status: 200,
      body: { msg: "config unchanged", changed: {} },
    });
    await request("POST", "/pause");
    expect(await request("POST", "/update-config", { cpu: "two" })).toMatchObject({ status: 400 });
    expect((await request("POST", "/update-config", { cpus: 2 })).body.msg).toContain('"cpus"');
    expect((await request("POST", "/update-config", "{")).body.error).toBe("INVALID_JSON");
    const ok = await request("POST", "/update-config", {
      cpu: 2,
      mem: 2048,
      timeout: 0.5,
      microVM_runtime: "runsc",
      has_gpu: false,
    });
    expect(ok).toMatchObject({
      status: 200,
      body: {
        success: true,
        config: { cpu: 2, mem: 2048, timeout: 0.5, microVM_runtime: "runsc" },
      },
    });
    const stats = await request("GET", "/stats");
    expect(stats.body).toMatchObject({ task_cpu: 2, task_mem: 2048, paused: true });
  });

  it("update-config refuses a timeout past a week, naming it, and every number /tasks and /stats print stays a number", async () => {
    const { request } = await fakeApp();
    for (const timeout of [1e308, 10081]) {
      const r = await request("POST", "/update-config", { timeout });
      expect(r).toMatchObject({ status: 400, body: { error: "BAD_REQUEST" } });
      expect(r.body.msg).toMatch(/timeout must be at most 10080 minutes/);
    }
    expect(await request("POST", "/update-config", { timeout: 10080 })).toMatchObject({
      status: 200,
    });
    const tasks = await request("GET", "/tasks");
    expect(tasks.body.idle_timeout_s).toBe(10080 * 60);
    const numbers = (v: unknown): unknown[] =>
      v && typeof v === "object" ? Object.values(v).flatMap(numbers) : [v];
    const stats = await request("GET", "/stats");
    for (const body of [tasks.body, stats.body]) {
      expect(numbers(body).filter((n) => typeof n === "number" && !Number.isFinite(n))).toEqual([]);
    }
  });

  it("update-config with some keys leaves the others as they were", async () => {
    const { request } = await fakeApp({ settings: { cpu: 3, memMB: 1000 } });
    await request("POST", "/pause");
    await request("POST", "/update-config", { microVM_runtime: "runsc" });
    expect((await request("GET", "/stats")).body).toMatchObject({ task_cpu: 3, task_mem: 1000 });
    await request("POST", "/unpause");
    expect((await request("POST", "/", { id: "echo:1", input: "still fits" })).body.msg).toBe(
      "still fits",
    );
  });

  it("pause refuses executions with 503 until unpause", async () => {
    const { request } = await fakeApp();
    await request("POST", "/pause");
    const r = await request("POST", "/", { id: "echo:1" });
    expect(r).toMatchObject({ status: 503, body: { error: "PAUSED" } });
    expect(r.headers.get("retry-after")).toBeTruthy();
    await request("POST", "/unpause");
    expect((await request("POST", "/", { id: "echo:1", input: "x" })).body.msg).toBe("x");
  });

  it("stop answers first, then asks to stop", async () => {
    const { request, stops } = await fakeApp();
    expect(await request("POST", "/stop")).toMatchObject({ status: 200, body: { success: true } });
    await until(() => stops() > 0, "the stop to be asked");
    expect(stops()).toBe(1);
  });
});
