/** POST /: run a task and return its output in the `{success, msg}` envelope. */
import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { BadRequestError, PayloadTooLargeError } from "../engine/errors.ts";
import type { AppEnv, AppOptions } from "./app.ts";
import { parseExecute } from "./schemas.ts";

export function mountExecute(app: Hono<AppEnv>, o: AppOptions): void {
  const limit = bodyLimit({
    maxSize: o.maxBodyBytes,
    onError: () => {
      throw new PayloadTooLargeError(o.maxBodyBytes);
    },
  });
  app.post("/", limit, async (c) => {
    const text = await c.req.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new BadRequestError(`Request body is not valid JSON: ${(e as Error).message}`, { code: "INVALID_JSON" });
    }
    const { intent, input } = parseExecute(json);
    const msg = await o.executor.execute(intent, input, { signal: c.req.raw.signal, requestId: c.get("requestId") });
    return c.body(`{"success":true,"msg":${JSON.stringify(msg)}}`, 200, { "content-type": "application/json" });
  });
}
