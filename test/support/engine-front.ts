/**
 * An HTTP front for the real engine's socket, on a socket of its own, that
 * can do to its clients what the engine does when it restarts or dies: end
 * open streams (events, log follows) cleanly, or drop every connection and
 * stop answering.
 */
import { rmSync } from "node:fs";
import { createServer, request, type ServerResponse } from "node:http";
import { join } from "node:path";
import { dockerEndpoint } from "./docker-env.ts";

export interface EngineFront {
  socketPath: string;
  /** Ends every open answer as if the engine had finished it (a clean end of a stream). */
  endStreams(): void;
  /** Drops every connection and stops listening: the engine is gone. */
  goAway(): Promise<void>;
  close(): Promise<void>;
}

/** Its socket goes in `dir` (a test's scratch folder; the soak's own), which close() removes. */
export async function startEngineFront(dir: string): Promise<EngineFront> {
  const engine = dockerEndpoint();
  if (!("socketPath" in engine))
    throw new Error("The engine front needs an engine on a unix socket");
  const socketPath = join(dir, "docker.sock");
  const open = new Set<{ res: ServerResponse; end(): void }>();
  const server = createServer((req, res) => {
    const upstream = request(
      { socketPath: engine.socketPath, path: req.url, method: req.method, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        res.flushHeaders();
        const entry = {
          res,
          end: () => {
            up.unpipe(res);
            up.destroy();
            res.end();
          },
        };
        open.add(entry);
        res.on("close", () => open.delete(entry));
        up.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    res.on("close", () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  let listening = true;
  const goAway = async () => {
    if (!listening) return;
    listening = false;
    const closed = new Promise((r) => server.close(r));
    server.closeAllConnections();
    await closed;
  };
  return {
    socketPath,
    endStreams: () => {
      for (const entry of [...open]) entry.end();
    },
    goAway,
    close: async () => {
      await goAway();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
