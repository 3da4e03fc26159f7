/**
 * The request body and client signal straight from @hono/node-server's
 * bindings (`c.env.incoming`, `c.env.outgoing`), typed structurally so no
 * `node:` import enters the HTTP layer. On the hot path a Web Request
 * (Headers, ReadableStream, AbortController, URL) costs more than the forward
 * itself. Other runtimes and `app.request()` have no bindings: undefined.
 */
import { PayloadTooLargeError } from "../engine/errors.ts";

interface NodeBindings {
  incoming?: {
    headers: Record<string, string | string[] | undefined>;
    on(event: string, listener: (...args: any[]) => void): unknown;
  };
  outgoing?: { writableFinished: boolean; once(event: "close", listener: () => void): unknown };
}

const decoder = new TextDecoder();

/** The body (at most `max` bytes, else PayloadTooLargeError) and a signal that aborts when the client goes away. */
export async function readNodeBody(env: unknown, max: number): Promise<{ text: string; signal: AbortSignal } | undefined> {
  const b = env as NodeBindings | undefined;
  if (!b?.incoming || !b.outgoing) return undefined;
  const text = await readIncoming(b.incoming, max);
  const ac = new AbortController();
  const out = b.outgoing;
  out.once("close", () => {
    if (!out.writableFinished) ac.abort(new Error("Client connection prematurely closed"));
  });
  return { text, signal: ac.signal };
}

function readIncoming(inc: NonNullable<NodeBindings["incoming"]>, max: number): Promise<string> {
  if (Number(inc.headers["content-length"]) > max) return Promise.reject(new PayloadTooLargeError(max));
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    inc.on("data", (chunk: Uint8Array) => {
      size += chunk.length;
      if (size > max) reject(new PayloadTooLargeError(max));
      else chunks.push(chunk);
    });
    inc.on("end", () => {
      if (chunks.length === 1) return resolve(decoder.decode(chunks[0]));
      const all = new Uint8Array(size);
      let at = 0;
      for (const ch of chunks) {
        all.set(ch, at);
        at += ch.length;
      }
      resolve(decoder.decode(all));
    });
    inc.on("error", reject);
  });
}
