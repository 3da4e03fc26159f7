/** POST /: run a task and return its output in the `{success, msg}` envelope. */
import type { Hono } from "hono";
import type { Executor } from "../engine/executor.ts";
import type { AppEnv, AppOptions } from "./app-env.ts";
import { readBody } from "./body.ts";
import type { Answer } from "./errors.ts";
import { parseExecute, parseJsonBody } from "./schemas.ts";

export function mountExecute(app: Hono<AppEnv>, o: AppOptions): void {
  app.post("/", async (c) => {
    const { text, signal } = await readBody(c, o.maxBodyBytes);
    c.set("clientSignal", signal);
    const a = await execute(o.executor, text, signal, c.get("requestId"));
    // A Response with plain-object headers stays on @hono/node-server's fast path (no Headers object).
    return new Response(a.body, { status: a.status, headers: a.headers });
  });
}

/**
 * What POST / does with a body read in full: validate it, run it, and the answer. Shared by the
 * route above and the Node listener's own POST / (node-routes.ts); errors are thrown for the caller to map.
 */
export async function execute(
  executor: Pick<Executor, "execute">,
  text: string,
  signal: AbortSignal,
  requestId: string,
): Promise<Answer> {
  const { intent, input } = parseExecute(parseJsonBody(text));
  const msg = await executor.execute(intent, input, { signal, requestId });
  return {
    status: 200,
    body: `{"success":true,"msg":${JSON.stringify(msg)}}`,
    headers: { "content-type": "application/json", "x-request-id": requestId },
  };
}
