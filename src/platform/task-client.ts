/**
 * The executor's hot path on Node: POST a task's input to its container and
 * read the answer. One kept-alive undici Pool per task origin (measurably
 * faster than the global fetch, and than node:http's client), dropped with
 * `forget()` when the task goes. Requests go through the Pool's `dispatch`
 * with a handler of our own, not `request`: no body stream per answer.
 * A task is a stranger: its answer is counted while it streams and cut off
 * past `maxAnswerBytes`, and its headers and body each have a timeout.
 */
import type { Socket } from "node:net";
import { Pool, buildConnector, type Dispatcher } from "undici";
import {
  TaskAnswerTooLargeError,
  TaskConnectError,
  TaskFailedError,
  TaskTimeoutError,
} from "../engine/errors.ts";
import type { TaskClient, TaskRequest, TaskResponse } from "../engine/ports.ts";
import { reasonFor } from "./task-address.ts";

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

  send(req: TaskRequest): Promise<TaskResponse> {
    if (req.signal?.aborted) return Promise.reject(req.signal.reason);
    const pool = this.#pool(req.endpoint);
    return new Promise((resolve, reject) => {
      const answer = new Answer(req, this.#opts.maxAnswerBytes, resolve, reject);
      pool.dispatch(
        {
          path: req.path,
          method: req.method,
          body: req.body,
          headers: req.body === undefined ? undefined : JSON_HEADERS,
        },
        answer,
      );
    });
  }

  forget(endpoint: string): void {
    const pool = this.#pools.get(endpoint);
    if (pool === undefined) return;
    this.#pools.delete(endpoint);
    // A request still connecting (a removed task's address no longer answers ARP, so its connect
    // hangs) or that got no byte back ends with this error: nothing reached the task.
    pool
      .destroy(Object.assign(new Error("The task was removed"), { code: TASK_REMOVED }))
      .catch(() => {});
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
        if (typeof e === "object" && e !== null)
          (e as Record<symbol, number>)[BYTES_READ] = socket.bytesRead;
      });
      callback(null, socket);
    });
  }
}

const JSON_HEADERS = { "content-type": "application/json" };

/**
 * One request's answer, read through undici's dispatch handler: the chunks are
 * counted as they come and kept until the end, with no stream per response.
 * The client's signal aborts it (the handler is its own listener, so no closure
 * per request); a body past `max` aborts it too, which closes its connection.
 */
class Answer {
  #req: TaskRequest;
  #max: number;
  #resolve: (r: TaskResponse) => void;
  #reject: (e: unknown) => void;
  #controller: Dispatcher.DispatchController | undefined;
  #status: number | undefined;
  #chunks: Buffer[] = [];
  #size = 0;
  #settled = false;
  /** Bytes of the request's body. */
  #sent: number;

  constructor(
    req: TaskRequest,
    max: number,
    resolve: (r: TaskResponse) => void,
    reject: (e: unknown) => void,
  ) {
    this.#req = req;
    this.#sent = req.body === undefined ? 0 : Buffer.byteLength(req.body);
    this.#max = max;
    this.#resolve = resolve;
    this.#reject = reject;
    req.signal?.addEventListener("abort", this);
  }

  /** The client's signal aborted: a request still waiting for a connection fails now, and is aborted once it gets one. */
  handleEvent(): void {
    const reason = this.#req.signal!.reason;
    if (this.#controller !== undefined) this.#controller.abort(reason);
    else this.#fail(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#req.signal?.aborted) controller.abort(this.#req.signal.reason);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (status < 200) return; // 1xx: the answer follows
    this.#status = status;
    const declared = headers["content-length"];
    if (declared !== undefined && Number(declared) > this.#max)
      controller.abort(new TaskAnswerTooLargeError(this.#req.endpoint, this.#max));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#size += chunk.length;
    if (this.#size > this.#max)
      controller.abort(new TaskAnswerTooLargeError(this.#req.endpoint, this.#max));
    else this.#chunks.push(chunk);
  }

  onResponseEnd(): void {
    if (!this.#settle()) return;
    const c = this.#chunks;
    const body =
      c.length === 1 ? c[0]!.toString("utf8") : Buffer.concat(c, this.#size).toString("utf8");
    this.#resolve({ status: this.#status ?? 0, body, sent: this.#sent, received: this.#size });
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    const req = this.#req;
    if (req.signal?.aborted) return this.#fail(req.signal.reason);
    if (err instanceof TaskAnswerTooLargeError) return this.#fail(err);
    if (this.#status === undefined) {
      if (isTimeout(err))
        return this.#fail(
          new TaskTimeoutError(
            `Task sent no answer headers in time (${reasonFor(err, req.endpoint)})`,
            { cause: err, where: req.endpoint },
          ),
        );
      return this.#fail(requestError(err, req));
    }
    if (isTimeout(err))
      return this.#fail(
        new TaskTimeoutError(`Task stopped sending its answer (${reasonFor(err, req.endpoint)})`, {
          cause: err,
          where: req.endpoint,
        }),
      );
    this.#fail(
      new TaskFailedError(`Task broke off its answer (${reasonFor(err, req.endpoint)})`, {
        cause: err,
        where: req.endpoint,
      }),
    );
  }

  #fail(err: unknown): void {
    if (!this.#settle()) return;
    this.#chunks.length = 0;
    this.#reject(err);
  }

  /** True the first time only: the answer is decided, and the signal no longer needs this listener. */
  #settle(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    this.#req.signal?.removeEventListener("abort", this);
    return true;
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
  const where = req.endpoint;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && CONNECT_CODES.has(code)) {
    return new TaskConnectError(`Cannot connect to the task (${reasonFor(err, where)})`, {
      cause: err,
      where,
    });
  }
  if (
    code === TASK_REMOVED &&
    ((err as Record<symbol, number | undefined>)[BYTES_READ] ?? 0) === 0
  ) {
    return new TaskConnectError(`Task was removed before it answered`, { cause: err, where });
  }
  if (typeof code === "string" && CLOSED_CODES.has(code)) {
    const bytesRead =
      (err as { socket?: { bytesRead?: number } }).socket?.bytesRead ??
      (err as Record<symbol, number | undefined>)[BYTES_READ];
    if (bytesRead === 0) {
      return new TaskConnectError(
        `Task closed the connection before answering (${reasonFor(err, where)})`,
        { cause: err, where },
      );
    }
  }
  return new TaskFailedError(`Request to the task failed (${reasonFor(err, where)})`, {
    cause: err,
    where,
  });
}

function isTimeout(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT";
}

/** The Node task client (undici pools); Deno uses FetchTaskClient. */
export function createTaskClient(opts?: UndiciTaskClientOptions): UndiciTaskClient {
  return new UndiciTaskClient(opts);
}
