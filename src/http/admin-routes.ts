/**
 * POST /pause, /unpause, /update-config, /stop: guarded by the admin token when one is set.
 * A body, where one comes, must be JSON (a page's form or text/plain post is not) and small.
 */
import type { Context, Hono, MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { HTTPException } from "hono/http-exception";
import { prewarmEntries, updateSchema } from "../config.ts";
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
    const u = r.data;
    const { settings: s, changed } = await o.executor.updateConfig({
      idleTimeoutMinutes: u.timeout,
      cpu: u.cpu,
      memMB: u.mem,
      hasGpu: u.has_gpu,
      microVMRuntime: u.microVM_runtime,
      prewarm: u.prewarm === undefined ? undefined : prewarmEntries(u.prewarm),
    });
    const config = {
      timeout: s.idleTimeoutMinutes,
      cpu: s.cpu,
      mem: s.memMB,
      has_gpu: s.hasGpu,
      microVM_runtime: s.microVMRuntime,
      prewarm: s.prewarm.length,
    };
    const names = {
      idleTimeoutMinutes: "timeout",
      cpu: "cpu",
      memMB: "mem",
      hasGpu: "has_gpu",
      microVMRuntime: "microVM_runtime",
      prewarm: "prewarm",
    } as const;
    // The prewarm list is said by its length: its entries are what the request sent.
    const shown = (k: string, v: { from: unknown; to: unknown }) =>
      k === "prewarm" ? { from: (v.from as unknown[]).length, to: (v.to as unknown[]).length } : v;
    const diff = Object.fromEntries(
      Object.entries(changed).map(([k, v]) => [names[k as keyof typeof names], shown(k, v)]),
    );
    return c.json(
      ok(Object.keys(diff).length > 0 ? "config updated" : "config unchanged", {
        config,
        changed: diff,
      }),
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
