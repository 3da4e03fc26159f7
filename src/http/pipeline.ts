/**
 * The one HTTP path (docs/architecture.md, "The request path"): every request, on every runtime,
 * goes through `serve`, which runs the request id, the origin and Host check, the route (its body
 * read within its limits), the failure answer, the request metrics and the access line, and
 * resolves with the answer as plain parts. The Node listener (node-listen.ts) calls it with Node's
 * request and writes the answer itself, so Node's hot path builds no Web Request or Response; the
 * Hono app (app.ts: Deno, `app.request()` in tests) calls it with a Web Request.
 */
import { timingSafeEqual } from "hono/utils/buffer";
import type { AppOptions } from "./app-env.ts";
import { DEFAULT_MAX_ADMIN_BODY_BYTES } from "./app-env.ts";
import { adminRoutes } from "./admin-routes.ts";
import { BodyLimits, InputBudget } from "./body-limits.ts";
import { envelopeAnswer, failureAnswer, UnauthorizedError } from "./errors.ts";
import { execute } from "./execute-route.ts";
import { metricsRead } from "./metrics-route.ts";
import { originCheck } from "./origin-guard.ts";
import { requestIdOf } from "./request-id.ts";
import { RequestMetrics, type RouteStats } from "./request-metrics.ts";
import { statusReads } from "./status-routes.ts";
import {
  pathOf,
  readable,
  type PlainRequest,
  type Route,
  type RouteResult,
  type Serve,
} from "./route.ts";

export type { PlainRequest, Route, RouteResult, Serve } from "./route.ts";

interface Mounted {
  run: Route;
  method: string;
  path: string;
  stats?: RouteStats;
  /** POST /: failures answer by failure_status. */
  execute?: boolean;
}

/** The path and its numbers (GET /metrics reads `requests`). */
export interface Http {
  serve: Serve;
  requests: RequestMetrics;
}

export function createHttp(o: AppOptions): Http {
  const log = o.logger.child({ component: "http" });
  const requests = new RequestMetrics();
  const access = { log, accessLog: o.accessLog === true };
  const check = originCheck(o);
  const failureStatus = { failureStatus: o.failureStatus ?? "ok" };
  const budget =
    o.maxBufferedInputBytes !== undefined ? new InputBudget(o.maxBufferedInputBytes) : undefined;

  // method → path → route
  const routes = new Map<string, Map<string, Mounted>>();
  const mount = (method: string, path: string, run: Route, execute?: boolean) => {
    let byPath = routes.get(method);
    if (!byPath) routes.set(method, (byPath = new Map()));
    byPath.set(path, { run, method, path, execute });
  };

  mount(
    "POST",
    "/",
    async (req, requestId) => {
      const signal = req.signal();
      const limits = new BodyLimits(o.maxBodyBytes, budget);
      try {
        const text = await req.body(limits);
        return { answer: await execute(o.executor, text, signal, requestId) };
      } finally {
        // The engine is done with the body: what it held of the budget goes back.
        limits.release();
      }
    },
    true,
  );
  const reads = { ...statusReads(o), "/metrics": metricsRead(o, requests) };
  for (const [path, read] of Object.entries(reads)) mount("GET", path, read);
  const guard = adminGuard(o.adminToken);
  const maxAdmin = o.maxAdminBodyBytes ?? DEFAULT_MAX_ADMIN_BODY_BYTES;
  for (const [path, run] of Object.entries(adminRoutes(o, maxAdmin)))
    mount("POST", path, async (req, id) => (await guard(req), run(req, id)));

  const notFound: Route = (req) => {
    const path = readable(pathOf(req.url));
    const msg = `No route for ${req.method} ${path.slice(0, 200)}`;
    return { answer: envelopeAnswer(404, msg, "NOT_FOUND"), code: "NOT_FOUND" };
  };

  const serve: Serve = async (req) => {
    const t0 = performance.now();
    const requestId = requestIdOf(req.header("x-request-id"));
    // HEAD is GET without the body (the listeners leave the body out).
    const method = req.method === "HEAD" ? "GET" : req.method;
    const byPath = routes.get(method);
    const route = byPath && (byPath.get(req.url) ?? byPath.get(pathOf(req.url)));
    let result: RouteResult;
    try {
      check(req.header("origin"), () => req.header("host"), req.localAddress);
      result = await (route ? route.run(req, requestId) : notFound(req, requestId));
    } catch (err) {
      result = failureAnswer(
        err,
        req.aborted(),
        log,
        requestId,
        route?.execute ? failureStatus : undefined,
      );
    }
    const { answer, code } = result;
    answer.headers["x-request-id"] = requestId;
    const stats = route
      ? (route.stats ??= requests.route(route.method, route.path))
      : requests.other;
    requests.record(
      stats,
      {
        status: answer.status,
        errorCode: code,
        t0,
        requestId,
        method: req.method,
        target: req.url,
        usage: answer.headers["meca-usage"],
      },
      access,
    );
    return answer;
  };
  return { serve, requests };
}

/** RFC 6750's b64token, after "Bearer " (any case). */
const BEARER = /^bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

/**
 * The admin token's check: `Authorization: Bearer <token>`, compared in constant time (hono's
 * timingSafeEqual); a missing, malformed or wrong header is a 401. No token set: no check.
 */
function adminGuard(token: string | undefined): (req: PlainRequest) => Promise<void> {
  if (!token) return async () => {};
  return async (req) => {
    const given = BEARER.exec(req.header("authorization") ?? "")?.[1];
    if (given === undefined || !(await timingSafeEqual(token, given)))
      throw new UnauthorizedError();
  };
}
