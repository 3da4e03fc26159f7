/**
 * Guards and observability over real sockets and the real engine: 413
 * before the body is read whole, 504 on a slow task, the start-up warning
 * without a token beyond loopback, logs free of secrets, and /metrics that
 * agrees with /stats and /tasks.
 */
import { request as httpRequest } from "node:http";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ECHO_IMAGE, taskBody } from "../support/fixtures.ts";
import { startExecutor, until, type Harness } from "../support/harness.ts";
import { spawnExecutor, type ExecutorProcess } from "../support/process.ts";
import { metric, parseMetrics } from "../http/metrics-text.ts";
import { scratchDir } from "../support/scratch.ts";

const small = { cpu: 0.1, mem: 32 };
const NO_ENGINE = { DOCKER_HOST: "unix:///tmp/meca-no-such-docker.sock" };
const WARNING = "No admin_token is set and the executor listens beyond loopback";

function configFile(text: string): string {
  const dir = scratchDir("meca-guard-");
  writeFileSync(join(dir, "c.yaml"), text);
  return join(dir, "c.yaml");
}

async function stop(ex: ExecutorProcess): Promise<void> {
  ex.child.kill("SIGTERM");
  await ex.exited;
}

/**
 * Starts a body of `total` bytes (chunked, or with a Content-Length when `declare` is set),
 * sends its first `upTo` bytes in `chunk`-byte pieces, and then waits for the answer with the
 * body unfinished: an answer comes only from a server that answers before the body's end.
 */
function streamBody(
  base: string,
  opts: { total: number; upTo: number; chunk: number; declare?: boolean },
): Promise<{ status: number; body: string; sent: number }> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = false;
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (opts.declare) headers["content-length"] = String(opts.total);
    const req = httpRequest(`${base}/`, { method: "POST", headers }, (res) => {
      answered = true;
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, body, sent });
      });
    });
    req.on("error", (e) => (answered ? undefined : reject(e)));
    const piece = Buffer.alloc(opts.chunk, "a");
    const pump = () => {
      while (!answered && sent < opts.upTo) {
        sent += piece.length;
        if (!req.write(piece)) return void req.once("drain", pump);
      }
    };
    req.flushHeaders();
    pump();
  });
}

describe("an executor process", () => {
  it("answers 413 to a body above max_body_bytes before the client has sent it, chunked or declared", async () => {
    const ex = await spawnExecutor(["--config", configFile("max_body_bytes: 65536\n")], NO_ENGINE);
    try {
      const total = 256 * 1024 * 1024;
      // Chunked: 1 MB of the 256 MB, past the limit, then nothing more until the answer.
      const chunked = await streamBody(ex.base, { total, upTo: 1024 * 1024, chunk: 64 * 1024 });
      expect(chunked.status).toBe(413);
      expect(JSON.parse(chunked.body)).toMatchObject({
        success: false,
        error: "PAYLOAD_TOO_LARGE",
      });
      // Declared: refused on its Content-Length, before a byte of the body.
      const declared = await streamBody(ex.base, {
        total,
        upTo: 0,
        chunk: 64 * 1024,
        declare: true,
      });
      expect(declared.status).toBe(413);
      expect(JSON.parse(declared.body)).toMatchObject({
        success: false,
        error: "PAYLOAD_TOO_LARGE",
      });
      expect((await ex.get("/health")).status).toBe(503); // still serving (no engine here)
    } finally {
      await stop(ex);
    }
  });

  it("warns at start-up without an admin token when it listens beyond loopback, and only then", async () => {
    const open = await spawnExecutor(["--host", "0.0.0.0"], NO_ENGINE);
    const guarded = await spawnExecutor(["--host", "0.0.0.0"], {
      ...NO_ENGINE,
      MECA_ADMIN_TOKEN: "tok",
    });
    const local = await spawnExecutor([], NO_ENGINE);
    try {
      await until(() => open.output().includes("Listening"), "open executor listening");
      await until(
        () => guarded.output().includes("Listening") && local.output().includes("Listening"),
        "others listening",
      );
      const warning = open
        .output()
        .split("\n")
        .find((l) => l.includes(WARNING));
      expect(JSON.parse(warning!)).toMatchObject({
        level: "warn",
        component: "main",
        hosts: ["0.0.0.0"],
      });
      expect(guarded.output()).not.toContain(WARNING);
      expect(local.output()).not.toContain(WARNING);
    } finally {
      await Promise.all([stop(open), stop(guarded), stop(local)]);
    }
  });

  it("logs JSON lines with request ids, and never the admin token or a task's input", async () => {
    const TOKEN = "proc-T0KEN-a1b2";
    const INPUT = "proc-INPUT-c3d4";
    const instance = `guard-logs-${process.pid}`;
    const ex = await spawnExecutor(
      [
        "--config",
        configFile(`instance: ${instance}\nfailure_status: http\n`),
        "--log-level",
        "debug",
      ],
      { MECA_ADMIN_TOKEN: TOKEN },
    );
    try {
      const ok = await ex.post(
        "/",
        { id: ECHO_IMAGE, resource: small, input: INPUT },
        { "X-Request-Id": "proc-req-1" },
      );
      expect(ok).toMatchObject({ status: 200, body: { msg: INPUT } });
      expect(ok.headers.get("x-request-id")).toBe("proc-req-1");
      const failed = await ex.post("/", {
        id: ECHO_IMAGE,
        resource: small,
        input: taskBody.status(500),
      });
      expect(failed.status).toBe(502);
      expect(
        (await ex.post("/pause", undefined, { Authorization: `Bearer ${TOKEN}-wrong` })).status,
      ).toBe(401);
      expect(
        (await ex.post("/pause", undefined, { Authorization: `Bearer ${TOKEN}` })).status,
      ).toBe(200);
      await until(() => ex.output().includes("Paused"), "paused");
      const lines = ex
        .output()
        .split("\n")
        .filter((l) => l.trim() !== "");
      for (const l of lines) expect(() => JSON.parse(l), l).not.toThrow();
      const access = lines
        .map((l) => JSON.parse(l))
        .find((l) => l.msg === "Request" && l.requestId === "proc-req-1");
      expect(access).toMatchObject({ level: "debug", method: "POST", path: "/", status: 200 });
      expect(ex.output()).not.toContain(TOKEN);
      expect(ex.output()).not.toContain(INPUT);
    } finally {
      await stop(ex);
    }
  });
});

