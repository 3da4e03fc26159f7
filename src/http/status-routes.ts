/** GET /health, /stats, /tasks, /requests and /ui: what they answer, for the Hono app and the Node route alike. */
import { usageJson } from "../engine/usage.ts";
import type { Executor } from "../engine/executor.ts";
import type { AppOptions } from "./app-env.ts";
import type { Answer } from "./errors.ts";
import type { RouteResult } from "./route.ts";

/** GET /health: 200 while the engine answers, else 503 with why; `code` for the request metrics. */
export function healthAnswer(executor: Pick<Executor, "engineStatus">): {
  answer: Answer;
  code?: string;
} {
  const engine = executor.engineStatus();
  if (engine.reachable)
    return {
      answer: {
        status: 200,
        body: '{"status":"ok"}',
        headers: { "content-type": "application/json" },
      },
    };
  const body = JSON.stringify({
    status: "unavailable",
    engine: "unreachable",
    msg: `Docker engine unreachable: ${engine.error ?? "unknown"}`,
  });
  return {
    answer: {
      status: 503,
      body,
      headers: { "content-type": "application/json", "retry-after": "5" },
    },
    code: "ENGINE_UNAVAILABLE",
  };
}

/** A read-only GET route. */
export type Read = () => RouteResult | Promise<RouteResult>;

const json = (value: unknown): { answer: Answer } => ({
  answer: {
    status: 200,
    body: JSON.stringify(value),
    headers: { "content-type": "application/json" },
  },
});

/** GET /health, /stats, /tasks, /requests (the last requests answered) and /ui (the host's page). */
export function statusReads(
  o: Pick<AppOptions, "executor" | "placement" | "hostFirewall" | "cpuPriority">,
): Record<string, Read> {
  return {
    "/health": () => healthAnswer(o.executor),
    "/stats": async () => json(await o.executor.stats()),
    "/tasks": () =>
      json({
        network: o.placement,
        host_firewall: o.hostFirewall?.(),
        cpu_priority: o.cpuPriority?.(),
        disk: o.executor.diskStatus(),
        reserved: o.executor.reserved(),
        idle_timeout_s: o.executor.settings.idleTimeoutMinutes * 60,
        pulls: o.executor
          .pulls()
          .map((p) => ({ ...p, started: new Date(p.started).toISOString() })),
        tasks: o.executor.tasks(),
      }),
    "/requests": () =>
      json({
        requests: o.executor.recentRequests().map((r) => ({
          at: new Date(r.at).toISOString(),
          image: r.image,
          key_hash: r.keyHash,
          outcome: r.outcome,
          ms: r.ms,
          cold: r.cold,
          usage: r.usage ? usageJson(r.usage) : null,
        })),
      }),
    "/usage": () => json({ keys: o.executor.usageByKey() }),
    // The host's page: loaded on its first request only, so an executor nobody looks at never loads it.
    "/ui": async () => ({ answer: await (await import("./ui-page.ts")).uiAnswer() }),
  };
}
