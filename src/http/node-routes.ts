/**
 * POST / and the read-only GETs (/health, /stats, /tasks, /metrics) served
 * straight from Node's http server, beside the Hono app that serves the admin
 * routes (and all of these under Deno and `app.request()`). POST / is the
 * executor's reason to be, and on it a Web Request and Response per request
 * (URL, Headers, the app's context and middleware chain) cost as much as the
 * forward itself. The GETs are what health checks, the desktop app and
 * Prometheus poll. None needs a Web Request or Response, so an executor that
 * serves only these never loads them, nor Hono's Node adapter: about 16 MB
 * less resident memory (docs/architecture.md). They run the same steps as the
 * app, through the same functions: request id, origin and host check, body
 * limits and the input budget, validation, the engine call, the error
 * envelope, request metrics and the access line.
 * Node types only, so no `node:` import enters the HTTP layer at run time.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "../engine/ports.ts";
import type { Executor } from "../engine/executor.ts";
import { BodyLimits, type InputBudget } from "./body-limits.ts";
import { failureAnswer, type Answer, type FailureStatus } from "./errors.ts";
import { execute } from "./execute-route.ts";
import { clientSignal, readIncoming } from "./node-body.ts";
import { checkNodeRequest, type OriginCheck } from "./origin-guard.ts";
import { requestIdOf } from "./request-id.ts";
import type { RequestMetrics, RouteStats } from "./request-metrics.ts";
import type { Read } from "./status-routes.ts";

/** Serves the request when it is `POST /` or one of the reads, and returns true; else false, and the app serves it. */
export type NodeRoute = (req: IncomingMessage, res: ServerResponse) => boolean;

export interface NodeRouteParts {
  executor: Pick<Executor, "execute" | "engineStatus">;
  maxBodyBytes: number;
  accessLog: boolean;
  /** The app's `http` logger. */
  log: Logger;
  requests: RequestMetrics;
  check: OriginCheck;
  budget: InputBudget | undefined;
  /** How POST / answers a request it understood but could not serve. */
  failureStatus: FailureStatus;
  /** The read-only GETs by exact path (status-routes.ts, metrics-route.ts), as the app mounts them. */
  reads: Record<string, Read>;
}

export function nodeRoutes(p: NodeRouteParts): NodeRoute {
  // Made on the first request, as the app's middleware makes a route's series.
  let stats: RouteStats | undefined;
  const access = { log: p.log, accessLog: p.accessLog };
  const onExecute = { failureStatus: p.failureStatus };

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
      ({ answer, code: errorCode } = failureAnswer(
        err,
        signal?.aborted === true,
        p.log,
        requestId,
        onExecute,
      ));
    } finally {
      // The engine is done with the body: what it held of the budget goes back.
      limits.release();
    }
    write(res, answer);
    p.requests.record(
      (stats ??= p.requests.route("POST", "/")),
      { status: answer.status, errorCode, t0, requestId, method: "POST", path: "/" },
      access,
    );
  };

  const read = async (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    run: Read,
  ): Promise<void> => {
    const t0 = performance.now();
    const requestId = requestIdOf(req.headers["x-request-id"]);
    let answer: Answer;
    let errorCode: string | undefined;
    try {
      checkNodeRequest(p.check, req);
      ({ answer, code: errorCode } = await run());
    } catch (err) {
      ({ answer, code: errorCode } = failureAnswer(err, false, p.log, requestId));
    }
    answer.headers["x-request-id"] = requestId;
    write(res, answer);
    p.requests.record(
      p.requests.route("GET", path),
      { status: answer.status, errorCode, t0, requestId, method: "GET", path },
      access,
    );
  };

  const defect = (err: unknown, res: ServerResponse) => {
    // Only a defect gets here (every request error is answered above): no answer can follow.
    p.log.error("Unexpected error", {
      error: err instanceof Error ? (err.stack ?? err.message) : String(err),
    });
    res.destroy();
  };

  return (req, res) => {
    const url = req.url ?? "";
    if (req.method === "GET") {
      const run = Object.hasOwn(p.reads, url) ? p.reads[url] : undefined;
      if (run === undefined) return false;
      read(req, res, url, run).catch((err: unknown) => defect(err, res));
      return true;
    }
    if (req.method !== "POST" || url !== "/") return false;
    serve(req, res).catch((err: unknown) => defect(err, res));
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