describe("over the real engine", () => {
  let h: Harness;
  beforeAll(async () => {
    // A generous timeout: a 0.1-core task answers every other request well within it.
    h = await startExecutor({ request_timeout: 5 });
  });
  afterAll(async () => {
    expect(await h.close()).toEqual([]);
  });

  it("answers 504 when the task takes longer than request_timeout, and the task serves on", async () => {
    // The task holds this request until released: it never answers within any timeout.
    const slow = await h.execute({
      id: ECHO_IMAGE,
      resource: small,
      input: taskBody.hold("timeout"),
    });
    expect(slow).toMatchObject({ status: 504, body: { success: false, error: "TASK_TIMEOUT" } });
    expect(slow.body.msg).toContain("request timeout of 5 s");
    expect(await h.execute({ id: ECHO_IMAGE, resource: small, input: "after" })).toMatchObject({
      status: 200,
      body: { msg: "after" },
    });
  });

  it("GET /metrics agrees with /stats and /tasks after N requests", async () => {
    const before = parseMetrics((await h.call("GET", "/metrics")).text);
    const n = 5;
    for (let i = 0; i < n; i++)
      expect(
        (await h.execute({ id: ECHO_IMAGE, resource: { cpu: 0.2, mem: 40 }, input: `m${i}` }))
          .status,
      ).toBe(200);
    const stats = (await h.call("GET", "/stats")).body;
    const tasks = (await h.call("GET", "/tasks")).body.tasks as {
      served: number;
      image: string;
      cpu: number;
      state: string;
      container_id: string;
    }[];
    const after = parseMetrics((await h.call("GET", "/metrics")).text);
    const ok = { method: "POST", route: "/", status: "200", outcome: "ok" };
    expect(
      metric(after, "meca_http_requests_total", ok) -
        metric(before, "meca_http_requests_total", ok),
    ).toBe(n);
    expect(
      metric(after, "meca_task_requests_total") - metric(before, "meca_task_requests_total"),
    ).toBe(n);
    expect(metric(after, "meca_task_requests_total")).toBe(tasks.reduce((s, t) => s + t.served, 0));
    expect(tasks.find((t) => t.cpu === 0.2)).toMatchObject({ served: n, state: "ready" });
    expect(metric(after, "meca_task_cold_start_duration_seconds_count")).toBe(tasks.length);
    expect(metric(after, "meca_task_cold_start_duration_seconds_sum")).toBeGreaterThan(0);
    expect(metric(after, "meca_tasks", { state: "ready" })).toBe(tasks.length);
    expect(metric(after, "meca_ledger_capacity_cpu_cores")).toBe(stats.task_cpu);
    expect(metric(after, "meca_ledger_capacity_memory_bytes")).toBe(stats.task_mem * 1024 * 1024);
    expect(metric(after, "meca_ledger_reserved_cpu_cores")).toBeCloseTo(
      tasks.reduce((s, t) => s + t.cpu, 0),
      9,
    );
    expect(metric(after, "meca_host_cpu_cores")).toBe(stats.total_cpu);
    expect(metric(after, "meca_engine_reachable")).toBe(1);
    expect((await h.containers()).map((c) => c.id).sort()).toEqual(
      tasks.map((t) => t.container_id).sort(),
    );
  });
});
