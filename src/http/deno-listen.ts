/** Serves the app with Deno.serve. */
import type { Listening } from "./node-listen.ts";

declare const Deno: {
  serve(
    opts: { port: number; hostname: string; onListen?: (a: { port: number }) => void },
    handler: (req: Request) => Response | Promise<Response>,
  ): {
    finished: Promise<void>;
    shutdown(): Promise<void>;
    addr: { port: number };
  };
};

export function listenDeno(
  app: { fetch(request: Request): Response | Promise<Response> },
  opts: { port: number; hostname: string },
): Promise<Listening> {
  return new Promise((resolve) => {
    const server = Deno.serve(
      { port: opts.port, hostname: opts.hostname, onListen: () => {} },
      (r) => app.fetch(r),
    );
    resolve({ port: server.addr.port, close: () => server.shutdown() });
  });
}
