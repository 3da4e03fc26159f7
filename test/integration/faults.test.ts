import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { ECHO_IMAGE, taskBody } from "../support/fixtures.ts";
import { docker, ensureDocker, pingDocker } from "../support/docker-env.ts";
import { startExecutor, until, type Harness } from "../support/harness.ts";
import { spawnExecutor } from "../support/process.ts";

const small = { cpu: 0.1, mem: 32 };
let h: Harness | undefined;
afterEach(async () => {
  if (h) expect(await h.close()).toEqual([]);
  h = undefined;
});

describe("faults survived on the real engine", () => {
  it("a task container killed behind the executor's back leaves the pool at once; the next request starts a fresh one", async () => {
    h = await startExecutor();
    const first = (await h.execute({ id: ECHO_IMAGE, resource: small, input: taskBody.whoami }))
      .body.msg;
    const [task] = h.executor.tasks();
    docker(["kill", task!.container_id!]);
    await until(() => h!.executor.tasks().length === 0, "dead task left the pool");
    expect(h.executor.ledger.used().cpuTenths).toBe(0);
    const second = await h.execute({ id: ECHO_IMAGE, resource: small, input: taskBody.whoami });
    expect(second.status).toBe(200);
    expect(second.body.msg).not.toBe(first);
  });

  it("an OOM-killed task fails its request with 502, leaves the pool, and the next request gets a fresh one", async () => {
    h = await startExecutor();
    await h.execute({ id: ECHO_IMAGE, resource: small, input: "warm" });
    const oom = await h.execute({ id: ECHO_IMAGE, resource: small, input: taskBody.oom });
    expect(oom.status).toBe(502);
    await until(() => h!.executor.tasks().length === 0, "OOM-killed task left the pool");
    expect(
      h.logger.records.some(
        (l) => l.msg === "Removing task" && /memory|stopped/.test(String(l.fields.reason)),
      ),
    ).toBe(true);
    expect((await h.execute({ id: ECHO_IMAGE, resource: small, input: "after" })).body.msg).toBe(
      "after",
    );
  });

  it("a request to a task whose container just died is served by a fresh container", async () => {
    h = await startExecutor();
    const first = (await h.execute({ id: ECHO_IMAGE, resource: small, input: taskBody.whoami }))
      .body.msg;
    const [task] = h.executor.tasks();
    docker(["stop", "-t", "0", task!.container_id!]);
    const r = await h.execute({ id: ECHO_IMAGE, resource: small, input: taskBody.whoami });
    expect(r.status, r.body.msg).toBe(200);
    expect(r.body.msg).not.toBe(first);
  });

  it("a client that disconnects mid-request does not leak an in-flight count", async () => {
    const ex = await spawnExecutor();
    try {
      await ex.post("/", { id: ECHO_IMAGE, resource: small, input: "warm" });
      const req = httpRequest(`${ex.base}/`, {
        method: "POST",
        headers: { "content-type": "application/json" },
      });
      req.on("error", () => {});
      req.end(JSON.stringify({ id: ECHO_IMAGE, resource: small, input: taskBody.sleep(60_000) }));
      await until(
        async () => (await ex.get("/tasks")).body.tasks[0]?.in_flight === 1,
        "request in flight",
      );
      req.destroy();
      // The task would sleep a minute: the count must drop because the client went away, not because it answered.
      await until(
        async () => (await ex.get("/tasks")).body.tasks[0]?.in_flight === 0,
        "in-flight count back to 0",
        10_000,
      );
      expect(
        (await ex.post("/", { id: ECHO_IMAGE, resource: small, input: "next" })).body.msg,
      ).toBe("next");
    } finally {
      ex.child.kill("SIGTERM");
      await ex.exited;
    }
  });
});

describe("the Docker engine going away", () => {
  it("answers 503 while dockerd is down, says so on /health, and recovers by itself", async () => {
    h = await startExecutor();
    expect((await h.execute({ id: ECHO_IMAGE, resource: small, input: "before" })).status).toBe(
      200,
    );

    const pid = Number(readFileSync("/var/run/docker.pid", "utf8").trim());
    process.kill(pid, "SIGTERM");
    await until(async () => !(await pingDocker()), "dockerd stopped", 60_000);
    try {
      await until(
        async () => (await h!.call("GET", "/health")).status === 503,
        "health says unreachable",
      );
      expect((await h.call("GET", "/health")).body.engine).toBe("unreachable");
      const during = await h.execute({
        id: ECHO_IMAGE,
        resource: { cpu: 0.2, mem: 32 },
        input: "during",
      });
      expect(during.status).toBe(503);
      expect(during.body.error).toBe("ENGINE_UNAVAILABLE");
      expect(during.headers.get("retry-after")).toBeTruthy();
      expect(h.executor.ledger.used().cpuTenths).toBeLessThanOrEqual(1);
    } finally {
      await ensureDocker();
    }
    await until(
      async () => (await h!.call("GET", "/health")).status === 200,
      "health ok again",
      30_000,
    );
    // The old container died with the engine: the pool notices and starts a fresh one.
    const after = await h.execute({ id: ECHO_IMAGE, resource: small, input: "after" });
    expect(after).toMatchObject({ status: 200, body: { msg: "after" } });
  }, 120_000);
});
