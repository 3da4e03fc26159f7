/**
 * Serves the app with Node's http server, with bounds on connections and on slow clients.
 * POST / and the read-only GETs are the app's own Node route (node-routes.ts); every other
 * request goes to Hono through `@hono/node-server`, which is loaded on the first such request:
 * it brings Node's Web Request and Response, and node:http2, which an executor that only runs
 * tasks and answers polls never needs (docs/architecture.md).
 */
import type { Hono } from "hono";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { nodeRouteOf } from "./app.ts";

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
}

const OVERLOADED_BODY = JSON.stringify({ success: false, msg: "Too many open connections to the executor; retry later", error: "OVERLOADED" });
const OVERLOADED = [
  "HTTP/1.1 503 Service Unavailable",
  "content-type: application/json",
  "retry-after: 1",
  "connection: close",
  `content-length: ${Buffer.byteLength(OVERLOADED_BODY)}`,
  "",
  OVERLOADED_BODY,
].join("\r\n");

export function listenNode(app: Hono<any>, opts: ListenOptions): Promise<Listening> {
  return new Promise((resolve, reject) => {
    const route = nodeRouteOf(app);
    const hono = honoListener(app);
    const server = createServer(route ? (req, res) => void (route(req, res) || hono(req, res)) : hono);
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
    if (opts.headersTimeoutMs !== undefined) {
      server.headersTimeout = opts.headersTimeoutMs;
      // Node requires requestTimeout >= headersTimeout (0 means none).
      if (server.requestTimeout !== 0 && server.requestTimeout < opts.headersTimeoutMs) server.requestTimeout = opts.headersTimeoutMs;
    }
    if (opts.idleTimeoutMs !== undefined) server.keepAliveTimeout = opts.idleTimeoutMs;
    if (opts.maxConnections !== undefined) capConnections(server, opts.maxConnections);
    server.once("error", reject);
  });
}

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/** Hands requests to the app through `@hono/node-server`, imported when the first one comes. */
function honoListener(app: Hono<any>): Listener {
  let listener: Listener | undefined;
  let loading: Promise<Listener> | undefined;
  return (req, res) => {
    if (listener !== undefined) return void listener(req, res);
    loading ??= import("@hono/node-server").then((m) => (listener = m.getRequestListener(app.fetch)));
    loading.then(
      (l) => l(req, res),
      (err: unknown) => {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ success: false, msg: `Cannot load the HTTP adapter: ${(err as Error).message}`, error: "INTERNAL" }));
      },
    );
  };
}

/**
 * Past `max` open connections a new one is answered 503 at once and closed,
 * before its request is read, so that file descriptors stay free for the
 * Docker socket and the tasks.
 */
function capConnections(server: Server, max: number): void {
  let open = 0;
  server.on("connection", (socket: Socket) => {
    if (open >= max) {
      socket.on("error", () => {});
      socket.end(OVERLOADED);
      socket.destroySoon();
      return;
    }
    open++;
    socket.once("close", () => open--);
  });
}
