/** GET /health, /stats, /tasks. */
import type { Hono } from "hono";
import type { Executor } from "../engine/executor.ts";
import type { AppEnv, AppOptions } from "./app.ts";
import type { Answer } from "./errors.ts";

/** GET /health: 200 while the engine answers, else 503 with why; `code` for the request metrics. */
export function healthAnswer(executor: Pick<Executor, "engineStatus">): { answer: Answer; code?: string } {
  const engine = executor.engineStatus();
  if (engine.reachable) return { answer: { status: 200, body: '{"status":"ok"}', headers: { "content-type": "application/json" } } };
  const body = JSON.stringify({ status: "unavailable", engine: "unreachable", msg: `Docker engine unreachable: ${engine.error ?? "unknown"}` });
  return { answer: { status: 503, body, headers: { "content-type": "application/json", "retry-after": "5" } }, code: "ENGINE_UNAVAILABLE" };
}

export function mountStatus(app: Hono<AppEnv>, o: AppOptions): void {
  app.get("/health", (c) => {
    const { answer, code } = healthAnswer(o.executor);
    if (code !== undefined) c.set("errorCode", code);
    return c.body(answer.body, answer.status as 200 | 503, answer.headers);
  });

  app.get("/stats", async (c) => c.json(await o.executor.stats()));

  app.get("/tasks", (c) => c.json({ network: o.placement, tasks: o.executor.tasks() }));
}
