import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { BodyLimits } from "../../src/http/body-limits.ts";
import type { Answer } from "../../src/http/errors.ts";
import { createHttp, type PlainRequest } from "../../src/http/pipeline.ts";
import { listenNode, type Listening } from "../../src/http/node-listen.ts";
import { fakeExecutor } from "../support/fake-executor.ts";
import { until } from "../support/until.ts";

let listening: Listening | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await listening?.close();
  listening = undefined;
});

const text = (body: string): Answer => ({
  status: 200,
  body,
  headers: { "content-type": "text/plain" },
});

async function open(port: number): Promise<Socket> {
  const s = connect(port, "127.0.0.1");
  sockets.push(s);
  s.on("error", () => {});
  await new Promise((r) => s.once("connect", r));
  return s;
}

/** Sends a GET and reads until the server closes or answers in full. */
async function get(s: Socket): Promise<string> {
  let got = "";
  s.on("data", (d) => (got += d));
  s.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  await new Promise((r) => s.once("close", r));
  return got;
}

// Node's http server: under Deno the executor listens with Deno.serve (deno-listen.ts), and Deno's
// node:http emulation does not count connections the way this cap relies on.
describe.skipIf("Deno" in globalThis)("listenNode", () => {
  it("at maxConnections a new connection displaces the one idle longest, and a client that sent nothing never locks others out", async () => {
    let handled = 0;
    const serve = async () => {
      handled++;
      return text("ok");
    };
    listening = await listenNode(serve, { port: 0, hostname: "127.0.0.1", maxConnections: 2 });
    const first = await open(listening.port);
    const firstClosed = new Promise((r) => first.once("close", r));
    await open(listening.port);
    // Both slots are held by connections that sent nothing. Just opened, they may still be sending:
    // a newcomer is refused for now.
    expect(await get(await open(listening.port))).toMatch(/^HTTP\/1\.1 503 /);
    // Idle a second, the one idle longest gives way: a newcomer is served, the first goes.
    const port = listening.port;
    await until(
      async () => (await get(await open(port))).startsWith("HTTP/1.1 200"),
      "a newcomer served",
    );
    expect(handled).toBe(1);
    await firstClosed;
    expect(first.destroyed || first.readableEnded).toBe(true);
  });

  it("answers 503 OVERLOADED past maxConnections only when every connection has a request in flight, and serves again once one ends", async () => {
    let handled = 0;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const serve = async (req: PlainRequest) => {
      handled++;
      if (req.url.includes("hold")) await held;
      return text("ok");
    };
    listening = await listenNode(serve, { port: 0, hostname: "127.0.0.1", maxConnections: 2 });
    const busy = [await open(listening.port), await open(listening.port)];
    for (const s of busy) s.write("GET /?hold HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    for (let i = 0; i < 200 && handled < 2; i++) await new Promise((r) => setTimeout(r, 5));
    expect(handled).toBe(2);
    const third = await get(await open(listening.port));
    expect(third).toMatch(/^HTTP\/1\.1 503 /);
    expect(third).toContain('"error":"OVERLOADED"');
    expect(third).toMatch(/retry-after: 1/i);
    expect(handled).toBe(2);
    release();
    // Both answered and kept alive, so idle again: once idle a second, a newcomer displaces one of them.
    const port = listening.port;
    await until(
      async () => (await get(await open(port))).startsWith("HTTP/1.1 200"),
      "a newcomer served",
    );
  });

  it("answers headers past Node's limit with 431 and closes the connection", async () => {
    listening = await listenNode(async () => text("ok"), { port: 0, hostname: "127.0.0.1" });
    const s = await open(listening.port);
    let got = "";
    s.on("data", (d) => (got += d));
    const closed = new Promise((r) => s.once("close", r));
    s.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${"b".repeat(20_000)}\r\n\r\n`);
    await closed;
    expect(got).toMatch(/^HTTP\/1\.1 431 /);
  });

  it("closes a connection whose request is not whole within requestReadTimeoutMs, with 408", async () => {
    const serve = async (req: PlainRequest) => text(await req.body(new BodyLimits(1 << 20)));
    listening = await listenNode(serve, {
      port: 0,
      hostname: "127.0.0.1",
      requestReadTimeoutMs: 1000,
      headersTimeoutMs: 30_000,
    });
    const s = await open(listening.port);
    let got = "";
    s.on("data", (d) => (got += d));
    const closed = new Promise((r) => s.once("close", r));
    s.write("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nabc");
    await closed;
    expect(got).toMatch(/^HTTP\/1\.1 408 /);
  });
});

describe("a client that hangs up mid-body", () => {
  it("is a 499 CLIENT_CLOSED logged at info, not an internal error", async () => {
    const parts = await fakeExecutor();
    const http = createHttp({
      executor: parts.executor,
      logger: parts.logger,
      maxBodyBytes: 1 << 20,
      onStop: () => {},
    });
    let handed = false;
    const watched = (req: PlainRequest) => ((handed = true), http.serve(req));
    listening = await listenNode(watched, { port: 0, hostname: "127.0.0.1" });
    const s = await open(listening.port);
    s.write(
      'POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"id":"echo:1",',
    );
    const records = parts.logger.records;
    // Hang up once the app has the request and is reading its body.
    for (let i = 0; i < 1000 && !handed; i++) await new Promise((r) => setTimeout(r, 2));
    expect(handed).toBe(true);
    s.destroy();
    for (let i = 0; i < 1000 && !records.some((r) => /Client closed/.test(r.msg)); i++)
      await new Promise((r) => setTimeout(r, 5));
    const closed = records.find((r) => /Client closed/.test(r.msg));
    expect(closed?.level).toBe("info");
    expect(records.filter((r) => r.level === "error" || r.level === "warn")).toEqual([]);
    const metrics = await fetch(`http://127.0.0.1:${listening.port}/metrics`);
    expect(await metrics.text()).toMatch(/CLIENT_CLOSED/);
  });
});

describe("the Host check on real connections", () => {
  it("follows the listener a connection reached: a loopback one refuses a rebound name even when another listener is beyond loopback", async () => {
    const parts = await fakeExecutor();
    // As in a container: listeners on loopback and on the container's address, one app.
    const http = createHttp({
      executor: parts.executor,
      logger: parts.logger,
      maxBodyBytes: 1 << 20,
      onStop: () => {},
      listenHost: "0.0.0.0",
    });
    listening = await listenNode(http.serve, { port: 0, hostname: "127.0.0.1" });
    const ask = async (host: string) => {
      const s = await open(listening!.port);
      let got = "";
      s.on("data", (d) => (got += d));
      s.write(`GET /health HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      await new Promise((r) => s.once("close", r));
      return got;
    };
    expect(await ask("attacker.example:2591")).toMatch(/^HTTP\/1\.1 403 [\s\S]*HOST_REFUSED/);
    expect(await ask(`127.0.0.1:${listening.port}`)).toMatch(/^HTTP\/1\.1 200 /);
  });
});
