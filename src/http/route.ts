/** The shapes of the one HTTP path (pipeline.ts): a request as it reads it, a route, an answer. */
import type { BodyLimits } from "./body-limits.ts";
import type { Answer } from "./errors.ts";

/** A request as the path reads it, whatever runtime it came from. */
export interface PlainRequest {
  readonly method: string;
  /** The request target as sent: the path and the query. */
  readonly url: string;
  /** A header's value by its lower-case name (the first, when it came more than once). */
  header(name: string): string | undefined;
  /** The connection's local address when the runtime tells it (Node): which listener took it. */
  readonly localAddress?: string;
  /** The body as text within `limits` (body.ts: the one reader). */
  body(limits: BodyLimits): Promise<string>;
  /** A signal that aborts when the client goes away before its answer. */
  signal(): AbortSignal;
  /** Whether the client went away (false when nobody asked for the signal). */
  aborted(): boolean;
}

/** The one path: a request in, its answer out; never rejects. */
export type Serve = (req: PlainRequest) => Promise<Answer>;

/** What a route answers, and the code it carries for the request metrics when it is no success. */
export interface RouteResult {
  answer: Answer;
  code?: string;
}

/** A route: what it does with a request whose id, origin and Host passed. */
export type Route = (req: PlainRequest, requestId: string) => Promise<RouteResult> | RouteResult;

/** The path of a request target, without its query. */
export function pathOf(url: string): string {
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

/** A path as a person reads it (percent-escapes decoded where they can be), for the log and the 404 message. */
export function readable(path: string): string {
  if (!path.includes("%")) return path;
  try {
    return decodeURI(path);
  } catch {
    return path;
  }
}
