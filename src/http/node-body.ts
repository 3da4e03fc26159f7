/**
 * Node's side of a request (types only: no `node:` import at run time): its body as a source for
 * the one reader (body.ts), and the signal that aborts when its client goes away.
 */
import { ClientClosedError } from "../engine/errors.ts";
import type { BodySource } from "./body.ts";

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

/** A signal that aborts with ClientClosedError when the connection closes before the answer was sent. */
export function clientSignal(out: NodeOutgoing): AbortSignal {
  const ac = new AbortController();
  out.once("close", () => {
    if (!out.writableFinished) ac.abort(new ClientClosedError());
  });
  return ac.signal;
}

/**
 * The request's body as a source. Past a limit the rest is read and dropped, so that the answer
 * can still reach the client (the listener closes the connection after a 413).
 */
export function nodeBodySource(inc: NodeIncoming): BodySource {
  return (sink) => {
    inc.on("data", (chunk: Uint8Array) => sink.chunk(chunk));
    inc.on("end", () => sink.end());
    inc.on("error", () => sink.closed());
    inc.on("close", () => {
      if (inc.complete === false) sink.closed();
    });
  };
}
