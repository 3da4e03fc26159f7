/** POST /: run a task and return its output in the `{success, msg}` envelope. */
import type { Hono } from "hono";
import type { AppEnv, AppOptions } from "./app.ts";
import { readBody } from "./body.ts";
import { parseExecute, parseJsonBody } from "./schemas.ts";

export function mountExecute(app: Hono<AppEnv>, o: AppOptions): void {
  app.post("/", async (c) => {
    const { text, signal } = await readBody(c, o.maxBodyBytes);
    c.set("clientSignal", signal);
    const { intent, input } = parseExecute(parseJsonBody(text));
    const msg = await o.executor.execute(intent, input, { signal, requestId: c.get("requestId") });
    // A Response with plain-object headers stays on @hono/node-server's fast path (no Headers object).
    return new Response(`{"success":true,"msg":${JSON.stringify(msg)}}`, {
      status: 200,
      headers: { "content-type": "application/json", "x-request-id": c.get("requestId") },
    });
  });
}
