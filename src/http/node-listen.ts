/** Serves the app with Node's http server, with bounds on connections and on slow clients. */
import { serve } from "@hono/node-server";
import type { Hono } from "hono";
import { createServer, type Server } from "node:http";
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
    // POST / of an app from createApp is served on Node's own request and response (node-execute.ts).
    const route = nodeRouteOf(app);
    const withRoute = ((options: object, listener: (req: any, res: any) => void) =>
      createServer(options, route ? (req, res) => void (route(req, res) || listener(req, res)) : listener)) as typeof createServer;
    const server = serve({ fetch: app.fetch, port: opts.port, hostname: opts.hostname, createServer: withRoute }, (info) => {
      resolve({
        port: info.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
          }),
      });
    }) as Server;
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
