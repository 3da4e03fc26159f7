/**
 * The one place that turns errors into responses: the `{success, msg, error}`
 * envelope with a status that says whose fault it is. Never a stack trace.
 */
import { usageHeader } from "../engine/usage.ts";
import {
  ClientClosedError,
  ExecutorError,
  TaskFailedError,
  type ErrorKind,
} from "../engine/errors.ts";
import type { Logger } from "../engine/ports.ts";

const STATUS: Record<ErrorKind, number> = {
  bad_request: 400,
  forbidden: 403,
  client_closed: 499,
  unavailable: 503,
  task_failed: 502,
  task_timeout: 504,
  insufficient_storage: 507,
  internal: 500,
};

/**
 * A request the HTTP layer itself refuses, before the engine sees it (a wrong admin token, a body
 * over the limit, a content type the route does not read): its status is its own, whatever
 * failure_status says.
 */
export class HttpRequestError extends ExecutorError {
  readonly status: 401 | 413 | 415;
  /** Headers its answer carries besides the envelope's. */
  readonly headers: Readonly<Record<string, string>>;
  constructor(
    status: 401 | 413 | 415,
    code: string,
    message: string,
    headers: Record<string, string> = {},
  ) {
    super("bad_request", code, message);
    this.status = status;
    this.headers = headers;
  }
}

export class UnauthorizedError extends HttpRequestError {
  constructor(message = "Missing or wrong admin token") {
    super(401, "UNAUTHORIZED", message, { "www-authenticate": "Bearer" });
  }
}

export class PayloadTooLargeError extends HttpRequestError {
  constructor(limitBytes: number) {
    super(413, "PAYLOAD_TOO_LARGE", `Request body is larger than the limit of ${limitBytes} bytes`);
  }
}

/** A POST whose body needs `Content-Type: application/json` came with another type. */
export class UnsupportedMediaTypeError extends HttpRequestError {
  constructor(message: string) {
    super(415, "UNSUPPORTED_MEDIA_TYPE", message);
  }
}

/**
 * How POST / answers a request it understood but could not serve. `ok` (the default): 200 with the
 * envelope, as the original executor did, because the MECA desktop app throws away the body of any
 * other status and shows only its text, and the host actor ignores the status; `http`: the status
 * that says whose fault it is (502, 503, 504, 507, and 400 for what the host cannot offer).
 */
export type FailureStatus = "ok" | "http";

/** Codes of a request that is itself malformed: 400 whatever failure_status says. */
const MALFORMED = new Set([
  "INVALID_JSON",
  "INVALID_BODY",
  "BAD_REQUEST",
  "INVALID_IMAGE",
  "CONFLICTING_FIELDS",
]);

/** Kinds of an execution that failed, or that this host could not take on now or at all. */
const UNSERVED: ReadonlySet<ErrorKind> = new Set([
  "bad_request",
  "unavailable",
  "task_failed",
  "task_timeout",
  "insufficient_storage",
]);

/** The status POST / answers `err` with under `failureStatus`, given the status that says whose fault it is. */
function executeStatus(err: ExecutorError, status: number, failureStatus: FailureStatus): number {
  if (failureStatus === "http" || !UNSERVED.has(err.kind) || MALFORMED.has(err.code)) return status;
  return 200;
}

/** An answer as plain parts: what both the Hono app and the Node listener's `POST /` write. */
export interface Answer {
  status: number;
  body: string;
  headers: Record<string, string>;
}

export function envelopeAnswer(
  status: number,
  msg: string,
  code: string,
  headers: Record<string, string> = {},
): Answer {
  return {
    status,
    body: JSON.stringify({ success: false, msg, error: code }),
    headers: { "content-type": "application/json", ...headers },
  };
}

export function envelope(
  status: number,
  msg: string,
  code: string,
  headers: Record<string, string> = {},
): Response {
  return toResponse(envelopeAnswer(status, msg, code, headers));
}

export function toResponse(a: Answer): Response {
  return new Response(a.body, { status: a.status, headers: a.headers });
}

/** The stable code the envelope carries for `err`. */
export function errorCode(err: unknown): string {
  if (err instanceof ExecutorError) return err.code;
  return "INTERNAL";
}

/**
 * The answer to a request that failed with `err`, and the code it carries for the request
 * metrics. A client that went away (`aborted`) gets 499: nobody reads it, and it is no defect.
 */
export function failureAnswer(
  err: unknown,
  aborted: boolean,
  log: Logger,
  requestId: string,
  execute?: { failureStatus: FailureStatus },
): { answer: Answer; code: string } {
  if (err instanceof ClientClosedError || aborted) {
    log.info("Client closed the connection before the answer", { requestId });
    return {
      answer: envelopeAnswer(499, "Client closed the connection", "CLIENT_CLOSED", {
        "x-request-id": requestId,
      }),
      code: "CLIENT_CLOSED",
    };
  }
  const answer = errorAnswer(err, log.child({ requestId }), execute?.failureStatus);
  answer.headers["x-request-id"] = requestId;
  return { answer, code: errorCode(err) };
}

/** The answer to `err`; `failureStatus` only for POST / (see FailureStatus). */
export function errorAnswer(err: unknown, log: Logger, failureStatus?: FailureStatus): Answer {
  const code = errorCode(err);
  if (err instanceof ExecutorError) {
    const own = err instanceof HttpRequestError;
    const status = own ? err.status : STATUS[err.kind];
    if (status >= 500 && status !== 503)
      log.warn(loggable(err), { code, status, ...internals(err) });
    const headers: Record<string, string> = own ? { ...err.headers } : {};
    if (err.retryAfter !== undefined) headers["retry-after"] = String(err.retryAfter);
    // A task that was reached and failed still cost the host: its usage travels as on success.
    if (err.usage) headers["meca-usage"] = usageHeader(err.usage);
    return envelopeAnswer(
      failureStatus === undefined || own ? status : executeStatus(err, status, failureStatus),
      clientMessage(err),
      code,
      headers,
    );
  }
  log.error("Unexpected error", {
    error: err instanceof Error ? (err.stack ?? err.message) : String(err),
  });
  return envelopeAnswer(500, "Internal error in the executor; see its log", code);
}

/** What the log keeps and the client never gets: where it happened, and the low-level reason. */
function internals(err: ExecutorError): { where?: string; cause?: string } {
  const out: { where?: string; cause?: string } = {};
  if (err.where !== undefined) out.where = err.where;
  if (err.cause instanceof Error) out.cause = err.cause.message;
  return out;
}

/** The message for the client: a task's error body follows the message. */
function clientMessage(err: ExecutorError): string {
  return err instanceof TaskFailedError && err.body !== undefined
    ? `${err.message}: ${err.body}`
    : err.message;
}

/**
 * The message for the log. A task's error body goes to its client only: tasks
 * often echo their input, and no task input may reach the log.
 */
function loggable(err: ExecutorError): string {
  return err instanceof TaskFailedError && err.body !== undefined
    ? `${err.message} (body not logged)`
    : err.message;
}
