/**
 * Task client over the global `fetch` only, for runtimes without undici
 * (Deno). Connection pooling is left to the runtime's fetch. The answer is
 * counted while it streams and cut off past `maxAnswerBytes`; the engine's
 * request timeout (the caller's signal) bounds the wait.
 */
import { TaskAnswerTooLargeError, TaskConnectError, TaskFailedError } from "../engine/errors.ts";
import type { TaskClient, TaskRequest, TaskResponse } from "../engine/ports.ts";
import { withoutAddress } from "./task-address.ts";

/** Low-level codes (Node) and messages (Deno) of a connection that was never made. */
const CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
]);
const CONNECT_MESSAGE =
  /connection refused|tcp connect error|dns error|failed to lookup|no route to host|network is unreachable/i;

export interface FetchTaskClientOptions {
  fetch?: typeof fetch;
  /** Largest answer body read (default 16 MiB). */
  maxAnswerBytes?: number;
}

export class FetchTaskClient implements TaskClient {
  readonly #fetch: typeof fetch;
  readonly #max: number;

  constructor(opts: FetchTaskClientOptions = {}) {
    this.#fetch = opts.fetch ?? globalThis.fetch;
    this.#max = opts.maxAnswerBytes ?? 16 * 1024 * 1024;
  }

  async send(req: TaskRequest): Promise<TaskResponse> {
    let res: Response;
    try {
      res = await this.#fetch(req.endpoint + req.path, {
        method: req.method,
        body: req.body,
        headers: req.body === undefined ? undefined : { "content-type": "application/json" },
        signal: req.signal,
      });
    } catch (err) {
      if (req.signal?.aborted) throw req.signal.reason;
      const origin = req.endpoint;
      if (isConnectFailure(err)) {
        throw new TaskConnectError(`Cannot connect to the task (${describe(err, origin)})`, {
          cause: err,
          where: origin,
        });
      }
      throw new TaskFailedError(`Request to the task failed (${describe(err, origin)})`, {
        cause: err,
        where: origin,
      });
    }
    try {
      const { text, size } = await readLimited(res, req.endpoint, this.#max);
      const sent = req.body === undefined ? 0 : new TextEncoder().encode(req.body).length;
      return { status: res.status, body: text, sent, received: size };
    } catch (err) {
      if (req.signal?.aborted) throw req.signal.reason;
      if (err instanceof TaskAnswerTooLargeError) throw err;
      throw new TaskFailedError(`Task broke off its answer (${describe(err, req.endpoint)})`, {
        cause: err,
        where: req.endpoint,
      });
    }
  }

  forget(_endpoint: string): void {
    // fetch owns its connections; nothing to drop.
  }

  async close(): Promise<void> {}
}

/** The body as text, and its bytes, at most `max`; past it the stream is cancelled, which closes its connection. */
async function readLimited(
  res: Response,
  endpoint: string,
  max: number,
): Promise<{ text: string; size: number }> {
  if (Number(res.headers.get("content-length")) > max) {
    await res.body?.cancel().catch(() => {});
    throw new TaskAnswerTooLargeError(endpoint, max);
  }
  if (res.body === null) return { text: "", size: 0 };
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel().catch(() => {});
      throw new TaskAnswerTooLargeError(endpoint, max);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return { text: new TextDecoder().decode(all), size };
}

function isConnectFailure(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && CONNECT_CODES.has(code)) return true;
    if (CONNECT_MESSAGE.test(e.message)) return true;
  }
  return false;
}

/** The innermost reason, without the task's address (which stays in the error's `where`, for the log). */
function describe(err: unknown, endpoint: string): string {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e instanceof Error && e.cause instanceof Error; depth++)
    e = e.cause;
  return withoutAddress(e instanceof Error ? e.message : String(e), endpoint);
}
