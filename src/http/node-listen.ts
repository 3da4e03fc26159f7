/**
 * Serves the one HTTP path (pipeline.ts) with Node's http server, with bounds on connections and
 * on slow clients. Node's request goes to the path as it is and the answer is written from its
 * plain parts: no Web Request or Response, no Hono adapter, no node:http2 (docs/architecture.md).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { readBody, type BodyLimits } from "./body.ts";
import type { Answer } from "./errors.ts";
import { clientSignal, nodeBodySource } from "./node-body.ts";
import type { Logger } from "../engine/ports.ts";
import type { PlainRequest, Serve } from "./pipeline.ts";

export interface Listening {
  port: number;
  close(): Promise<void>;
}

export interface ListenOptions {
  port: number;
  hostname: string;
  /** Open client connections at most; the next ones get 503 and are closed (default unbounded). */
  maxConnections?: number;
  /** Time a client has to send a request's headers (ms; Node's default 60 s). */
  headersTimeoutMs?: number;
  /** Time an idle kept-alive connection stays open (ms; Node's default 5 s). */
  idleTimeoutMs?: number;
  /** Time a client has to send a whole request, headers and body (ms); past it, 408 and the connection closes. */
  requestReadTimeoutMs?: number;
  /** Where a defect of the HTTP path is logged (default: the console). */
  logger?: Logger;
}

/**
 * How often Node checks the headers and request deadlines of open connections (ms). Node's
 * default of 30 s lets a deadline run up to 30 s late; a check walks the open connections, at
 * most max_connections of them.
 */
const DEADLINE_CHECK_MS = 1000;

const OVERLOADED_BODY = JSON.stringify({
  success: false,
  msg: "Too many open connections to the executor; retry later",
  error: "OVERLOADED",
});
const OVERLOADED = [
  "HTTP/1.1 503 Service Unavailable",
  "content-type: application/json",
  "retry-after: 1",
  "connection: close",
  `content-length: ${Buffer.byteLength(OVERLOADED_BODY)}`,
  "",
  OVERLOADED_BODY,
].join("\r\n");

