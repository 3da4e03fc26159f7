/**
 * One HTTP path (pipeline.ts), two ways in: Node's http server hands it Node's request as it is
 * (no Web Request, no Hono), the Hono app a Web Request (`app.request()`, Deno). Both must answer
 * alike: each case here goes both ways, and the answers are compared.
 */
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { listenNode, type Listening } from "../../src/http/node-listen.ts";
import { fakeApp } from "../support/fake-app.ts";

let listening: Listening | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await listening?.close();
  listening = undefined;
});

type App = Awaited<ReturnType<typeof fakeApp>>;

/** Serves `f.serve` on a free loopback port, counting the requests that reach the Hono app (the test's own). */
async function serve(f: App) {
  const fetched: string[] = [];
  const appFetch = f.app.fetch;
  f.app.fetch = (req: Request, ...rest: unknown[]) => (
    fetched.push(`${req.method} ${new URL(req.url).pathname}`),
    appFetch(req, ...(rest as []))
  );
  listening = await listenNode(f.serve, { port: 0, hostname: "127.0.0.1" });
  return { base: `http://127.0.0.1:${listening.port}`, fetched };
}

interface Seen {
  status: number;
  body: unknown;
  type: string | null;
  requestId: string | null;
  retryAfter: string | null;
}

async function seen(res: Response): Promise<Seen> {
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: the text itself
  }
  return {
    status: res.status,
    body,
    type: res.headers.get("content-type"),
    requestId: res.headers.get("x-request-id"),
    retryAfter: res.headers.get("retry-after"),
  };
}

/** Raw HTTP/1.1 over a socket (for headers fetch will not send, and for hanging up); resolves with all the server sent. */
async function raw(
  port: number,
  request: string,
  opts: { hangUpAfterWrite?: () => Promise<void> } = {},
): Promise<string> {
  const s = connect(port, "127.0.0.1");
  sockets.push(s);
  s.on("error", () => {});
  await new Promise((r) => s.once("connect", r));
  let got = "";
  s.on("data", (d) => (got += d));
  s.write(request);
  if (opts.hangUpAfterWrite) {
    await opts.hangUpAfterWrite();
    s.destroy();
    return got;
  }
  await new Promise((r) => s.once("close", r));
  return got;
}

const post = (body: string, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  body,
  headers: { "content-type": "application/json", ...headers },
});

