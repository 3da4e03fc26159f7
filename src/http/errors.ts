/**
 * The one place that turns errors into responses: the `{success, msg, error}`
 * envelope with a status that says whose fault it is. Never a stack trace.
 */
import { HTTPException } from "hono/http-exception";
import { ExecutorError, type ErrorKind } from "../engine/errors.ts";
import type { Logger } from "../engine/ports.ts";

const STATUS: Record<ErrorKind, number> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  conflict: 409,
  too_large: 413,
  unavailable: 503,
  task_failed: 502,
  task_timeout: 504,
  internal: 500,
};

export function envelope(status: number, msg: string, code: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ success: false, msg, error: code }), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

export function errorResponse(err: unknown, log: Logger): Response {
  if (err instanceof ExecutorError) {
    const status = STATUS[err.kind];
    if (status >= 500 && status !== 503) log.warn(err.message, { code: err.code, status });
    const headers: Record<string, string> = err.retryAfter !== undefined ? { "retry-after": String(err.retryAfter) } : {};
    return envelope(status, err.message, err.code, headers);
  }
  if (err instanceof HTTPException) {
    if (err.status === 401) return envelope(401, "Missing or wrong admin token", "UNAUTHORIZED", { "www-authenticate": "Bearer" });
    if (err.status === 400) return envelope(400, err.message || "Bad request", "BAD_REQUEST");
    return envelope(err.status, err.message || "Request failed", `HTTP_${err.status}`);
  }
  log.error("Unexpected error", { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  return envelope(500, "Internal error in the executor; see its log", "INTERNAL");
}
