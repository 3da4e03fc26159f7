/**
 * The Node transport against a stand-in engine: a real node:http server on a
 * unix socket in a temporary folder, and one on 127.0.0.1.
 */
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EngineUnavailableError } from "../../../src/engine/errors.ts";
import { DockerApiError } from "../../../src/platform/docker/docker-api.ts";
import { parseDockerHost } from "../../../src/platform/docker/docker-host.ts";
import type { EngineApi } from "../../../src/platform/docker/engine-api.ts";
import {
  nodeEngineApi,
  type NodeEngineApiOptions,
} from "../../../src/platform/docker/node-transport.ts";

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

interface Seen {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
}

/** A stand-in engine: answers /version itself, the rest from `routes` ("METHOD /path" without the query). */
class FakeEngine {
  readonly seen: Seen[] = [];
  readonly sockets: Socket[] = [];
  routes: Record<string, Handler> = {};
  readonly server: Server;

  constructor() {
    this.server = createServer(async (req, res) => {
      let body = "";
      for await (const chunk of req) body += String(chunk);
      const url = new URL(req.url ?? "/", "http://localhost");
      this.seen.push({
        method: req.method ?? "",
        path: url.pathname + url.search,
        headers: req.headers,
        body,
      });
      if (url.pathname === "/version")
        return json(res, 200, { Version: "20.10.24", ApiVersion: "1.41", MinAPIVersion: "1.12" });
      const handler = this.routes[`${req.method} ${url.pathname}`];
      if (handler) return handler(req, res, body);
      json(res, 404, { message: `page not found: ${url.pathname}` });
    });
    this.server.on("connection", (socket: Socket) => this.sockets.push(socket));
  }

  async listen(target: string | { host: string; port: number }): Promise<void> {
    this.server.listen(target);
    await once(this.server, "listening");
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, "close");
  }
}

function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(value));
}

/** Answers with headers and a first chunk at once, then leaves the answer open. */
function holdOpen(into: ServerResponse[], first = "one\n"): Handler {
  return (_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.write(first);
    into.push(res);
  };
}

function unixApi(socketPath: string, opts?: NodeEngineApiOptions): EngineApi {
  const host = parseDockerHost({ DOCKER_HOST: `unix://${socketPath}` });
  if (host.kind !== "unix") throw new Error("expected a unix host");
  return nodeEngineApi(host, opts);
}

async function nextText(iterator: AsyncIterator<Uint8Array>): Promise<string> {
  const next = await iterator.next();
  if (next.done) throw new Error("the stream ended");
  return Buffer.from(next.value).toString("utf8");
}

