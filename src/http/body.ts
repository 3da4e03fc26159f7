/**
 * Reading request bodies within bounds: a limit per route, checked on the
 * declared length before a byte is read and on every chunk while it is read
 * (a chunked body declares none), and one budget for the input that all
 * requests together hold in memory.
 */
import type { Context } from "hono";
import { ClientClosedError, OverloadedError, PayloadTooLargeError } from "../engine/errors.ts";
import type { AppEnv } from "./app.ts";
import { readNodeBody } from "./node-body.ts";

/** Bytes of request input held in memory by all requests together; what a request took is given back when it ends. */
export class InputBudget {
  readonly max: number;
  #used = 0;

  constructor(max: number) {
    this.max = max;
  }

  get used(): number {
    return this.#used;
  }

  take(n: number): boolean {
    if (this.#used + n > this.max) return false;
    this.#used += n;
    return true;
  }

  give(n: number): void {
    this.#used = Math.max(0, this.#used - n);
  }
}

/** One request's limits: its route's and its share of the shared budget. */
export class BodyLimits {
  readonly #max: number;
  readonly #budget: InputBudget | undefined;
  #size = 0;
  /** Bytes this request holds from the budget. */
  held = 0;

  constructor(max: number, budget?: InputBudget) {
    this.#max = max;
    this.#budget = budget;
  }

  /** Throws before reading when the declared Content-Length is past the limit. */
  checkDeclared(contentLength: string | string[] | null | undefined): void {
    if (Number(contentLength) > this.#max) throw new PayloadTooLargeError(this.#max);
  }

  /** Counts a chunk; returns the error to answer with when it goes past a limit. */
  count(n: number): Error | undefined {
    this.#size += n;
    if (this.#size > this.#max) return this.#drop(new PayloadTooLargeError(this.#max));
    if (this.#budget === undefined) return undefined;
    if (!this.#budget.take(n)) {
      return this.#drop(new OverloadedError(`Too much request input in memory (max_buffered_input_bytes ${this.#budget.max}); retry later`));
    }
    this.held += n;
    return undefined;
  }

  /** Gives back what this request holds. */
  release(): void {
    this.#budget?.give(this.held);
    this.held = 0;
  }

  #drop(err: Error): Error {
    this.release();
    return err;
  }
}

/**
 * The body of `c`'s request as text, within `max` bytes and the app's input
 * budget, and the signal that aborts when the client goes away. What the
 * body holds of the budget is given back when the request ends (see app.ts).
 */
export async function readBody(c: Context<AppEnv>, max: number): Promise<{ text: string; signal: AbortSignal }> {
  const limits = new BodyLimits(max, c.get("inputBudget"));
  c.set("bodyLimits", limits);
  const fromNode = await readNodeBody(c.env, limits);
  if (fromNode) return fromNode;
  const req = c.req.raw;
  limits.checkDeclared(req.headers.get("content-length"));
  if (req.body === null) return { text: "", signal: req.signal };
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      const err = limits.count(value.length);
      if (err) {
        await reader.cancel().catch(() => {});
        throw err;
      }
      chunks.push(value);
    }
  } catch (err) {
    if (req.signal.aborted) throw new ClientClosedError();
    throw err;
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const ch of chunks) {
    all.set(ch, at);
    at += ch.length;
  }
  return { text: new TextDecoder().decode(all), signal: req.signal };
}
