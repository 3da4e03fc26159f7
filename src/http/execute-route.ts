/** POST /: run a task and return its output in the `{success, msg}` envelope. */
import type { Executor } from "../engine/executor.ts";
import type { Answer } from "./errors.ts";
import { parseExecute, parseJsonBody } from "./schemas.ts";

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
  const msg = await executor.execute(intent, input, { signal, requestId });
  return {
    status: 200,
    body: `{"success":true,"msg":${JSON.stringify(msg)}}`,
    headers: { "content-type": "application/json", "x-request-id": requestId },
  };
}