describe("nodeEngineApi() over a unix socket", () => {
  let dir: string;
  let socketPath: string;
  let engine: FakeEngine;
  let api: EngineApi | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "node-transport-"));
    socketPath = join(dir, "docker.sock");
    engine = new FakeEngine();
    await engine.listen(socketPath);
  });

  afterEach(async () => {
    await api?.close();
    api = undefined;
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("negotiates the version, reads JSON answers and sends JSON bodies", async () => {
    engine.routes["GET /v1.41/containers/json"] = (_req, res) =>
      json(res, 200, [{ Id: "abc", Names: ["/t"], Labels: {}, State: "running" }]);
    engine.routes["POST /v1.41/containers/create"] = (_req, res) =>
      json(res, 201, { Id: "new-id", Warnings: [] });
    engine.routes["POST /v1.41/containers/new-id/start"] = (_req, res) => res.writeHead(204).end();
    api = unixApi(socketPath);
    expect(await api.listContainers({ label: ["x=1"] })).toEqual([
      expect.objectContaining({ Id: "abc" }),
    ]);
    expect(await api.createContainer("meca-1", { Image: "ünï" })).toBe("new-id");
    await api.startContainer("new-id");
    expect(engine.seen.map((s) => `${s.method} ${s.path}`)).toEqual([
      "GET /version",
      `GET /v1.41/containers/json?all=1&filters=${encodeURIComponent('{"label":["x=1"]}')}`,
      "POST /v1.41/containers/create?name=meca-1",
      "POST /v1.41/containers/new-id/start",
    ]);
    const create = engine.seen[2]!;
    expect(create.body).toBe('{"Image":"ünï"}');
    expect(create.headers["content-type"]).toBe("application/json");
    expect(create.headers["content-length"]).toBe(String(Buffer.byteLength('{"Image":"ünï"}')));
  });

  it("reads a short answer's text", async () => {
    engine.routes["GET /v1.41/containers/abc/logs"] = (_req, res) =>
      res.writeHead(200).end("\u0001\u0000\u0000\u0000\u0000\u0000\u0000\u0003hi\n");
    api = unixApi(socketPath);
    const res = await api.call("GET", "/containers/abc/logs");
    expect(res.status).toBe(200);
    expect(res.statusText).toBe("OK");
    expect(await res.text()).toBe("\u0001\u0000\u0000\u0000\u0000\u0000\u0000\u0003hi\n");
  });

  it("turns an error status into DockerApiError with the engine's message", async () => {
    engine.routes["GET /v1.41/containers/nope/json"] = (_req, res) =>
      json(res, 404, { message: "No such container: nope" });
    api = unixApi(socketPath);
    const err = await api.inspectContainer("nope").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DockerApiError);
    expect(err).toMatchObject({ status: 404, reason: "No such container: nope" });
  });

  it("delivers a streamed body chunk by chunk while the engine keeps the answer open", async () => {
    const open: ServerResponse[] = [];
    engine.routes["GET /v1.41/events"] = holdOpen(open, '{"n":1}\n');
    api = unixApi(socketPath);
    const source = await api.events({}, new AbortController().signal);
    const chunks = (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    expect(await nextText(chunks)).toBe('{"n":1}\n');
    open[0]!.write('{"n":2}\n');
    expect(await nextText(chunks)).toBe('{"n":2}\n');
    open[0]!.end();
    expect((await chunks.next()).done).toBe(true);
  });

  it("ends a stream's iteration with the reason when the caller aborts it, and closes its connection", async () => {
    const open: ServerResponse[] = [];
    engine.routes["GET /v1.41/containers/abc/logs"] = holdOpen(open);
    api = unixApi(socketPath);
    const ac = new AbortController();
    const source = await api.logs("abc", { follow: true, signal: ac.signal });
    const chunks = (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    expect(await nextText(chunks)).toBe("one\n");
    const pending = chunks.next();
    const reason = new Error("stop following");
    const closed = once(open[0]!, "close");
    ac.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await closed;
  });

  it("rejects with the reason when the caller aborts before the engine answers", async () => {
    let arrived!: () => void;
    const asked = new Promise<void>((resolve) => (arrived = resolve));
    engine.routes["POST /v1.41/containers/abc/attach"] = () => arrived();
    api = unixApi(socketPath, { apiVersion: "1.41" });
    const ac = new AbortController();
    const pending = api.attach("abc", ac.signal);
    await asked;
    const reason = new Error("give up");
    ac.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });

  it("keeps long streams apart from short calls, and without the calls' timeout", async () => {
    const open: ServerResponse[] = [];
    engine.routes["GET /v1.41/events"] = holdOpen(open);
    engine.routes["GET /v1.41/containers/json"] = (_req, res) => json(res, 200, []);
    api = unixApi(socketPath, { connections: 1, callTimeoutMs: 50 });
    const source = await api.events({}, new AbortController().signal);
    const chunks = (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    expect(await nextText(chunks)).toBe("one\n");
    // The one call connection is free although the stream is open.
    expect(await api.listContainers({})).toEqual([]);
    // Quiet for many times the calls' timeout, then the stream goes on.
    setTimeout(() => open[0]!.write("two\n"), 500);
    expect(await nextText(chunks)).toBe("two\n");
  });

  it("fails a short call that gets no answer within the timeout", async () => {
    engine.routes["GET /v1.41/info"] = () => {};
    api = unixApi(socketPath, { apiVersion: "1.41", callTimeoutMs: 100 });
    const err = await api.info().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineUnavailableError);
    expect((err as Error).message).toBe(
      `Cannot reach the Docker engine at "unix://${socketPath}": timed out: no answer or body progress in 0.1 s`,
    );
  });

  it("fails a short call whose body stops coming within the timeout", async () => {
    engine.routes["GET /v1.41/info"] = (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"Runtimes":');
    };
    api = unixApi(socketPath, { apiVersion: "1.41", callTimeoutMs: 100 });
    await expect(api.info()).rejects.toThrow("timed out: no answer or body progress in 0.1 s");
  });

  it("reports a missing socket as EngineUnavailableError naming the socket", async () => {
    const absent = join(dir, "absent.sock");
    api = unixApi(absent);
    const err = await api.version().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineUnavailableError);
    expect((err as Error).message).toBe(
      `Cannot reach the Docker engine at "unix://${absent}": connect ENOENT ${absent}`,
    );
  });

  it("reuses a kept-alive connection, and close() ends it", async () => {
    engine.server.keepAliveTimeout = 0;
    engine.routes["GET /v1.41/info"] = (_req, res) => json(res, 200, {});
    const closing = unixApi(socketPath, { keepAliveMs: 600_000 });
    api = closing;
    await closing.info();
    await closing.info();
    expect(engine.sockets).toHaveLength(1);
    const closed = once(engine.sockets[0]!, "close");
    await closing.close();
    api = undefined;
    await closed;
  });

  it("closes a kept-alive connection left idle for keepAliveMs", async () => {
    engine.server.keepAliveTimeout = 0;
    engine.routes["GET /v1.41/info"] = (_req, res) => json(res, 200, {});
    api = unixApi(socketPath, { keepAliveMs: 50 });
    await api.info();
    expect(engine.sockets).toHaveLength(1);
    await once(engine.sockets[0]!, "close");
  });
});