export function listenNode(serve: Serve, opts: ListenOptions): Promise<Listening> {
  return new Promise((resolve, reject) => {
    const defect = (err: unknown) =>
      opts.logger
        ? opts.logger.error("Unexpected error", {
            error: err instanceof Error ? (err.stack ?? err.message) : String(err),
          })
        : console.error("Unexpected error in the HTTP path", err);
    const handle: Listener = (req, res) => void respond(serve, req, res, defect);
    let cap: ConnectionCap | undefined;
    // One hook on each request's end: the cap's count of requests in flight, and the close after a 413.
    const hooked: Listener = (req, res) => {
      cap?.began(req.socket);
      res.once("finish", () => {
        cap?.ended(req.socket);
        if (res.statusCode === 413) lingerThenClose(req);
      });
      handle(req, res);
    };
    const server = createServer({ connectionsCheckingInterval: DEADLINE_CHECK_MS }, hooked);
    server.listen(opts.port, opts.hostname, () => {
      resolve({
        port: (server.address() as { port: number }).port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
    if (opts.requestReadTimeoutMs !== undefined) server.requestTimeout = opts.requestReadTimeoutMs;
    if (opts.headersTimeoutMs !== undefined) {
      // Node requires headersTimeout <= requestTimeout (0 means none): the whole request's deadline bounds its headers too.
      server.headersTimeout =
        server.requestTimeout === 0
          ? opts.headersTimeoutMs
          : Math.min(opts.headersTimeoutMs, server.requestTimeout);
    }
    if (opts.idleTimeoutMs !== undefined) server.keepAliveTimeout = opts.idleTimeoutMs;
    if (opts.maxConnections !== undefined) cap = new ConnectionCap(server, opts.maxConnections);
    server.once("error", reject);
  });
}

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

async function respond(
  serve: Serve,
  req: IncomingMessage,
  res: ServerResponse,
  defect: (err: unknown) => void,
): Promise<void> {
  try {
    write(res, await serve(new NodeRequest(req, res)));
  } catch (err) {
    // The path answers every request error itself: only a defect gets here, and no answer can follow.
    defect(err);
    res.destroy();
  }
}

/** Node's request as the path reads it (a class: its methods cost no closures per request). */
class NodeRequest implements PlainRequest {
  readonly method: string;
  readonly url: string;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  #signal: AbortSignal | undefined;

  constructor(req: IncomingMessage, res: ServerResponse) {
    this.method = req.method ?? "GET";
    this.url = req.url ?? "/";
    this.#req = req;
    this.#res = res;
  }

  get localAddress(): string | undefined {
    return this.#req.socket.localAddress;
  }

  header(name: string): string | undefined {
    const v = this.#req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  }

  body(limits: BodyLimits): Promise<string> {
    return readBody(limits, this.#req.headers["content-length"], nodeBodySource(this.#req));
  }

  signal(): AbortSignal {
    return (this.#signal ??= clientSignal(this.#res));
  }

  aborted(): boolean {
    return this.#signal?.aborted === true;
  }
}

/** Writes `a` in one go: headers and body (none for HEAD: Node leaves it out). */
function write(res: ServerResponse, a: Answer): void {
  if (res.destroyed) return;
  a.headers["content-length"] = String(Buffer.byteLength(a.body));
  res.writeHead(a.status, a.headers);
  res.end(a.body);
}

/** How long a connection refused with 413 lingers, half-closed, for its client to read the answer (ms). */
const LINGER_MS = 2_000;

/**
 * A body past its limit is never read: after its 413 the connection goes. Not at once — closing a
 * socket with unread input resets it, and a client still sending would lose the answer — but
 * half-closed right after the answer, the rest of what the client sends dropped, and closed for
 * good when the client closes or LINGER_MS later (the lingering close of HTTP servers).
 */
function lingerThenClose(req: IncomingMessage): void {
  const socket = req.socket;
  req.resume();
  socket.end();
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
  socket.once("end", () => socket.destroy());
}

/**
 * How long a connection must have been idle before a newcomer may displace it (ms): a connection
 * just opened has had no time to send its request (its bytes may still be on their way, or unread
 * behind a burst of other connections), so it is never the one that goes.
 */
const DISPLACE_AFTER_MS = 1_000;

/**
 * At most `max` open connections, so that file descriptors stay free for the Docker socket and
 * the tasks. At the cap a new connection displaces the one that has been idle longest with no
 * request in flight (one that never sent a request, or sits kept alive between requests), once it
 * has been idle DISPLACE_AFTER_MS: idle connections cannot lock other clients out for longer than
 * that. Otherwise (every connection busy, or idle only just) the new one is answered 503 at once
 * and closed, before its request is read.
 */
class ConnectionCap {
  /** Each open connection and its requests in flight (pipelined requests may overlap). */
  readonly #open = new Map<Socket, number>();
  /** The idle connections and since when (performance.now()), in the order they went idle: the first is the one idle longest. */
  readonly #idle = new Map<Socket, number>();

  constructor(server: Server, max: number) {
    server.on("connection", (socket: Socket) => {
      if (this.#open.size >= max) {
        const oldest = this.#idle.entries().next().value;
        if (oldest === undefined || performance.now() - oldest[1] < DISPLACE_AFTER_MS) {
          socket.on("error", () => {});
          socket.end(OVERLOADED);
          socket.destroySoon();
          return;
        }
        this.#idle.delete(oldest[0]);
        this.#open.delete(oldest[0]);
        oldest[0].destroy();
      }
      this.#open.set(socket, 0);
      this.#idle.set(socket, performance.now());
      socket.once("close", () => {
        this.#open.delete(socket);
        this.#idle.delete(socket);
      });
    });
  }

  began(socket: Socket): void {
    const n = this.#open.get(socket);
    if (n === undefined) return;
    this.#open.set(socket, n + 1);
    this.#idle.delete(socket);
  }

  ended(socket: Socket): void {
    const n = this.#open.get(socket);
    if (n === undefined) return;
    this.#open.set(socket, n - 1);
    if (n === 1) this.#idle.set(socket, performance.now());
  }
}
