/** POST /pause, /unpause, /update-config, /stop: guarded by the admin token when one is set. */
import type { Hono, MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { HTTPException } from "hono/http-exception";
import { updateSchema } from "../config.ts";
import { UnauthorizedError } from "../engine/errors.ts";
import type { AppEnv, AppOptions } from "./app.ts";
import { fieldError, parseJsonBody } from "./schemas.ts";

export function mountAdmin(app: Hono<AppEnv>, o: AppOptions): void {
  const guard: MiddlewareHandler = o.adminToken ? tokenGuard(o.adminToken) : async (_c, next) => next();
  const ok = (msg: string, extra: Record<string, unknown> = {}) => ({ success: true, msg, ...extra });

  app.post("/pause", guard, async (c) => {
    await o.executor.pause();
    return c.json(ok("paused"));
  });

  app.post("/unpause", guard, (c) => {
    o.executor.unpause();
    return c.json(ok("unpaused"));
  });

  app.post("/update-config", guard, async (c) => {
    const r = updateSchema.safeParse(parseJsonBody(await c.req.text()));
    if (!r.success) throw fieldError(r.error);
    const u = r.data;
    const { settings: s, changed } = await o.executor.updateConfig({
      idleTimeoutMinutes: u.timeout,
      cpu: u.cpu,
      memMB: u.mem,
      hasGpu: u.has_gpu,
      microVMRuntime: u.microVM_runtime,
    });
    const config = { timeout: s.idleTimeoutMinutes, cpu: s.cpu, mem: s.memMB, has_gpu: s.hasGpu, microVM_runtime: s.microVMRuntime };
    const names = { idleTimeoutMinutes: "timeout", cpu: "cpu", memMB: "mem", hasGpu: "has_gpu", microVMRuntime: "microVM_runtime" } as const;
    const diff = Object.fromEntries(Object.entries(changed).map(([k, v]) => [names[k as keyof typeof names], v]));
    return c.json(ok(Object.keys(diff).length > 0 ? "config updated" : "config unchanged", { config, changed: diff }));
  });

  app.post("/stop", guard, (c) => {
    setTimeout(o.onStop, 0);
    return c.json(ok("stopping"));
  });
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
