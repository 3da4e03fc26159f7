/**
 * POST /pause, /unpause, /update-config, /stop: guarded by the admin token when one is set.
 * A body, where one comes, must be JSON (a page's form or text/plain post is not) and small.
 */
import type { Context, Hono, MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { HTTPException } from "hono/http-exception";
import { settingsUpdate, updateAnswer, updateSchema, type ConfigUpdate } from "../config.ts";
import { UnauthorizedError, UnsupportedMediaTypeError } from "./errors.ts";
import { DEFAULT_MAX_ADMIN_BODY_BYTES, type AppEnv, type AppOptions } from "./app-env.ts";
import { BodyLimits, readBody } from "./body.ts";
import { fieldError, parseJsonBody } from "./schemas.ts";

export function mountAdmin(app: Hono<AppEnv>, o: AppOptions): void {
  const token: MiddlewareHandler = o.adminToken
    ? tokenGuard(o.adminToken)
    : async (_c, next) => next();
  const maxBody = o.maxAdminBodyBytes ?? DEFAULT_MAX_ADMIN_BODY_BYTES;
  const guard: MiddlewareHandler<AppEnv> = async (c, next) =>
    token(c, async () => {
      checkAdminBody(c, maxBody);
      await next();
    });
  const ok = (msg: string, extra: Record<string, unknown> = {}) => ({
    success: true,
    msg,
    ...extra,
  });

  app.post("/pause", guard, async (c) => {
    await o.executor.pause();
    return c.json(ok("paused"));
  });

  app.post("/unpause", guard, (c) => {
    o.executor.unpause();
    return c.json(ok("unpaused"));
  });

  app.post("/update-config", guard, async (c) => {
    const { text } = await readBody(c, maxBody);
    if (text !== "") requireJson(c);
    const r = updateSchema.safeParse(parseJsonBody(text));
    if (!r.success) throw fieldError(r.error);
    const { settings, changed } = await o.executor.updateConfig(
      settingsUpdate(r.data as ConfigUpdate),
    );
    const answer = updateAnswer(settings, changed);
    return c.json(
      ok(Object.keys(answer.changed).length > 0 ? "config updated" : "config unchanged", answer),
    );
  });

  app.post("/stop", guard, (c) => {
    setTimeout(o.onStop, 0);
    return c.json(ok("stopping"));
  });
}

/** Before any byte of an admin body is read: its declared size within the limit, and a JSON content type. */
function checkAdminBody(c: Context<AppEnv>, max: number): void {
  const length = c.req.header("content-length");
  new BodyLimits(max).checkDeclared(length);
  if (Number(length) > 0 || c.req.header("transfer-encoding") !== undefined) requireJson(c);
}

function requireJson(c: Context<AppEnv>): void {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(type)) {
    throw new UnsupportedMediaTypeError(
      `Admin requests with a body need Content-Type: application/json, not ${JSON.stringify(type.slice(0, 100))}`,
    );
  }
}

/**
 * hono's bearerAuth (constant-time compare), except that a malformed
 * Authorization header ("Basic ...", "Bearer !") is a wrong token too: 401.
 */
function tokenGuard(token: string): MiddlewareHandler {
  const bearer = bearerAuth({ token });
  return async (c, next) => {
    try {
      return await bearer(c, next);
    } catch (e) {
      if (e instanceof HTTPException && e.status === 400) throw new UnauthorizedError();
      throw e;
    }
  };
}
