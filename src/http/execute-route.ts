/** POST /: run a task and return its output in the `{success, msg}` envelope. */
import type { Executor } from "../engine/executor.ts";
import type { Answer } from "./errors.ts";
import { parseExecute, parseJsonBody } from "./schemas.ts";
import { usageHeader, type RequestUsage } from "../engine/usage.ts";

/**
 * What POST / does with a body read in full: validate it, run it, and the answer. Errors are thrown
 * for the pipeline to map (pipeline.ts).
 */
export async function execute(
  executor: Pick<Executor, "execute">,
  text: string,
  signal: AbortSignal,
  requestId: string,
): Promise<Answer> {
  const { intent, input } = parseExecute(parseJsonBody(text));
  let usage: RequestUsage | undefined;
  const msg = await executor.execute(intent, input, {
    signal,
    requestId,
    onUsage: (u) => (usage = u),
  });
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "x-request-id": requestId,
  };
  // In a header, not the body: the MECA host actor hashes the body (docs/usage.md).
  if (usage) headers["meca-usage"] = usageHeader(usage);
  return { status: 200, body: `{"success":true,"msg":${JSON.stringify(msg)}}`, headers };
}
