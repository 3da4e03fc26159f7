/**
 * Counts every HTTP request by route, method, status and outcome (`ok` or
 * the error code of the envelope) and observes its duration; optionally
 * writes a debug access line. The hot path does two map lookups and a few
 * increments: no Date, no string building.
 */
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { Counter, Histogram } from "../engine/metrics.ts";
import type { Logger } from "../engine/ports.ts";

/** Seconds; up to the default request timeout (300 s). */
export const REQUEST_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300] as const;

/** One route's numbers. Requests that match no route share the `other` one. */
export class RouteStats {
  readonly method: string;
  readonly route: string;
  readonly duration = new Histogram(REQUEST_BUCKETS);
  /** status → outcome → count */
  readonly outcomes = new Map<number, Map<string, Counter>>();

  constructor(method: string, route: string) {
    this.method = method;
    this.route = route;
  }

  count(status: number, outcome: string): void {
    let byOutcome = this.outcomes.get(status);
    if (!byOutcome) this.outcomes.set(status, (byOutcome = new Map()));
    let c = byOutcome.get(outcome);
    if (!c) byOutcome.set(outcome, (c = new Counter()));
    c.value++;
  }
}

export class RequestMetrics {
  /** method → path → stats, for requests that matched a route. */
  #routes = new Map<string, Map<string, RouteStats>>();
  readonly other = new RouteStats("other", "other");

  all(): RouteStats[] {
    const out: RouteStats[] = [];
    for (const byPath of this.#routes.values()) out.push(...byPath.values());
    if (this.other.duration.count > 0) out.push(this.other);
    return out;
  }

  /** The middleware that counts; `log` gets one debug line per request when `accessLog` is set. */
  middleware(opts: { log: Logger; accessLog: boolean }): MiddlewareHandler {
    return async (c, next) => {
      const t0 = performance.now();
      await next();
      const seconds = (performance.now() - t0) / 1000;
      const status = c.res.status;
      const outcome = (c.get("errorCode") as string | undefined) ?? (status < 400 ? "ok" : "error");
      const stats = this.#stats(c);
      stats.count(status, outcome);
      stats.duration.observe(seconds);
      if (opts.accessLog) {
        opts.log.debug("Request", { requestId: c.get("requestId"), method: c.req.method, path: c.req.path, status, outcome, ms: Math.round(seconds * 1e4) / 10 });
      }
    };
  }

  #stats(c: Context): RouteStats {
    const method = c.req.method;
    const path = c.req.path;
    const known = this.#routes.get(method)?.get(path);
    if (known) return known;
    // First request on this route, or none matched: only real routes get their own series,
    // so random paths cannot grow the set.
    const last = matchedRoutes(c).at(-1);
    if (!last || last.method === "ALL" || last.path !== path) return this.other;
    let byPath = this.#routes.get(method);
    if (!byPath) this.#routes.set(method, (byPath = new Map()));
    const stats = new RouteStats(method, path);
    byPath.set(path, stats);
    return stats;
  }
}
