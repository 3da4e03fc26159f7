/** A starting replica's ready wait: the mark in its log, within the ready timeout on the Clock. */
import { ContainerExitedError, TaskStartError } from "./errors.ts";
import type { Clock, ContainerBackend } from "./ports.ts";
import { READY_MARK } from "./settings.ts";
import type { Task } from "./task.ts";

/** Waits for the ready mark, bounded by the ready timeout on the engine's clock. */
export async function waitReady(
  d: { backend: ContainerBackend; clock: Clock },
  task: Task,
  id: string,
  timeoutMs: number,
): Promise<void> {
  const timeout = new AbortController();
  const cancel = d.clock.setTimer(timeoutMs, () =>
    timeout.abort(new TaskStartError("Ready timeout", { code: "TASK_NOT_READY" })),
  );
  const both = new AbortController();
  const onAbort = () => both.abort(task.abort.signal.reason);
  task.abort.signal.addEventListener("abort", onAbort, { once: true });
  timeout.signal.addEventListener("abort", () => both.abort(timeout.signal.reason), { once: true });
  try {
    await d.backend.waitForMark(id, { mark: READY_MARK, signal: both.signal });
  } catch (e) {
    if (timeout.signal.aborted && !task.abort.signal.aborted) {
      const lines = await d.backend.logsTail(id, 10).catch(() => []);
      throw new TaskStartError(
        `Task "${task.spec.image}" did not print "${READY_MARK}" within the ready timeout of ${timeoutMs / 1000} s${lines.length ? `; last log lines:\n${lines.join("\n")}` : ""}`,
        { code: "TASK_NOT_READY" },
      );
    }
    if (e instanceof ContainerExitedError) {
      throw new ContainerExitedError(
        e.exitCode,
        e.lastLines,
        `Task "${task.spec.image}" exited with code ${e.exitCode} before it was ready${e.lastLines.length ? `; last log lines:\n${e.lastLines.join("\n")}` : ""}`,
      );
    }
    throw e;
  } finally {
    cancel();
    task.abort.signal.removeEventListener("abort", onAbort);
  }
}
