/**
 * Counts every HTTP request by route, method, status and outcome (`ok` or
 * the error code of the envelope) and observes its duration; optionally
 * writes a debug access line. The hot path does two map lookups and a few
 * increments: no Date, no string building.
 */
import { Counter, Histogram } from "../engine/metrics.ts";
import type { Logger } from "../engine/ports.ts";
import { pathOf, readable } from "./route.ts";

/** Seconds; up to the default request timeout (300 s). */
export const REQUEST_BUCKETS = [
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
] as const;

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

  /** The numbers of a route the path serves (only mounted routes get a series: random paths share `other`). */
  route(method: string, path: string): RouteStats {
    let byPath = this.#routes.get(method);
    if (!byPath) this.#routes.set(method, (byPath = new Map()));
    let stats = byPath.get(path);
    if (!stats) byPath.set(path, (stats = new RouteStats(method, path)));
    return stats;
  }

  /** Counts one request that started at `t0` (performance.now()) and ended now. */
  record(
    stats: RouteStats,
    r: {
      status: number;
      errorCode: string | undefined;
      t0: number;
      requestId: string;
      method: string;
      /** The request target as sent; its path is read only for the access line. */
      target: string;
      /** The answer's Meca-Usage header, for the access line. */
      usage?: string;
    },
    opts: { log: Logger; accessLog: boolean },
  ): void {
    const seconds = (performance.now() - r.t0) / 1000;
    const outcome = r.errorCode ?? (r.status < 400 ? "ok" : "error");
    stats.count(r.status, outcome);
    stats.duration.observe(seconds);
    if (opts.accessLog) {
      // The path is the client's (up to Node's 16 KiB of headers): the line keeps its first 200 characters.
      const full = readable(pathOf(r.target));
      const path = full.length > 200 ? `${full.slice(0, 200)}...` : full;
      opts.log.debug("Request", {
        requestId: r.requestId,
        method: r.method,
        path,
        status: r.status,
        outcome,
        ms: Math.round(seconds * 1e4) / 10,
        ...(r.usage === undefined ? {} : { usage: r.usage }),
      });
    }
  }
}
