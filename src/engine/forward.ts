/**
 * The hot path: send a task its input and hand back its answer. Connection
 * refusals right after the ready mark are retried within the ready timeout;
 * a container found dead means nothing reached it, so the caller may retry once.
 */
import {
  TaskConnectError,
  TaskDiskExceededError,
  TaskFailedError,
  TaskTimeoutError,
} from "./errors.ts";
import type { Counter } from "./metrics.ts";
import type { Clock, TaskRuntime, TaskClient } from "./ports.ts";
import type { EngineSettings } from "./settings.ts";
import type { TaskPool } from "./task-pool.ts";
import { deadline, delay } from "./waits.ts";
import type { Task } from "./task.ts";
import { meterAfter, meterBefore, type RequestUsage } from "./usage.ts";

export interface ForwardContext {
  client: TaskClient;
  runtime: TaskRuntime;
  clock: Clock;
  pool: TaskPool;
  settings: () => EngineSettings;
  /** Counts requests a task answered. */
  served: Counter;
}

/** The task's container is gone and nothing reached it, so one retry on a fresh one is safe. */
export class TaskGoneError extends TaskFailedError {}

/** What a request that reached its task used, as forwardToTask measured it (usage.ts). */
export type TaskUse = Omit<RequestUsage, "queueMs" | "startMs">;

export async function forwardToTask(
  task: Task,
  input: string,
  signal: AbortSignal | undefined,
  ctx: ForwardContext,
  /** Given what the request used once the task answered; unset: nothing is measured. */
  used?: (u: TaskUse) => void,
): Promise<string> {
  const s = ctx.settings();
  const sgxRa = task.spec.sgx && input === "SGXRAREQUEST";
  const path = task.spec.sgx ? (sgxRa ? "/ra" : "/run") : "/";
  const dl = deadline(
    ctx.clock,
    s.requestTimeoutMs,
    () => new DOMException("The operation timed out.", "TimeoutError"),
    signal,
  );
  const sig = dl.signal;
  const image = task.spec.image;
  let backoff = 10;
  try {
    for (;;) {
      // Removed while this request waited to try again (its container exited, say): nothing
      // reached it, so the request may go to a fresh one.
      const endpoint = task.endpoint;
      if (endpoint === undefined)
        throw new TaskGoneError(
          `Task "${image}" is gone: it was removed before the request reached it`,
        );
      const m = used ? meterBefore(task, ctx.clock.now()) : undefined;
      try {
        const res = await ctx.client.send({
          method: sgxRa ? "GET" : "POST",
          endpoint,
          path,
          body: sgxRa ? undefined : input,
          signal: sig,
        });
        task.answered();
        ctx.served.inc();
        if (m)
          used!(
            meterAfter(m, task, {
              now: ctx.clock.now(),
              gpus: task.reservation?.gpus.length ?? 0,
              inBytes: res.sent,
              outBytes: res.received,
              clock: ctx.clock,
            }),
          );
        if (res.status >= 400) {
          throw new TaskFailedError(`Task "${image}" answered ${res.status}`, {
            status: res.status,
            body: truncate(res.body),
          });
        }
        return res.body;
      } catch (e) {
        if (!(e instanceof TaskConnectError) || sig.aborted) throw e;
        // After the mark a task may still be opening its port: retry within the ready timeout.
        const st = task.containerId
          ? await ctx.runtime.inspect(task.containerId).catch(() => undefined)
          : undefined;
        const ready = task.state.kind === "ready" ? task.state : undefined;
        if (st?.running && ready && ctx.clock.now() < ready.since + s.readyTimeoutMs) {
          await delay(ctx.clock, backoff, sig);
          backoff = Math.min(backoff * 2, 250);
          continue;
        }
        if (!st?.running) {
          ctx.pool.remove(task, "container is not running");
          throw new TaskGoneError(`Task "${image}" is gone: its container stopped`, { cause: e });
        }
        throw new TaskFailedError(`Task "${image}" refused the connection`, { cause: e });
      }
    }
  } catch (e) {
    // Removed for writing past its disk bound: that is why its requests failed, whatever the socket said.
    const removedFor = task.abort.signal.reason;
    if (removedFor instanceof TaskDiskExceededError) throw removedFor;
    if (dl.timedOut() && !signal?.aborted) {
      throw new TaskTimeoutError(
        `Task "${image}" did not answer within the request timeout of ${s.requestTimeoutMs / 1000} s`,
      );
    }
    throw e;
  } finally {
    dl.cancel();
  }
}

function truncate(s: string): string {
  return s.length > 2000 ? `${s.slice(0, 2000)}...` : s;
}
