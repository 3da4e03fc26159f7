/** The HTTP face of the executor: a Hono app over the engine, runtime-agnostic. */
import { Hono, type MiddlewareHandler } from "hono";
import { ClientClosedError } from "../engine/errors.ts";
import { mountAdmin } from "./admin-routes.ts";
import { InputBudget } from "./body-limits.ts";
import type { AppEnv, AppOptions } from "./app-env.ts";
import { envelope, failureAnswer, toResponse } from "./errors.ts";
import { mountExecute } from "./execute-route.ts";
import { metricsRead } from "./metrics-route.ts";
import { nodeRoutes, type NodeRouteParts, type NodeRoute } from "./node-routes.ts";
import { originCheck, originGuard } from "./origin-guard.ts";
import { requestIdOf } from "./request-id.ts";
import { RequestMetrics } from "./request-metrics.ts";
import { mountReads, statusReads } from "./status-routes.ts";

export type { AppEnv, AppOptions } from "./app-env.ts";
export { DEFAULT_MAX_ADMIN_BODY_BYTES } from "./app-env.ts";

export function createApp(o: AppOptions): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const log = o.logger.child({ component: "http" });
  const requests = new RequestMetrics();
  app.use(requestIdMiddleware);
  app.use(requests.middleware({ log, accessLog: o.accessLog === true }));
  const check = originCheck(o);
  app.use(originGuard(o, check));
  const budget =
    o.maxBufferedInputBytes !== undefined ? new InputBudget(o.maxBufferedInputBytes) : undefined;
  if (budget !== undefined) {
    app.use(async (c, next) => {
      c.set("inputBudget", budget);
      try {
        await next();
      } finally {
        // The handler is done with the body: what it held of the budget goes back.
        c.get("bodyLimits")?.release();
      }
    });
  }
  mountExecute(app, o);
  const reads = { ...statusReads(o), "/metrics": metricsRead(o, requests) };
  const failureStatus = o.failureStatus ?? "ok";
  const parts: NodeRouteParts = {
    executor: o.executor,
    maxBodyBytes: o.maxBodyBytes,
    accessLog: o.accessLog === true,
    log,
    requests,
    check,
    budget,
    reads,
    failureStatus,
  };
  nodeRouteByApp.set(app, nodeRoutes(parts));
  mountAdmin(app, o);
  mountReads(app, reads);
  app.notFound((c) => {
    c.set("errorCode", "NOT_FOUND");
    return envelope(404, `No route for ${c.req.method} ${c.req.path.slice(0, 200)}`, "NOT_FOUND", {
      "x-request-id": c.get("requestId") ?? "",
    });
  });
  app.onError((err, c) => {
    // ClientClosedError is checked first: it spares building the Web Request's signal.
    const aborted =
      err instanceof ClientClosedError || (c.get("clientSignal") ?? c.req.raw.signal).aborted;
    const execute = c.req.method === "POST" && c.req.path === "/" ? { failureStatus } : undefined;
    const { answer, code } = failureAnswer(err, aborted, log, c.get("requestId") ?? "", execute);
    c.set("errorCode", code);
    return toResponse(answer);
  });
  return app;
}

const nodeRouteByApp = new WeakMap<object, NodeRoute>();

/**
 * The app's own POST / and read-only GETs for Node's http server (node-routes.ts), sharing the
 * app's metrics, input budget and checks; undefined for an app that createApp did not make.
 */
export function nodeRouteOf(app: object): NodeRoute | undefined {
  return nodeRouteByApp.get(app);
}

/**
 * X-Request-Id: the client's when it is sane, else a fresh one. Reads the header from
 * Node's IncomingMessage when there is one (c.req.header() builds a Headers object), and
 * leaves POST / to put it in its own plain-object headers (c.header() builds one too).
 */
const requestIdMiddleware: MiddlewareHandler<AppEnv> = async (c, next) => {
  const incoming = (c.env as { incoming?: { headers: Record<string, unknown> } } | undefined)
    ?.incoming;
  const given: unknown = incoming ? incoming.headers["x-request-id"] : c.req.header("x-request-id");
  const id = requestIdOf(given);
  c.set("requestId", id);
  if (c.req.method !== "POST" || c.req.path !== "/") c.header("X-Request-Id", id);
  await next();
};