describe.skipIf("Deno" in globalThis)("POST / and GET /health on Node's http server", () => {
  it("serves every request on Node without the Hono app: POST /, the reads, with a query, HEAD, a path it does not know", async () => {
    const f = await fakeApp();
    const { base, fetched } = await serve(f);
    const ok = await seen(
      await fetch(`${base}/`, post(JSON.stringify({ id: "echo:1", input: "hi" }))),
    );
    expect(ok).toMatchObject({
      status: 200,
      body: { success: true, msg: "hi" },
      type: "application/json",
    });
    expect(fetched).toEqual([]);
    expect(await seen(await fetch(`${base}/health`))).toMatchObject({
      status: 200,
      body: { status: "ok" },
      type: "application/json",
    });
    expect(fetched).toEqual([]);
    expect((await fetch(`${base}/health?a=1`)).status).toBe(200);
    const q = await fetch(`${base}/?a=1`, post(JSON.stringify({ id: "echo:1", input: "q" })));
    expect(await q.json()).toEqual({ success: true, msg: "q" });
    const notFound = await seen(await fetch(`${base}/`, { headers: { "x-request-id": "n-1" } }));
    expect(notFound).toEqual(
      await seen(await f.app.request("/", { headers: { "x-request-id": "n-1" } })),
    );
    expect(notFound).toMatchObject({ status: 404, body: { error: "NOT_FOUND" } });
    const head = await fetch(`${base}/health`, { method: "HEAD" });
    expect([head.status, await head.text()]).toEqual([200, ""]);
    expect(fetched).toEqual(["GET /"]); // the test's own app.request() only
  });

  it.each([
    ["a task's answer", JSON.stringify({ id: "echo:1", input: 'in "quotes" ✓' })],
    ["no input", JSON.stringify({ id: "echo:1" })],
    ["a body that is not JSON", "{"],
    ["a body that is not an object", "[1]"],
    ["a field of the wrong type", JSON.stringify({ id: "echo:1", resource: { cpu: "two" } })],
    ["an image the engine does not have", JSON.stringify({ id: "missing:1", input: "x" })],
    ["an empty body", ""],
  ])("answers %s as the Hono route does", async (_name, body) => {
    const f = await fakeApp();
    const { base } = await serve(f);
    const viaHono = await seen(await f.app.request("/", post(body, { "x-request-id": "same-1" })));
    const viaNode = await seen(await fetch(`${base}/`, post(body, { "x-request-id": "same-1" })));
    expect(viaNode).toEqual(viaHono);
    expect(viaNode.requestId).toBe("same-1");
  });

  it("answers GET /health as the Hono route does, up and with the engine away, with its request id, checks and metrics", async () => {
    const f = await fakeApp({ accessLog: true });
    const { base, fetched } = await serve(f);
    const get = { headers: { "x-request-id": "h-1" } };
    const up = await seen(await fetch(`${base}/health`, get));
    expect(up).toEqual(await seen(await f.app.request("/health", get)));
    expect(up).toMatchObject({ status: 200, body: { status: "ok" }, requestId: "h-1" });
    const status = f.executor.engineStatus();
    f.executor.engineStatus = () => ({
      ...status,
      reachable: false,
      error: "connect ENOENT /var/run/docker.sock",
    });
    const down = await seen(await fetch(`${base}/health`, get));
    expect(down).toEqual(await seen(await f.app.request("/health", get)));
    expect(down).toMatchObject({
      status: 503,
      retryAfter: "5",
      body: {
        status: "unavailable",
        msg: "Docker engine unreachable: connect ENOENT /var/run/docker.sock",
      },
    });
    const rebound = await raw(
      listening!.port,
      "GET /health HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n",
    );
    expect(rebound).toMatch(/^HTTP\/1\.1 403 [\s\S]*"error":"HOST_REFUSED"/);
    // Only the test's own two app.request() calls reached the Hono app.
    expect(fetched).toEqual(["GET /health", "GET /health"]);
    const text = await (await f.app.request("/metrics")).text();
    const lines = text
      .split("\n")
      .filter(
        (l) => l.includes('method="GET"') && l.includes('route="/health"') && l.includes("_total"),
      );
    // Two of each from each route: the Node route's and the Hono route's count in the same series.
    expect(
      lines.some((l) => l.includes('status="200"') && l.includes('outcome="ok"') && / 2$/.test(l)),
    ).toBe(true);
    expect(
      lines.some(
        (l) =>
          l.includes('status="503"') && l.includes('outcome="ENGINE_UNAVAILABLE"') && / 2$/.test(l),
      ),
    ).toBe(true);
    expect(
      lines.some(
        (l) => l.includes('status="403"') && l.includes('outcome="HOST_REFUSED"') && / 1$/.test(l),
      ),
    ).toBe(true);
    expect(
      f.logger.records.filter((r) => r.msg === "Request" && r.fields.requestId === "h-1"),
    ).toHaveLength(4);
  });

  it("serves /stats, /tasks, /metrics and the admin routes on Node as the Hono app does", async () => {
    const f = await fakeApp();
    const { base, fetched } = await serve(f);
    await fetch(`${base}/`, post(JSON.stringify({ id: "echo:1", input: "x" })));
    for (const path of ["/stats", "/tasks"]) {
      const viaNode = await seen(
        await fetch(`${base}${path}`, { headers: { "x-request-id": "r-1" } }),
      );
      expect(viaNode).toEqual(
        await seen(await f.app.request(path, { headers: { "x-request-id": "r-1" } })),
      );
      expect(viaNode).toMatchObject({ status: 200, type: "application/json", requestId: "r-1" });
    }
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.headers.get("content-type")).toBe(
      (await f.app.request("/metrics")).headers.get("content-type"),
    );
    const text = await metrics.text();
    expect(text).toMatch(
      /meca_http_requests_total\{method="GET",route="\/stats",status="200",outcome="ok"\} 2/,
    );
    expect(fetched).toEqual(["GET /stats", "GET /tasks", "GET /metrics"]); // the test's own app.request() calls only
    expect((await fetch(`${base}/pause`, { method: "POST" })).status).toBe(200);
    expect(
      await seen(
        await fetch(`${base}/unpause`, { method: "POST", headers: { "x-request-id": "u-1" } }),
      ),
    ).toEqual(
      await seen(
        await f.app.request("/unpause", { method: "POST", headers: { "x-request-id": "u-1" } }),
      ),
    );
    expect(fetched.length).toBe(4); // the test's own app.request() calls only
  });

  it("makes a request id when the client's is absent or malformed", async () => {
    const f = await fakeApp();
    const { base } = await serve(f);
    const body = JSON.stringify({ id: "echo:1" });
    const absent = await seen(await fetch(`${base}/`, post(body)));
    const bad = await seen(await fetch(`${base}/`, post(body, { "x-request-id": "a b" })));
    expect(absent.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(bad.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("bounds the body as the Hono route does: 413 on a declared length and on a chunked body, before the engine", async () => {
    const f = await fakeApp({ maxBodyBytes: 1000 });
    const { base } = await serve(f);
    const big = JSON.stringify({ id: "echo:1", input: "x".repeat(2000) });
    const declared = await seen(await fetch(`${base}/`, post(big, { "x-request-id": "big-1" })));
    expect(declared).toEqual(
      await seen(
        await f.app.request(
          "/",
          post(big, { "x-request-id": "big-1", "content-length": String(big.length) }),
        ),
      ),
    );
    expect(declared).toMatchObject({ status: 413, body: { error: "PAYLOAD_TOO_LARGE" } });
    const chunks = new TextEncoder().encode(big);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let at = 0; at < chunks.length; at += 300) c.enqueue(chunks.subarray(at, at + 300));
        c.close();
      },
    });
    const streamed = await seen(
      await fetch(`${base}/`, { ...post(""), body: stream, duplex: "half" } as RequestInit),
    );
    expect(streamed).toMatchObject({ status: 413, body: { error: "PAYLOAD_TOO_LARGE" } });
    expect(f.backend.created).toEqual([]);
    expect(
      await seen(await fetch(`${base}/`, post(JSON.stringify({ id: "echo:1", input: "ok" })))),
    ).toMatchObject({ status: 200, body: { msg: "ok" } });
  });

  it("shares the app's input budget: 503 OVERLOADED with Retry-After past max_buffered_input_bytes, and given back", async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const f = await fakeApp({
      maxBufferedInputBytes: 1500,
      images: { "slow:1": { respond: async (body) => (await held, { status: 200, body }) } },
    });
    const { base } = await serve(f);
    const body = (id: string) => JSON.stringify({ id, input: "y".repeat(1000) });
    const first = fetch(`${base}/`, post(body("slow:1")));
    for (let i = 0; i < 500 && f.executor.tasks()[0]?.in_flight !== 1; i++)
      await new Promise((r) => setTimeout(r, 2));
    expect(f.executor.tasks()[0]?.in_flight).toBe(1);
    // The budget is one for both routes: the Hono route sees what the Node route holds.
    expect(await seen(await f.app.request("/", post(body("echo:1"))))).toMatchObject({
      status: 503,
      body: { error: "OVERLOADED" },
      retryAfter: "1",
    });
    expect(await seen(await fetch(`${base}/`, post(body("echo:1"))))).toMatchObject({
      status: 503,
      body: { error: "OVERLOADED" },
      retryAfter: "1",
    });
    release();
    expect((await first).status).toBe(200);
    expect((await fetch(`${base}/`, post(body("echo:1")))).status).toBe(200);
  });

  it("refuses a web origin (403 ORIGIN_REFUSED) and a rebound Host on loopback (403 HOST_REFUSED) before the engine", async () => {
    const f = await fakeApp();
    const { base } = await serve(f);
    const body = JSON.stringify({ id: "echo:1", input: "x" });
    const origin = await seen(
      await fetch(`${base}/`, post(body, { origin: "https://evil.example" })),
    );
    expect(origin).toMatchObject({ status: 403, body: { error: "ORIGIN_REFUSED" } });
    const local = await seen(
      await fetch(`${base}/`, post(body, { origin: "http://localhost:3000" })),
    );
    expect(local).toMatchObject({ status: 200 });
    const rebound = await raw(
      listening!.port,
      `POST / HTTP/1.1\r\nHost: attacker.example\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    expect(rebound).toMatch(/^HTTP\/1\.1 403 [\s\S]*"error":"HOST_REFUSED"/);
    expect(f.backend.created).toHaveLength(1);
  });

  it("a client that hangs up mid-body is a 499 CLIENT_CLOSED logged at info, counted in the metrics", async () => {
    const f = await fakeApp();
    const { fetched } = await serve(f);
    const records = f.logger.records;
    await raw(
      listening!.port,
      'POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"id":"echo:1",',
      {
        hangUpAfterWrite: () => new Promise((r) => setTimeout(r, 20)),
      },
    );
    for (let i = 0; i < 1000 && !records.some((r) => /Client closed/.test(r.msg)); i++)
      await new Promise((r) => setTimeout(r, 5));
    expect(records.find((r) => /Client closed/.test(r.msg))?.level).toBe("info");
    expect(records.filter((r) => r.level === "error" || r.level === "warn")).toEqual([]);
    expect(fetched).toEqual([]);
    expect(await (await f.app.request("/metrics")).text()).toMatch(
      /route="\/"[^\n]*status="499"[^\n]*CLIENT_CLOSED|CLIENT_CLOSED[^\n]*route="\/"/,
    );
  });

  it("counts its requests in the app's metrics, and writes the access line when asked", async () => {
    const f = await fakeApp({ accessLog: true });
    const { base } = await serve(f);
    await fetch(
      `${base}/`,
      post(JSON.stringify({ id: "echo:1", input: "x" }), { "x-request-id": "acc-1" }),
    );
    await fetch(`${base}/`, post("{"));
    const text = await (await f.app.request("/metrics")).text();
    const lines = text
      .split("\n")
      .filter(
        (l) => l.includes('method="POST"') && l.includes('route="/"') && l.includes("_total"),
      );
    expect(
      lines.some((l) => l.includes('status="200"') && l.includes('outcome="ok"') && / 1$/.test(l)),
    ).toBe(true);
    expect(lines.some((l) => l.includes('status="400"') && / 1$/.test(l))).toBe(true);
    const line = f.logger.records.find(
      (r) => r.msg === "Request" && r.fields.requestId === "acc-1",
    );
    expect(line).toMatchObject({
      level: "debug",
      fields: { method: "POST", path: "/", status: 200, outcome: "ok" },
    });
  });
});