describe("nodeEngineApi() over tcp on 127.0.0.1", () => {
  let engine: FakeEngine;
  let api: EngineApi | undefined;

  beforeEach(async () => {
    engine = new FakeEngine();
    await engine.listen({ host: "127.0.0.1", port: 0 });
  });

  afterEach(async () => {
    await api?.close();
    await engine.close();
  });

  it("calls the engine at its host and port", async () => {
    engine.routes["GET /v1.41/info"] = (_req, res) => json(res, 200, { Runtimes: { runc: {} } });
    const host = parseDockerHost({ DOCKER_HOST: `tcp://127.0.0.1:${engine.port}` });
    if (host.kind !== "tcp") throw new Error("expected a tcp host");
    api = nodeEngineApi(host);
    expect(await api.info()).toEqual({ Runtimes: { runc: {} } });
    expect(engine.seen.map((s) => `${s.method} ${s.path} ${s.headers.host}`)).toEqual([
      `GET /version 127.0.0.1:${engine.port}`,
      `GET /v1.41/info 127.0.0.1:${engine.port}`,
    ]);
  });

  it("reports a refused connection as EngineUnavailableError", async () => {
    const port = engine.port;
    await engine.close();
    engine = new FakeEngine();
    await engine.listen({ host: "127.0.0.1", port: 0 });
    const host = parseDockerHost({ DOCKER_HOST: `tcp://127.0.0.1:${port}` });
    if (host.kind !== "tcp") throw new Error("expected a tcp host");
    api = nodeEngineApi(host);
    const err = await api.version().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineUnavailableError);
    expect((err as Error).message).toBe(
      `Cannot reach the Docker engine at "tcp://127.0.0.1:${port}": connect ECONNREFUSED 127.0.0.1:${port}`,
    );
  });
});
