/** GET /health, /stats, /tasks, /requests and /ui: what they answer, for the Hono app and the Node route alike. */
import type { Hono } from "hono";
import type { Executor } from "../engine/executor.ts";
import type { AppEnv, AppOptions } from "./app-env.ts";
import type { Answer } from "./errors.ts";

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

/** A read-only GET route as plain parts: served by the Hono app, and on Node by the Node route too. */
export type Read = () =>
  { answer: Answer; code?: string } | Promise<{ answer: Answer; code?: string }>;

const json = (value: unknown): { answer: Answer } => ({
  answer: {
    status: 200,
    body: JSON.stringify(value),
    headers: { "content-type": "application/json" },
  },
});

/** GET /health, /stats, /tasks, /requests (the last requests answered) and /ui (the host's page). */
export function statusReads(
  o: Pick<AppOptions, "executor" | "placement" | "hostFirewall">,
): Record<string, Read> {
  return {
    "/health": () => healthAnswer(o.executor),
    "/stats": async () => json(await o.executor.stats()),
    "/tasks": () =>
      json({
        network: o.placement,
        host_firewall: o.hostFirewall?.(),
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
        })),
      }),
    // The host's page: loaded on its first request only, so an executor nobody looks at never loads it.
    "/ui": async () => ({ answer: await (await import("./ui-page.ts")).uiAnswer() }),
  };
}

/** Mounts `reads` on the Hono app, each answering its plain parts. */
export function mountReads(app: Hono<AppEnv>, reads: Record<string, Read>): void {
  for (const [path, read] of Object.entries(reads)) {
    app.get(path, async (c) => {
      const { answer, code } = await read();
      if (code !== undefined) c.set("errorCode", code);
      return c.body(answer.body, answer.status as 200, answer.headers);
    });
  }
}
