/**
 * POST /pause, /unpause, /update-config, /stop: guarded by the admin token when one is set
 * (pipeline.ts). A body, where one comes, must be JSON (a page's form or text/plain post is not)
 * and small: its declared size and type are checked before a byte of it is read.
 */
import { settingsUpdate, updateAnswer, updateSchema, type ConfigUpdate } from "../config.ts";
import type { AppOptions } from "./app-env.ts";
import { BodyLimits } from "./body-limits.ts";
import { UnsupportedMediaTypeError, type Answer } from "./errors.ts";
import type { PlainRequest, Route } from "./route.ts";
import { fieldError, parseJsonBody } from "./schemas.ts";

export function adminRoutes(o: AppOptions, maxBody: number): Record<string, Route> {
  const ok = (msg: string, extra: Record<string, unknown> = {}) => ({
    answer: json({ success: true, msg, ...extra }),
  });
  const admin =
    (run: (req: PlainRequest) => Promise<{ answer: Answer }> | { answer: Answer }): Route =>
    (req) => {
      checkAdminBody(req, maxBody);
      return run(req);
    };
  return {
    "/pause": admin(async () => {
      await o.executor.pause();
      return ok("paused");
    }),
    "/unpause": admin(() => {
      o.executor.unpause();
      return ok("unpaused");
    }),
    "/update-config": admin(async (req) => {
      const text = await req.body(new BodyLimits(maxBody));
      if (text !== "") requireJson(req);
      const r = updateSchema.safeParse(parseJsonBody(text));
      if (!r.success) throw fieldError(r.error);
      const { settings, changed } = await o.executor.updateConfig(
        settingsUpdate(r.data as ConfigUpdate),
      );
      const answer = updateAnswer(settings, changed);
      const word = Object.keys(answer.changed).length > 0 ? "updated" : "unchanged";
      return ok(`config ${word}`, answer);
    }),
    "/stop": admin(() => {
      setTimeout(o.onStop, 0);
      return ok("stopping");
    }),
  };
}

function json(value: unknown): Answer {
  return {
    status: 200,
    body: JSON.stringify(value),
    headers: { "content-type": "application/json" },
  };
}

/** Before any byte of an admin body is read: its declared size within the limit, and a JSON content type. */
function checkAdminBody(req: PlainRequest, max: number): void {
  const length = req.header("content-length");
  new BodyLimits(max).checkDeclared(length);
  if (Number(length) > 0 || req.header("transfer-encoding") !== undefined) requireJson(req);
}

function requireJson(req: PlainRequest): void {
  const type = req.header("content-type") ?? "";
  if (!/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(type)) {
    throw new UnsupportedMediaTypeError(
      `Admin requests with a body need Content-Type: application/json, not ${JSON.stringify(type.slice(0, 100))}`,
    );
  }
}
