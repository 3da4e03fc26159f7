/**
 * Node wiring of the Docker transport: the Engine API over node:http, with
 * `socketPath` for `unix://` and host and port for plain `tcp://`. Node's
 * HTTP code is already loaded by the server, so this costs little memory
 * (docs/architecture.md). Two bounded agents, apart from the clients'
 * connections: kept-alive sockets for short calls, each answer within a
 * timeout; and sockets for long streams (log follows, events, pulls,
 * attach) without timeouts, which the callers end with their AbortSignal.
 */
import { Agent, request, type IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { DockerHost } from "./docker-host.ts";
import { EngineApi, type EngineFetch, type EngineResponse } from "./engine-api.ts";

type FetchHost = Exclude<DockerHost, { kind: "dockerode" }>;

export interface NodeEngineApiOptions {
  /** Force an API version (DOCKER_API_VERSION); otherwise negotiated. */
  apiVersion?: string;
  /** Most concurrent short API calls (default 16). */
  connections?: number;
  /** Most concurrent long streams: log follows, events, pulls, attach (default 256). */
  streamConnections?: number;
  /** A short call fails after this long without an answer or body progress, in ms (default 300 s). */
  callTimeoutMs?: number;
  /** How long a kept-alive socket waits for the next call, in ms (default 10 s). */
  keepAliveMs?: number;
}

/** Keeps sockets alive between calls for a while (less when the engine hints less). */
class CallAgent extends Agent {
  readonly #idleMs: number;

  constructor(opts: { maxSockets: number; idleMs: number }) {
    super({ keepAlive: true, maxSockets: opts.maxSockets });
    this.#idleMs = opts.idleMs;
  }

  override keepSocketAlive(socket: Socket): boolean {
    // Node returns whether to keep the socket; @types/node says void.
    const keep: unknown = super.keepSocketAlive(socket);
    if (!keep) return false;
    // An idle socket that times out is destroyed by the agent.
    if (!socket.timeout || socket.timeout > this.#idleMs) socket.setTimeout(this.#idleMs);
    return true;
  }
}

/** An EngineApi over node:http for a unix socket or a plain tcp host. */
export function nodeEngineApi(host: FetchHost, opts: NodeEngineApiOptions = {}): EngineApi {
  const calls = new CallAgent({
    maxSockets: opts.connections ?? 16,
    idleMs: opts.keepAliveMs ?? 10_000,
  });
  // One connection per stream: a stream ends by its caller's abort, which destroys the socket.
  const streams = new Agent({ keepAlive: false, maxSockets: opts.streamConnections ?? 256 });
  const target =
    host.kind === "unix" ? { socketPath: host.socketPath } : { host: host.host, port: host.port };
  return new EngineApi({
    fetch: httpFetch({ ...target, agent: calls, timeoutMs: opts.callTimeoutMs ?? 300_000 }),
    streamFetch: httpFetch({ ...target, agent: streams }),
    baseUrl: host.kind === "unix" ? "http://localhost" : host.baseUrl,
    transport: host.transport,
    apiVersion: opts.apiVersion,
    onClose: async () => {
      calls.destroy();
      streams.destroy();
    },
  });
}

interface Target {
  socketPath?: string;
  host?: string;
  port?: number;
  agent: Agent;
  /** Without it the request waits as long as the caller's signal lets it. */
  timeoutMs?: number;
}

/** One request per call; the answer's body is Node's IncomingMessage itself. */
function httpFetch(target: Target): EngineFetch {
  const { timeoutMs, ...where } = target;
  return (url, init) =>
    new Promise((resolve, reject) => {
      const { signal } = init;
      if (signal?.aborted) return reject(signal.reason);
      const { pathname, search } = new URL(url);
      const headers: Record<string, string> = { ...init.headers };
      if (init.body !== undefined) headers["content-length"] = String(Buffer.byteLength(init.body));
      let res: IncomingMessage | undefined;
      const req = request({
        ...where,
        path: pathname + search,
        method: init.method,
        headers,
        timeout: timeoutMs,
      });
      // Before the answer the request fails; after it the body does, so that a reader sees the error.
      const fail = (err: unknown) => (res ?? req).destroy(err as Error);
      const onAbort = () => fail(signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      const done = () => signal?.removeEventListener("abort", onAbort);
      if (timeoutMs !== undefined) {
        const message = `timed out: no answer or body progress in ${timeoutMs / 1000} s`;
        req.on("timeout", () => fail(Object.assign(new Error(message), { code: "ETIMEDOUT" })));
      }
      req.on("error", (err) => {
        done();
        reject(err);
      });
      req.on("response", (message) => {
        res = message;
        message.on("close", done);
        resolve(answer(message));
      });
      req.end(init.body);
    });
}

function answer(message: IncomingMessage): EngineResponse {
  const text = async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of message) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  };
  return {
    status: message.statusCode ?? 0,
    statusText: message.statusMessage ?? "",
    body: message,
    text,
    json: async () => JSON.parse(await text()) as unknown,
  };
}
