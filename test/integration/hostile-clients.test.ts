/**
 * Hostile clients cannot hurt the executor: slow connections past
 * max_connections get 503 while the Docker socket keeps working under a
 * tight file-descriptor limit, and many large inputs at once stay within
 * max_buffered_input_bytes.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ECHO_IMAGE } from "../support/fixtures.ts";
import { startExecutor, until } from "../support/harness.ts";
import { spawnExecutor, type ExecutorProcess } from "../support/process.ts";
import { scratchDir } from "../support/scratch.ts";

const small = { cpu: 0.1, mem: 64 };
let ex: ExecutorProcess | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  if (ex) {
    ex.child.kill("SIGTERM");
    await ex.exited;
  }
  ex = undefined;
});

function config(lines: string[]): string {
  const dir = scratchDir("meca-hostile-clients-");
  writeFileSync(join(dir, "c.yaml"), [`instance: hostile-clients-${process.pid}`, ...lines].join("\n"));
  return join(dir, "c.yaml");
}

function rss(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) * 1024;
}

async function open(port: number): Promise<Socket> {
  const s = connect(port, "127.0.0.1");
  sockets.push(s);
  s.on("error", () => {});
  await new Promise((r) => s.once("connect", r));
  return s;
}

/** Reads what the server sends until it closes the connection or `done` holds. */
function readAll(s: Socket, done: (text: string) => boolean = () => false): Promise<string> {
  return new Promise((resolve) => {
    let got = "";
    s.on("data", (d) => {
      got += d;
      if (done(got)) resolve(got);
    });
    s.once("close", () => resolve(got));
  });
}

describe("hostile clients", () => {
  it("slow connections past max_connections get 503 OVERLOADED, and a cold start still reaches the Docker socket under a tight descriptor limit", async () => {
    ex = await spawnExecutor(["--config", config(["max_connections: 40"])]);
    // As under `ulimit -n`: few descriptors, so that unbounded clients would take the Docker socket's.
    execFileSync("prlimit", ["--pid", String(ex.child.pid), "--nofile=120:120"]);
    // One client starts a request for a cold task and holds back the end of its body.
    const body = JSON.stringify({ id: ECHO_IMAGE, resource: small, input: "through" });
    const starter = await open(ex.port);
    const answer = readAll(starter, (t) => t.includes("}"));
    starter.write(`POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, 10)}`);
    // Then 150 slow clients that send nothing: those past the cap are answered 503 and closed.
    const slow = await Promise.all(Array.from({ length: 150 }, () => open(ex!.port)));
    const refused = slow.map((s) => readAll(s));
    const extra = await open(ex.port);
    const extraAnswer = await readAll(extra);
    expect(extraAnswer).toMatch(/^HTTP\/1\.1 503 /);
    expect(extraAnswer).toContain('"error":"OVERLOADED"');
    // Those within the cap are still open; release them all once the starter is done.
    starter.write(body.slice(10));
    const text = await answer;
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(text).toContain('"msg":"through"');
    for (const s of slow) s.destroy();
    const closedByServer = (await Promise.all(refused)).filter((t) => t.startsWith("HTTP/1.1 503")).length;
    expect(closedByServer).toBeGreaterThanOrEqual(150 - 40);
    await until(async () => (await ex!.get("/health").catch(() => ({ status: 0 }))).status === 200, "health answers again");
    expect((await ex.post("/", { id: ECHO_IMAGE, resource: small, input: "after" })).body.msg).toBe("after");
  });

  it("40 concurrent inputs of 9 MiB stay within max_buffered_input_bytes: the excess gets 503 OVERLOADED, the RSS stays bounded", async () => {
    const budget = 32 * 1024 * 1024;
    ex = await spawnExecutor(["--config", config([`max_buffered_input_bytes: ${budget}`])]);
    // The task echoes each input whole, a few at once: room for that, so that only the executor's bound is tested.
    const roomy = { cpu: 0.1, mem: 512 };
    expect((await ex.post("/", { id: ECHO_IMAGE, resource: roomy, input: "warm" })).status).toBe(200);
    const baseline = rss(ex.child.pid!);
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rss(ex!.child.pid!))), 20);
    const input = "z".repeat(9 * 1024 * 1024);
    const results = await Promise.all(
      Array.from({ length: 40 }, () =>
        fetch(`${ex!.base}/`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id: ECHO_IMAGE, resource: roomy, input }) }).then(
          async (r) => ({ status: r.status, body: (await r.json()) as { msg: string; error?: string } }),
        ),
      ),
    );
    clearInterval(sampler);
    const statuses = results.map((r) => r.status);
    const other = results.filter((r) => r.status !== 200 && r.status !== 503).map((r) => `${r.status} ${r.body.error}: ${r.body.msg.slice(0, 200)}`);
    expect(other).toEqual([]);
    expect(results.filter((r) => r.status === 503).every((r) => r.body.error === "OVERLOADED")).toBe(true);
    expect(results.filter((r) => r.status === 200).every((r) => r.body.msg === input)).toBe(true);
    expect(statuses).toContain(503);
    expect(statuses).toContain(200);
    // What is buffered at once is bounded by the budget; each accepted input lives a few times over
    // (bytes, string, the task's answer, the envelope), so the bound is a multiple of it.
    expect(peak - baseline).toBeLessThan(12 * budget);
  });
});

describe("crafted requests", () => {
  it("malformed digests are a 400, never a 500: the OCI grammar here, the engine's reason for what it refuses", async () => {
    const h = await startExecutor();
    try {
      const long = await h.execute({ id: `meca-test/echo@sha256:${"a".repeat(480)}`, resource: small });
      expect(long).toMatchObject({ status: 400, body: { error: "INVALID_IMAGE" } });
      const odd = await h.execute({ id: `meca-test/echo@x+y.z:${"0123456789abcdef".repeat(2)}`, resource: small });
      expect(odd.status).toBe(400);
      expect(odd.body.error).toBe("ENGINE_REJECTED");
      expect(odd.body.msg).toMatch(/Docker engine refused/);
    } finally {
      expect(await h.close()).toEqual([]);
    }
  });

  it("a 400 MB update-config body is refused with 413 before it is read", async () => {
    ex = await spawnExecutor();
    const baseline = rss(ex.child.pid!);
    const s = await open(ex.port);
    const answer = readAll(s, (t) => t.includes("}"));
    s.write("POST /update-config HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 400000000\r\n\r\n{");
    const text = await answer;
    expect(text).toMatch(/^HTTP\/1\.1 413 /);
    expect(text).toContain("PAYLOAD_TOO_LARGE");
    expect(rss(ex.child.pid!) - baseline).toBeLessThan(64 * 1024 * 1024);
  });
});
