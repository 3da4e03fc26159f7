/** POST /: run a task and return its output in the `{success, msg}` envelope. */
import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { PayloadTooLargeError } from "../engine/errors.ts";
import type { AppEnv, AppOptions } from "./app.ts";
import { readNodeBody } from "./node-body.ts";
import { parseExecute, parseJsonBody } from "./schemas.ts";

export function mountExecute(app: Hono<AppEnv>, o: AppOptions): void {
  const limit = bodyLimit({
    maxSize: o.maxBodyBytes,
    onError: () => {
      throw new PayloadTooLargeError(o.maxBodyBytes);
    },
  });
  app.post("/", async (c) => {
    let body = await readNodeBody(c.env, o.maxBodyBytes);
    if (!body) {
      await limit(c, async () => {});
      body = { text: await c.req.text(), signal: c.req.raw.signal };
    }
    const { text, signal } = body;
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
