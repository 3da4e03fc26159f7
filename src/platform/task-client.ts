/**
 * The executor's hot path on Node: POST a task's input to its container and
 * read the answer. One kept-alive undici Pool per task origin (measurably
 * faster than the global fetch), dropped with `forget()` when the task goes.
 */
import type { Socket } from "node:net";
import { Pool, buildConnector } from "undici";
import { TaskConnectError, TaskFailedError } from "../engine/errors.ts";
import type { TaskClient, TaskRequest, TaskResponse } from "../engine/ports.ts";

export interface UndiciTaskClientOptions {
  /** Connections per task container (default 32). */
  connections?: number;
  /** Idle time before a kept-alive connection closes (default 4000 ms). */
  keepAliveTimeout?: number;
  /** TCP connect timeout (default 5000 ms). */
  connectTimeout?: number;
}

/** Errors that mean no connection was made: nothing reached the task. */
const CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
]);
/** Errors of a connection that closed under a request. */
const CLOSED_CODES = new Set(["UND_ERR_SOCKET", "ECONNRESET", "EPIPE"]);

/** Set on a socket error: how many bytes the socket had received when it failed. */
const BYTES_READ = Symbol("bytesRead");

export class UndiciTaskClient implements TaskClient {
  #pools = new Map<string, Pool>();
  #opts: Required<UndiciTaskClientOptions>;
  #connector: buildConnector.connector;

  constructor(opts: UndiciTaskClientOptions = {}) {
    this.#opts = { connections: 32, keepAliveTimeout: 4000, connectTimeout: 5000, ...opts };
    this.#connector = buildConnector({ timeout: this.#opts.connectTimeout });
  }

  async send(req: TaskRequest): Promise<TaskResponse> {
    const pool = this.#pool(req.endpoint);
    let res: Awaited<ReturnType<Pool["request"]>>;
    try {
      res = await pool.request({
        path: req.path,
        method: req.method,
        body: req.body,
        headers: req.body === undefined ? undefined : { "content-type": "application/json" },
        signal: req.signal,
      });
    } catch (err) {
      if (req.signal?.aborted) throw req.signal.reason;
      throw requestError(err, req);
    }
    try {
      return { status: res.statusCode, body: await res.body.text() };
    } catch (err) {
      if (req.signal?.aborted) throw req.signal.reason;
      throw new TaskFailedError(`Task at "${req.endpoint}" broke off its answer: ${reason(err)}`, { cause: err });
    }
  }

  forget(endpoint: string): void {
    const pool = this.#pools.get(endpoint);
    if (pool === undefined) return;
    this.#pools.delete(endpoint);
    pool.destroy().catch(() => {});
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.close().catch(() => p.destroy())));
  }

  /** One pool per task endpoint, keyed by the endpoint string as the engine passes it. */
  #pool(endpoint: string): Pool {
    let pool = this.#pools.get(endpoint);
    if (pool === undefined) {
      pool = new Pool(endpoint, {
        connections: this.#opts.connections,
        pipelining: 1,
        keepAliveTimeout: this.#opts.keepAliveTimeout,
        // The engine bounds every request with its own timeout through the signal.
        headersTimeout: 0,
        bodyTimeout: 0,
        connect: (options, callback) => this.#connect(options, callback),
      });
      this.#pools.set(endpoint, pool);
    }
    return pool;
  }

  /** Connects as undici would, and remembers on a socket error whether the socket ever received a byte. */
  #connect(options: buildConnector.Options, callback: buildConnector.Callback): void {
    this.#connector(options, (err, socket) => {
      if (err || !socket) {
        callback(err ?? new Error("Connect failed"), null);
        return;
      }
      (socket as Socket).prependListener("error", (e: unknown) => {
        if (typeof e === "object" && e !== null) (e as Record<symbol, number>)[BYTES_READ] = socket.bytesRead;
      });
      callback(null, socket);
    });
  }
}

/**
 * No connection, or a connection that closed without ever receiving a byte
 * (fresh, and nothing answered: Docker's port proxy accepts and then closes
 * when the task does not listen yet) → TaskConnectError, safe to retry.
 * A kept-alive connection that had served answers and then failed under the
 * request → TaskFailedError: the task may have seen the request.
 */
function requestError(err: unknown, req: TaskRequest): Error {
  const origin = req.endpoint;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && CONNECT_CODES.has(code)) {
    return new TaskConnectError(`Cannot connect to the task at "${origin}": ${reason(err)}`, { cause: err });
  }
  if (typeof code === "string" && CLOSED_CODES.has(code)) {
    const bytesRead =
      (err as { socket?: { bytesRead?: number } }).socket?.bytesRead ?? (err as Record<symbol, number | undefined>)[BYTES_READ];
    if (bytesRead === 0) {
      return new TaskConnectError(`Task at "${origin}" closed the connection before answering: ${reason(err)}`, { cause: err });
    }
  }
  return new TaskFailedError(`Request to the task at "${origin}" failed: ${reason(err)}`, { cause: err });
}

function reason(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const message = typeof e.message === "string" ? e.message : String(err);
  return typeof e.code === "string" && !message.includes(e.code) ? `${message} (${e.code})` : message;
}

/** The Node task client (undici pools); Deno uses FetchTaskClient. */
export function createTaskClient(opts?: UndiciTaskClientOptions): UndiciTaskClient {
  return new UndiciTaskClient(opts);
}
