/** Serves the app with Node's http server. */
import { serve } from "@hono/node-server";
import type { Hono } from "hono";

export interface Listening {
  port: number;
  close(): Promise<void>;
}

export function listenNode(app: Hono<any>, opts: { port: number; hostname: string }): Promise<Listening> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, port: opts.port, hostname: opts.hostname }, (info) => {
      resolve({
        port: info.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
          }),
      });
    });
    server.once("error", reject);
  });
}
