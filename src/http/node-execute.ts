/**
 * POST / served straight from Node's http server, beside the Hono app that
 * serves everything else (and POST / under Deno and `app.request()`).
 * The warm path is the executor's reason to be, and on it a Web Request and
 * Response per request (URL, Headers, the app's context and middleware
 * chain) cost as much as the forward itself. It runs the same steps as the
 * app, through the same functions: request id, origin and host check, body
 * limits and the input budget, validation, the engine call, the error
 * envelope, request metrics and the access line (docs/architecture.md).
 * Node types only, so no `node:` import enters the HTTP layer at run time.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "../engine/ports.ts";
import type { Executor } from "../engine/executor.ts";
import { BodyLimits, type InputBudget } from "./body.ts";
import { failureAnswer, type Answer } from "./errors.ts";
import { execute } from "./execute-route.ts";
import { clientSignal, readIncoming } from "./node-body.ts";
import { checkNodeRequest, type OriginCheck } from "./origin-guard.ts";
import { requestIdOf } from "./request-id.ts";
import type { RequestMetrics, RouteStats } from "./request-metrics.ts";

/** Serves the request when it is `POST /` and returns true; else false, and the app serves it. */
export type NodeRoute = (req: IncomingMessage, res: ServerResponse) => boolean;

export interface NodeExecuteParts {
  executor: Pick<Executor, "execute">;
  maxBodyBytes: number;
  accessLog: boolean;
  /** The app's `http` logger. */
  log: Logger;
  requests: RequestMetrics;
  check: OriginCheck;
  budget: InputBudget | undefined;
}

export function nodeExecute(p: NodeExecuteParts): NodeRoute {
  // Made on the first request, as the app's middleware makes a route's series.
  let stats: RouteStats | undefined;
  const access = { log: p.log, accessLog: p.accessLog };

  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const t0 = performance.now();
    const requestId = requestIdOf(req.headers["x-request-id"]);
    const limits = new BodyLimits(p.maxBodyBytes, p.budget);
    let signal: AbortSignal | undefined;
    let answer: Answer;
    let errorCode: string | undefined;
    try {
      checkNodeRequest(p.check, req);
      signal = clientSignal(res);
      answer = await execute(p.executor, await readIncoming(req, limits), signal, requestId);
    } catch (err) {
      ({ answer, code: errorCode } = failureAnswer(err, signal?.aborted === true, p.log, requestId));
    } finally {
      // The engine is done with the body: what it held of the budget goes back.
      limits.release();
    }
    write(res, answer);
    p.requests.record((stats ??= p.requests.route("POST", "/")), { status: answer.status, errorCode, t0, requestId, method: "POST", path: "/" }, access);
  };

  return (req, res) => {
    if (req.method !== "POST" || req.url !== "/") return false;
    serve(req, res).catch((err: unknown) => {
      // Only a defect gets here (every request error is answered above): no answer can follow.
      p.log.error("Unexpected error", { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      res.destroy();
    });
    return true;
  };
}

/** Writes `a` as @hono/node-server writes a Response with a string body: headers and body in one go. */
function write(res: ServerResponse, a: Answer): void {
  if (res.destroyed) return;
  a.headers["content-length"] = String(Buffer.byteLength(a.body));
  res.writeHead(a.status, a.headers);
  res.end(a.body);
}
