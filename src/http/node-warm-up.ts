/**
 * Warms the warm path at start-up, so that the first requests after a task's
 * cold start do not run in V8's interpreter. MECA traffic is sparse: without
 * this, most of it would be served by code not yet optimised.
 *
 * Synthetic requests go through the same code as a real POST / on Node, on
 * loopback, with no task and no Docker: a task client (undici's Pool, the
 * answer's reading and bounds) sends a MECA request body to a stand-in served
 * by Node's http server and the Node route of POST / (node-execute.ts: request
 * id, checks, body limits, validation, the answer envelope), where only the
 * engine is replaced by an echo. Its metrics are its own; the stand-in and its
 * connections are gone afterwards. It runs while the executor connects to the
 * engine, and ends before it listens, so that it never competes with a real
 * request (docs/architecture.md).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger, TaskClient } from "../engine/ports.ts";
import { nodeExecute } from "./node-execute.ts";
import { originCheck, type OriginGuardOptions } from "./origin-guard.ts";
import { RequestMetrics } from "./request-metrics.ts";

/** Enough for V8 to optimise the path fully with the executable's flags (`--invocation-count-for-turbofan=1000`). */
export const WARM_UP_REQUESTS = 1000;

export interface WarmUpOptions extends OriginGuardOptions {
  /** A task client of its own: its pool to the stand-in is forgotten afterwards. */
  client: Pick<TaskClient, "send" | "forget">;
  maxBodyBytes: number;
  log: Logger;
  count?: number;
}

/** Sends the synthetic requests; resolves with how many were answered (never rejects). */
export async function warmUp(o: WarmUpOptions): Promise<number> {
  const count = o.count ?? WARM_UP_REQUESTS;
  const route = nodeExecute({
    executor: { execute: async (_intent, input) => input },
    maxBodyBytes: o.maxBodyBytes,
    accessLog: false,
    log: o.log,
    requests: new RequestMetrics(),
    check: originCheck(o),
    budget: undefined,
  });
  const server = createServer((req, res) => {
    if (!route(req, res)) res.writeHead(404).end();
  });
  let endpoint: string | undefined;
  let answered = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    for (let i = 0; i < count; i++) {
      const body = JSON.stringify({ id: "meca-warm-up/echo:1", resource: { cpu: 1, mem: 128 }, runtime: "", input: `warm-up ${i}` });
      const res = await o.client.send({ method: "POST", endpoint, path: "/", body, signal: new AbortController().signal });
      if (res.status !== 200) break;
      answered++;
    }
  } catch {
    // A warm-up that cannot run leaves the executor as it was: slower in its first minute.
  } finally {
    if (endpoint !== undefined) o.client.forget(endpoint);
    server.closeAllConnections();
    server.close();
  }
  return answered;
}
