/**
 * The request body and client signal straight from @hono/node-server's
 * bindings (`c.env.incoming`, `c.env.outgoing`), typed structurally so no
 * `node:` import enters the HTTP layer. On the hot path a Web Request
 * (Headers, ReadableStream, AbortController, URL) costs more than the forward
 * itself. Other runtimes and `app.request()` have no bindings: undefined.
 */
import { ClientClosedError } from "../engine/errors.ts";
import type { BodyLimits } from "./body-limits.ts";

/** Node's IncomingMessage, as far as reading a body goes. */
export interface NodeIncoming {
  headers: Record<string, string | string[] | undefined>;
  complete?: boolean;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Node passes each event its own argument types
  on(event: string, listener: (...args: any[]) => void): unknown;
}

/** Node's ServerResponse, as far as telling a client that went away goes. */
export interface NodeOutgoing {
  writableFinished: boolean;
  once(event: "close", listener: () => void): unknown;
}

interface NodeBindings {
  incoming?: NodeIncoming;
  outgoing?: NodeOutgoing;
}

const decoder = new TextDecoder();

/**
 * The body (within `limits`, else their error) and a signal that aborts when the client goes away.
 * A client that hangs up before the body's end: ClientClosedError.
 */
export async function readNodeBody(
  env: unknown,
  limits: BodyLimits,
): Promise<{ text: string; signal: AbortSignal } | undefined> {
  const b = env as NodeBindings | undefined;
  if (!b?.incoming || !b.outgoing) return undefined;
  const signal = clientSignal(b.outgoing);
  const text = await readIncoming(b.incoming, limits);
  return { text, signal };
}

/** A signal that aborts with ClientClosedError when the connection closes before the answer was sent. */
export function clientSignal(out: NodeOutgoing): AbortSignal {
  const ac = new AbortController();
  out.once("close", () => {
    if (!out.writableFinished) ac.abort(new ClientClosedError());
  });
  return ac.signal;
}

/** The body as text, within `limits` (else their error); a client that hangs up before its end: ClientClosedError. */
export function readIncoming(inc: NodeIncoming, limits: BodyLimits): Promise<string> {
  limits.checkDeclared(inc.headers["content-length"]);
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    let failed = false;
    // Past a limit the rest is read and dropped, so that the answer can still reach the client.
    const fail = (err: unknown) => {
      failed = true;
      chunks.length = 0;
      reject(err);
    };
    inc.on("data", (chunk: Uint8Array) => {
      if (failed) return;
      size += chunk.length;
      const err = limits.count(chunk.length);
      if (err) fail(err);
      else chunks.push(chunk);
    });
    inc.on("end", () => {
      if (failed) return;
      if (chunks.length === 1) return resolve(decoder.decode(chunks[0]));
      const all = new Uint8Array(size);
      let at = 0;
      for (const ch of chunks) {
        all.set(ch, at);
        at += ch.length;
      }
      resolve(decoder.decode(all));
    });
    inc.on("error", () => fail(new ClientClosedError()));
    inc.on("close", () => {
      if (inc.complete === false) fail(new ClientClosedError());
    });
  });
}
