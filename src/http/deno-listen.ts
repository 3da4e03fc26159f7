/** Serves the app with Deno.serve. */
import type { Hono } from "hono";
import type { Listening } from "./node-listen.ts";

declare const Deno: {
  serve(opts: { port: number; hostname: string; onListen?: (a: { port: number }) => void }, handler: (req: Request) => Response | Promise<Response>): {
    finished: Promise<void>;
    shutdown(): Promise<void>;
    addr: { port: number };
  };
};

export function listenDeno(app: Hono<any>, opts: { port: number; hostname: string }): Promise<Listening> {
  return new Promise((resolve) => {
    const server = Deno.serve({ port: opts.port, hostname: opts.hostname, onListen: () => {} }, app.fetch);
    resolve({ port: server.addr.port, close: () => server.shutdown() });
  });
}
