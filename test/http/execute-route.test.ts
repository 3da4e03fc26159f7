import { describe, expect, it } from "vitest";
import { fakeApp } from "../support/fake-app.ts";

describe("POST /", () => {
  it("answers the task's output in the envelope", async () => {
    const { request } = await fakeApp();
    const r = await request("POST", "/", {
      id: "echo:1",
      input: 'quote " and \\ and ✓',
      unknown: [1, 2],
    });
    expect(r).toMatchObject({ status: 200, body: { success: true, msg: 'quote " and \\ and ✓' } });
    expect(r.headers.get("content-type")).toContain("application/json");
  });

  it("returns and honours X-Request-Id", async () => {
    const { request } = await fakeApp();
    const r = await request("POST", "/", { id: "echo:1" }, { "X-Request-Id": "abc-123" });
    expect(r.headers.get("x-request-id")).toBe("abc-123");
    const bad = await request("POST", "/", "{", { "X-Request-Id": "req-9" });
    expect(bad.headers.get("x-request-id")).toBe("req-9");
  });

  it.each([
    ["not JSON", "{", 400, "INVALID_JSON"],
    ["a JSON array", "[1]", 400, "INVALID_BODY"],
    ["null", "null", 400, "INVALID_BODY"],
    ["id as a number", { id: 5 }, 400, "BAD_REQUEST"],
    ["an empty id", { id: "" }, 400, "BAD_REQUEST"],
    ["use_gpu as a string", { id: "echo:1", resource: { use_gpu: "yes" } }, 400, "BAD_REQUEST"],
    [
      "gpu_count -1",
      { id: "echo:1", resource: { use_gpu: true, gpu_count: -1 } },
      400,
      "BAD_REQUEST",
    ],
    [
      "use_gpu with gpu_count 0 (one GPU) on a host without GPUs",
      { id: "echo:1", resource: { use_gpu: true, gpu_count: 0 } },
      400,
      "EXCEEDS_CAPACITY",
    ],
    ["input as an object", { id: "echo:1", input: { a: 1 } }, 400, "BAD_REQUEST"],
    [
      "runtime microVM without one configured",
      { id: "echo:1", runtime: "microVM" },
      400,
      "MICROVM_UNAVAILABLE",
    ],
    ["use_sgx on a host without SGX", { id: "echo:1", use_sgx: true }, 400, "SGX_UNAVAILABLE"],
  ])("refuses %s with a clear error and no stack", async (_name, body, status, code) => {
    const { request, executor, backend } = await fakeApp();
    const r = await request("POST", "/", body);
    expect(r.status).toBe(status);
    expect(r.body).toMatchObject({ success: false, error: code });
    expect(typeof r.body.msg).toBe("string");
    expect(r.body.msg).not.toMatch(/\n\s+at /);
    expect(executor.ledger.used()).toEqual({ cpuTenths: 0, memMB: 0, gpus: [] });
    expect(backend.created).toEqual([]);
  });

  it("answers 413 for a body above the limit", async () => {
    const { request } = await fakeApp({ maxBodyBytes: 1000 });
    const r = await request("POST", "/", { id: "echo:1", input: "x".repeat(2000) });
    expect(r).toMatchObject({ status: 413, body: { success: false, error: "PAYLOAD_TOO_LARGE" } });
  });

  it("maps task failures to 502 and engine outages to 503 with Retry-After", async () => {
    const { request, backend } = await fakeApp({
      images: { "fail:1": { respond: () => ({ status: 500, body: "kaputt" }) } },
    });
    const failed = await request("POST", "/", { id: "fail:1" });
    expect(failed).toMatchObject({ status: 502, body: { error: "TASK_FAILED" } });
    expect(failed.body.msg).toContain("answered 500: kaputt");
    backend.setUnavailable(true);
    const down = await request("POST", "/", { id: "echo:1", resource: { cpu: 2 } });
    expect(down).toMatchObject({ status: 503, body: { error: "ENGINE_UNAVAILABLE" } });
    expect(down.headers.get("retry-after")).toBeTruthy();
  });

  it("answers 404 in the envelope for unknown routes", async () => {
    const { request } = await fakeApp();
    expect(await request("GET", "/nope")).toMatchObject({
      status: 404,
      body: { success: false, error: "NOT_FOUND" },
    });
  });
});
