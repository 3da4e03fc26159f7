/**
 * Reading request bodies within bounds: a limit per route, checked on the
 * declared length before a byte is read and on every chunk while it is read
 * (a chunked body declares none), and one budget for the input that all
 * requests together hold in memory.
 */
import type { Context } from "hono";
import { ClientClosedError } from "../engine/errors.ts";
import { BodyLimits, type InputBudget } from "./body-limits.ts";
import { readNodeBody } from "./node-body.ts";

export { BodyLimits, InputBudget } from "./body-limits.ts";

/** The context variables readBody uses (the app's AppEnv has them). */
export type BodyEnv = { Variables: { inputBudget?: InputBudget; bodyLimits?: BodyLimits } };

/**
 * The body of `c`'s request as text, within `max` bytes and the app's input
 * budget, and the signal that aborts when the client goes away. What the
 * body holds of the budget is given back when the request ends (see app.ts).
 */
export async function readBody<E extends BodyEnv>(
  c: Context<E>,
  max: number,
): Promise<{ text: string; signal: AbortSignal }> {
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
