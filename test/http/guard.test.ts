import { describe, expect, it } from "vitest";
import { createApp } from "../../src/http/app.ts";
import { createLogger } from "../../src/logger.ts";
import { deferred } from "../fakes/fake-backend.ts";
import { fakeApp } from "../support/fake-app.ts";
import { fakeExecutor, flush, settleWithClock } from "../support/fake-executor.ts";

const ZERO = { cpuTenths: 0, memMB: 0, gpus: [] };

describe("guards", () => {
  it("refuses images outside allowed_images with 403 and starts nothing", async () => {
    const { request, backend, executor } = await fakeApp({
      settings: { allowedImages: ["echo:*", "registry.local:5000/team/*"] },
      images: { "evil:1": {}, "registry.local:5000/team/app:2": {} },
    });
    expect(await request("POST", "/", { id: "echo:1", input: "ok" })).toMatchObject({
      status: 200,
      body: { msg: "ok" },
    });
    expect(
      await request("POST", "/", { id: "registry.local:5000/team/app:2", input: "ok" }),
    ).toMatchObject({ status: 200 });
    const before = backend.created.length;
    const r = await request("POST", "/", { id: "evil:1" });
    expect(r).toMatchObject({ status: 403, body: { success: false, error: "IMAGE_NOT_ALLOWED" } });
    expect(r.body.msg).toContain('"evil:1"');
    for (const id of ["registry.local:5000/other/app:2", "echo-evil:1", "x/echo:1"]) {
      expect((await request("POST", "/", { id })).status, id).toBe(403);
    }
    expect(backend.created).toHaveLength(before);
    await executor.pause();
    expect(executor.ledger.used()).toEqual(ZERO);
  });

  it("answers 504 when the task does not answer within request_timeout, and the task stays usable", async () => {
    const never = deferred<{ status: number; body: string }>();
    const { request, executor, clock } = await fakeApp({
      settings: { requestTimeoutMs: 50 },
      images: {
        "hang:1": { respond: (body) => (body === "hang" ? never.promise : { status: 200, body }) },
      },
    });
    const r = await settleWithClock(
      request("POST", "/", { id: "hang:1", input: "hang" }, { "X-Request-Id": "slow-1" }),
      clock,
      50,
    );
    expect(r).toMatchObject({ status: 504, body: { success: false, error: "TASK_TIMEOUT" } });
    expect(r.body.msg).toContain("request timeout of 0.05 s");
    expect(r.headers.get("x-request-id")).toBe("slow-1");
    expect(executor.tasks()).toMatchObject([{ image: "hang:1", in_flight: 0, state: "ready" }]);
    expect(await request("POST", "/", { id: "hang:1", input: "fine" })).toMatchObject({
      status: 200,
      body: { msg: "fine" },
    });
  });

  it("answers 413 to a streamed body without Content-Length after reading at most the limit", async () => {
    const { app, executor } = await fakeApp({ maxBodyBytes: 64 * 1024 });
    let pulled = 0;
    const chunk = new Uint8Array(16 * 1024).fill(0x61);
    const body = new ReadableStream<Uint8Array>({
      pull(ctl) {
        pulled += chunk.length;
        ctl.enqueue(chunk); // endless: the executor must stop reading on its own
      },
    });
    const res = await app.request("/", { method: "POST", body, duplex: "half" } as RequestInit);
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: "PAYLOAD_TOO_LARGE" });
    expect(pulled).toBeLessThanOrEqual(64 * 1024 + 3 * chunk.length);
    expect(executor.ledger.used()).toEqual(ZERO);
  });

  it("returns X-Request-Id on every answer: honoured when given, made when absent or malformed", async () => {
    const { request } = await fakeApp({ adminToken: "tok", maxBodyBytes: 100 });
    const cases: [string, string, unknown][] = [
      ["GET", "/nope", undefined],
      ["POST", "/pause", undefined],
      ["POST", "/", "x".repeat(500)],
      ["GET", "/metrics", undefined],
    ];
    for (const [method, path, body] of cases) {
      const given = await request(method, path, body, { "X-Request-Id": "id-42" });
      expect(given.headers.get("x-request-id"), path).toBe("id-42");
      const made = await request(method, path, body);
      expect(made.headers.get("x-request-id"), path).toMatch(/^[\w-]{8,}$/);
    }
    const odd = await request("GET", "/health", undefined, { "X-Request-Id": "has space" });
    expect(odd.headers.get("x-request-id")).not.toBe("has space");
  });
});

