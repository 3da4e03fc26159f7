import { describe, expect, it } from "vitest";
import { FakeHost } from "../fakes/fake-host.ts";
import { fakeApp } from "../support/fake-app.ts";
import { until } from "../support/until.ts";

describe("status routes", () => {
  it("GET /stats keeps the original fields with their meaning (capacity clipped to the host)", async () => {
    const { request } = await fakeApp({
      host: new FakeHost(2, 1000),
      settings: { cpu: 4, memMB: 4096 },
    });
    await request("POST", "/", { id: "echo:1", resource: { cpu: 0.5, mem: 200 } });
    const s = (await request("GET", "/stats")).body;
    expect(s).toMatchObject({
      total_cpu: 2,
      total_mem: 1000,
      used_cpu: 12.5,
      used_mem: 40,
      task_cpu: 2,
      task_mem: 800,
      task_used_cpu: 25,
      task_used_mem: 25,
      gpu_model: "",
      task_gpu: 0,
      task_used_gpu: 0,
    });
  });

  it("GET /health says ok, or 503 when the engine is unreachable", async () => {
    const { request, backend } = await fakeApp();
    expect(await request("GET", "/health")).toMatchObject({ status: 200, body: { status: "ok" } });
    backend.setUnavailable(true);
    backend.failEvents(new Error("connection reset"));
    await until(async () => (await request("GET", "/health")).status !== 200, "health to change");
    expect(await request("GET", "/health")).toMatchObject({
      status: 503,
      body: { engine: "unreachable" },
    });
  });

  it("GET /tasks lists warm tasks", async () => {
    const { request } = await fakeApp();
    await request("POST", "/", { id: "echo:1", resource: { cpu: 1, mem: 64 } });
    const t = (await request("GET", "/tasks")).body.tasks;
    expect(t).toHaveLength(1);
    expect(t[0]).toMatchObject({
      image: "echo:1",
      cpu: 1,
      mem: 64,
      state: "ready",
      served: 1,
      in_flight: 0,
    });
  });
});
