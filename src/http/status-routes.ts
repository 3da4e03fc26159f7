/** GET /health, /stats, /tasks. */
import type { Hono } from "hono";
import type { AppEnv, AppOptions } from "./app.ts";

export function mountStatus(app: Hono<AppEnv>, o: AppOptions): void {
  app.get("/health", (c) => {
    const engine = o.executor.engineStatus();
    if (engine.reachable) return c.json({ status: "ok" });
    c.set("errorCode", "ENGINE_UNAVAILABLE");
    return c.json({ status: "unavailable", engine: "unreachable", msg: `Docker engine unreachable: ${engine.error ?? "unknown"}` }, 503, {
      "retry-after": "5",
    });
  });

  app.get("/stats", async (c) => c.json(await o.executor.stats()));

  app.get("/tasks", (c) => c.json({ network: o.placement, tasks: o.executor.tasks() }));
}