describe("logs", () => {
  /** An app whose HTTP log lines are real JSON lines, at debug, kept in `lines`. */
  async function loggedApp(o: Parameters<typeof fakeExecutor>[0] & { accessLog?: boolean } = {}) {
    const parts = await fakeExecutor(o);
    const lines: string[] = [];
    const logger = createLogger({
      format: "json",
      level: "debug",
      write: (_l, line) => lines.push(line),
    });
    const app = createApp({
      executor: parts.executor,
      logger,
      adminToken: "adm1n-T0KEN-zz",
      maxBodyBytes: 4096,
      accessLog: o.accessLog ?? true,
      onStop: () => {},
      failureStatus: "http",
    });
    const all = () => [...lines, ...parts.logger.records.map((r) => JSON.stringify(r))].join("\n");
    return { ...parts, app, lines, all };
  }

  it("never contain the admin token or a task's input, on success or failure", async () => {
    const TOKEN = "adm1n-T0KEN-zz";
    const INPUT = "s3cr3t-INPUT-7f9c";
    const never = deferred<{ status: number; body: string }>();
    const { app, all, backend, executor, clock } = await loggedApp({
      settings: { requestTimeoutMs: 50 },
      images: {
        "echo:1": {},
        // Tasks echo their input in errors too; neither may reach the log.
        "fail:1": { respond: (body) => ({ status: 500, body: `failed on ${body}` }) },
        "hang:1": { respond: () => never.promise },
      },
    });
    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      app.request(path, {
        method: "POST",
        body: typeof body === "string" ? body : JSON.stringify(body),
        headers: { "content-type": "application/json", ...headers },
      });
    const auth = { Authorization: `Bearer ${TOKEN}` };

    expect((await post("/", { id: "echo:1", input: INPUT })).status).toBe(200);
    expect((await post("/", { id: "fail:1", input: INPUT })).status).toBe(502);
    expect(
      (await settleWithClock(post("/", { id: "hang:1", input: INPUT }), clock, 50)).status,
    ).toBe(504);
    expect((await post("/", `{"id":"echo:1","input":"${INPUT}"`)).status).toBe(400);
    expect((await post("/", { id: "echo:1", input: INPUT.repeat(1000) })).status).toBe(413);
    // A container that died unseen under a warm task: the request is retried on a fresh one.
    backend.container(executor.tasks().find((t) => t.image === "echo:1")!.container_id!)!.exit(137);
    expect(
      (await post("/", { id: "echo:1", input: INPUT }, { "X-Request-Id": "retry-1" })).status,
    ).toBe(200);
    expect((await post("/pause", undefined, { Authorization: `Bearer ${TOKEN}x` })).status).toBe(
      401,
    );
    expect((await post("/pause", undefined, auth)).status).toBe(200);
    expect((await post("/update-config", { cpu: 2 }, auth)).status).toBe(200);
    expect((await post("/unpause", undefined, auth)).status).toBe(200);
    await flush();

    const text = all();
    expect(text).toContain("Request"); // the access log ran
    expect(text).toContain("answered 500 (body not logged)");
    expect(text).toContain("Retrying on a fresh container");
    expect(text).toContain("TASK_TIMEOUT");
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(INPUT);
    expect(text).not.toContain("s3cr3t");
  });

  it("carry the request id in the lines a request causes", async () => {
    const never = deferred<{ status: number; body: string }>();
    const { app, lines, backend, executor, logger, clock } = await loggedApp({
      settings: { requestTimeoutMs: 50 },
      images: { "hang:1": { respond: () => never.promise } },
    });
    await settleWithClock(
      app.request("/", {
        method: "POST",
        body: JSON.stringify({ id: "hang:1" }),
        headers: { "X-Request-Id": "req-timeout-1" },
      }),
      clock,
      50,
    );
    const warn = lines.map((l) => JSON.parse(l)).find((l) => l.level === "warn");
    expect(warn).toMatchObject({
      requestId: "req-timeout-1",
      code: "TASK_TIMEOUT",
      component: "http",
    });

    await app.request("/", { method: "POST", body: JSON.stringify({ id: "echo:1" }) });
    backend.container(executor.tasks().find((t) => t.image === "echo:1")!.container_id!)!.exit(137); // no event: found on forward
    await app.request("/", {
      method: "POST",
      body: JSON.stringify({ id: "echo:1" }),
      headers: { "X-Request-Id": "req-retry-1" },
    });
    // The engine logs through its own logger (the fake's here); its retry line names the request.
    const retry = logger.records.find((r) => r.msg === "Retrying on a fresh container");
    expect(retry?.fields).toMatchObject({ requestId: "req-retry-1", component: "executor" });
  });

  it("write one debug access line per request only when asked", async () => {
    const on = await loggedApp({ accessLog: true });
    await on.app.request("/health", { headers: { "X-Request-Id": "acc-1" } });
    const access = on.lines.map((l) => JSON.parse(l)).filter((l) => l.msg === "Request");
    expect(access).toEqual([
      expect.objectContaining({
        level: "debug",
        requestId: "acc-1",
        method: "GET",
        path: "/health",
        status: 200,
        outcome: "ok",
      }),
    ]);
    const off = await loggedApp({ accessLog: false });
    await off.app.request("/health");
    expect(off.lines).toEqual([]);
  });

  it("keep at most 200 characters of a path the client sent, so a request cannot make a line as long as its headers", async () => {
    const on = await loggedApp({ accessLog: true });
    await on.app.request(`/${"p".repeat(10_000)}`);
    const access = on.lines.map((l) => JSON.parse(l)).filter((l) => l.msg === "Request");
    expect(access).toHaveLength(1);
    expect(access[0].path).toBe(`/${"p".repeat(199)}...`);
    expect(on.lines.every((l) => l.length < 1_000)).toBe(true);
  });
});
