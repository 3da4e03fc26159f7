/** A starting replica's ready wait: the mark in its log, within the ready timeout on the Clock. */
import { ContainerExitedError, TaskStartError } from "./errors.ts";
import type { Clock, ContainerBackend } from "./ports.ts";
import { READY_MARK } from "./settings.ts";
import type { Task } from "./task.ts";
import { deadline } from "./waits.ts";

/** Waits for the ready mark, bounded by the ready timeout on the engine's clock. */
export async function waitReady(
  d: { backend: ContainerBackend; clock: Clock },
  task: Task,
  id: string,
  timeoutMs: number,
): Promise<void> {
  const dl = deadline(
    d.clock,
    timeoutMs,
    () => new TaskStartError("Ready timeout", { code: "TASK_NOT_READY" }),
    task.abort.signal,
  );
  try {
    await d.backend.waitForMark(id, { mark: READY_MARK, signal: dl.signal });
  } catch (e) {
    if (dl.timedOut() && !task.abort.signal.aborted) {
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
    dl.cancel();
  }
}
