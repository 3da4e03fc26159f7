/**
 * The executor's hot path on Node: POST a task's input to its container and
 * read the answer. One kept-alive undici Pool per task origin (measurably
 * faster than the global fetch), dropped with `forget()` when the task goes.
 * A task is a stranger: its answer is counted while it streams and cut off
 * past `maxAnswerBytes`, and its headers and body each have a timeout.
 */
import type { Socket } from "node:net";
import { Pool, buildConnector } from "undici";
import { TaskAnswerTooLargeError, TaskConnectError, TaskFailedError, TaskTimeoutError } from "../engine/errors.ts";
import type { TaskClient, TaskRequest, TaskResponse } from "../engine/ports.ts";

export interface UndiciTaskClientOptions {
  /** Connections per task container (default 32). */
  connections?: number;
  /** Idle time before a kept-alive connection closes (default 4000 ms). */
  keepAliveTimeout?: number;
  /** TCP connect timeout (default 5000 ms). */
  connectTimeout?: number;
  /** Largest answer body read; a longer one cuts the connection (default 16 MiB). */
  maxAnswerBytes?: number;
  /**
   * Longest wait for the answer's headers, and for each next piece of its body
   * (default 300000 ms, the default request timeout; 0 turns them off).
   */
  answerTimeout?: number;
}

export const DEFAULT_MAX_ANSWER_BYTES = 16 * 1024 * 1024;

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

/** The error of requests cut because their task was removed (forget). */
const TASK_REMOVED = "MECA_TASK_REMOVED";

/** Set on a socket error: how many bytes the socket had received when it failed. */
const BYTES_READ = Symbol("bytesRead");

export class UndiciTaskClient implements TaskClient {
  #pools = new Map<string, Pool>();
  #opts: Required<UndiciTaskClientOptions>;
  #connector: buildConnector.connector;

  constructor(opts: UndiciTaskClientOptions = {}) {
    this.#opts = {
      connections: 32,
      keepAliveTimeout: 4000,
      connectTimeout: 5000,
      maxAnswerBytes: DEFAULT_MAX_ANSWER_BYTES,
      answerTimeout: 300_000,
      ...opts,
    };
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
      if (isTimeout(err)) throw new TaskTimeoutError(`Task at "${req.endpoint}" sent no answer headers in time: ${reason(err)}`);
      throw requestError(err, req);
    }
    try {
      return { status: res.statusCode, body: await this.#readBody(res, req.endpoint) };
    } catch (err) {
      if (req.signal?.aborted) throw req.signal.reason;
      if (err instanceof TaskFailedError) throw err;
      if (isTimeout(err)) throw new TaskTimeoutError(`Task at "${req.endpoint}" stopped sending its answer: ${reason(err)}`);
      throw new TaskFailedError(`Task at "${req.endpoint}" broke off its answer: ${reason(err)}`, { cause: err });
    }
  }

  /** The body as text, counted while it streams; past the limit the body is destroyed, which closes its connection. */
  async #readBody(res: Awaited<ReturnType<Pool["request"]>>, endpoint: string): Promise<string> {
    const max = this.#opts.maxAnswerBytes;
    const tooLarge = () => {
      res.body.destroy();
      return new TaskAnswerTooLargeError(endpoint, max);
    };
    const declared = res.headers["content-length"];
    if (declared !== undefined) {
      if (Number(declared) > max) throw tooLarge();
      // undici holds a body to its declared length: read it whole, the fast way.
      return res.body.text();
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > max) throw tooLarge();
      chunks.push(chunk);
    }
    return (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)).toString("utf8");
  }

  forget(endpoint: string): void {
    const pool = this.#pools.get(endpoint);
    if (pool === undefined) return;
    this.#pools.delete(endpoint);
    // A request still connecting (a removed task's address no longer answers ARP, so its connect
    // hangs) or that got no byte back ends with this error: nothing reached the task.
    pool.destroy(Object.assign(new Error("The task was removed"), { code: TASK_REMOVED })).catch(() => {});
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
        // The engine bounds every request as a whole through the signal; these bound each wait within it.
        headersTimeout: this.#opts.answerTimeout,
        bodyTimeout: this.#opts.answerTimeout,
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
  if (code === TASK_REMOVED && ((err as Record<symbol, number | undefined>)[BYTES_READ] ?? 0) === 0) {
    return new TaskConnectError(`Task at "${origin}" was removed before it answered`, { cause: err });
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

function isTimeout(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT";
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
