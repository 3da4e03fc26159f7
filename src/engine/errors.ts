import type { RequestUsage } from "./request-usage.ts";

/**
 * The closed family of executor errors. Each has a stable `code` and a
 * `kind` that says whose fault it is; `src/http/errors.ts` maps kinds to
 * HTTP statuses in one place. Messages are for a person: sentence case,
 * no trailing period, values quoted.
 */

/** What every error of the family may carry besides its message. */
export interface ErrorOptions {
  cause?: unknown;
  /** See `ExecutorError.where`. */
  where?: string;
}

export type ErrorKind =
  | "bad_request" // 400: the caller sent something wrong
  | "forbidden" // 403
  | "client_closed" // 499: the client hung up before its request was read or answered
  | "unavailable" // 503: try again later (Retry-After)
  | "task_failed" // 502: the task crashed, never got ready or answered >= 400
  | "task_timeout" // 504
  | "insufficient_storage" // 507: the task wrote more to its disk than its bound
  | "internal"; // 500: a defect

export class ExecutorError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  /** Seconds a client should wait before retrying, for `unavailable`. */
  readonly retryAfter?: number;
  /**
   * Where it happened, for the log only: a task's address, a container's id. Never part of the
   * message, which goes to the client: tasks' addresses and ids are the host's business.
   */
  readonly where?: string;
  /** What the request used where it reached its task before it failed (a task that answered >= 400). */
  usage?: RequestUsage;

  constructor(
    kind: ErrorKind,
    code: string,
    message: string,
    opts?: ErrorOptions & { retryAfter?: number },
  ) {
    super(message, opts?.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.kind = kind;
    this.code = code;
    this.retryAfter = opts?.retryAfter;
    this.where = opts?.where;
  }
}

/** A request field is missing or malformed; `field` names it. */
export class BadRequestError extends ExecutorError {
  readonly field?: string;
  constructor(message: string, opts?: ErrorOptions & { field?: string; code?: string }) {
    super("bad_request", opts?.code ?? "BAD_REQUEST", message, opts);
    this.field = opts?.field;
  }
}

/** The resource intent can never fit this host. */
export class ExceedsCapacityError extends ExecutorError {
  constructor(message: string) {
    super("bad_request", "EXCEEDS_CAPACITY", message);
  }
}

export class ImageNotFoundError extends ExecutorError {
  constructor(image: string, detail: string, opts?: { cause?: unknown }) {
    super(
      "bad_request",
      "IMAGE_NOT_FOUND",
      `Cannot start task "${image}": image not found and cannot be pulled (${detail})`,
      opts,
    );
  }
}

/** `pull_policy: never` and the image is not on the engine: no registry is contacted. */
export class ImageNotPresentError extends ExecutorError {
  constructor(image: string) {
    super(
      "bad_request",
      "IMAGE_NOT_PRESENT",
      `Cannot start task "${image}": the image is not on this host, and pull_policy is "never": it must be built or pulled on this host`,
    );
  }
}

/** A pull ended without the image: a bound (which one is said), the registry's refusal, or the engine's error. */
export class ImagePullFailedError extends ExecutorError {
  constructor(image: string, why: string, opts?: ErrorOptions) {
    super("task_failed", "IMAGE_PULL_FAILED", `Cannot pull image "${image}": ${why}`, opts);
  }
}

export class ForbiddenError extends ExecutorError {
  constructor(message: string, code = "FORBIDDEN") {
    super("forbidden", code, message);
  }
}

/** The client hung up before it had sent its whole request. */
export class ClientClosedError extends ExecutorError {
  constructor(message = "Client closed the connection") {
    super("client_closed", "CLIENT_CLOSED", message);
  }
}

/** Too many connections or too much buffered input: the executor sheds load before it runs out. */
export class OverloadedError extends ExecutorError {
  constructor(message: string) {
    super("unavailable", "OVERLOADED", message, { retryAfter: 1 });
  }
}

export class PausedError extends ExecutorError {
  constructor() {
    super("unavailable", "PAUSED", "The executor is paused", { retryAfter: 5 });
  }
}

export class NoCapacityError extends ExecutorError {
  constructor(message: string, retryAfter = 1) {
    super("unavailable", "NO_CAPACITY", message, { retryAfter });
  }
}

/** The engine's data root has less free space than `min_free_disk_mb`: no new task starts. */
export class DiskLowError extends ExecutorError {
  constructor(freeMB: number, minMB: number) {
    super(
      "unavailable",
      "DISK_LOW",
      `Cannot start a task: the Docker engine's data root has ${freeMB} MB free, less than min_free_disk_mb (${minMB} MB)`,
      { retryAfter: 30 },
    );
  }
}

/** The host's available memory is below `min_free_host_mem_mb`: no new task starts. */
export class HostMemoryLowError extends ExecutorError {
  constructor(availableMB: number, minMB: number) {
    super(
      "unavailable",
      "HOST_MEMORY_LOW",
      `Cannot start a task: the host has ${availableMB} MB of memory available, less than min_free_host_mem_mb (${minMB} MB)`,
      { retryAfter: 30 },
    );
  }
}

/** A task's writable layer grew past `task_disk_mb`; the task was removed. */
export class TaskDiskExceededError extends ExecutorError {
  constructor(image: string, usedMB: number, boundMB: number) {
    super(
      "insufficient_storage",
      "TASK_DISK_EXCEEDED",
      `Task "${image}" wrote ${usedMB} MB to its disk, more than task_disk_mb (${boundMB} MB); it was removed`,
    );
  }
}

export class EngineUnavailableError extends ExecutorError {
  constructor(message: string, opts?: ErrorOptions) {
    super("unavailable", "ENGINE_UNAVAILABLE", message, { ...opts, retryAfter: 5 });
  }
}

/** The container stopped before it printed the ready mark. */
export class ContainerExitedError extends ExecutorError {
  readonly exitCode: number;
  readonly lastLines: string[];
  constructor(exitCode: number, lastLines: string[], message?: string) {
    super(
      "task_failed",
      "TASK_EXITED",
      message ??
        `Task container exited with code ${exitCode} before it was ready${formatLines(lastLines)}`,
    );
    this.exitCode = exitCode;
    this.lastLines = lastLines;
  }
}

export class TaskStartError extends ExecutorError {
  constructor(message: string, opts?: ErrorOptions & { code?: string }) {
    super("task_failed", opts?.code ?? "TASK_START_FAILED", message, opts);
  }
}

/**
 * The task answered with a status >= 400, crashed mid-request, or could not be reached.
 * `status` and `body` are the task's answer, apart from the message: the body goes to the
 * client only (tasks often echo their input, which must never reach the log).
 */
export class TaskFailedError extends ExecutorError {
  readonly status?: number;
  readonly body?: string;
  constructor(
    message: string,
    opts?: ErrorOptions & { status?: number; body?: string; code?: string },
  ) {
    super("task_failed", opts?.code ?? "TASK_FAILED", message, opts);
    this.status = opts?.status;
    this.body = opts?.body;
  }
}

/** No connection could be made to the task: nothing reached it, so a retry is safe. */
export class TaskConnectError extends ExecutorError {
  constructor(message: string, opts?: ErrorOptions) {
    super("task_failed", "TASK_UNREACHABLE", message, opts);
  }
}

/** The task's answer grew past `max_answer_bytes`; the connection was cut. */
export class TaskAnswerTooLargeError extends TaskFailedError {
  constructor(endpoint: string, limitBytes: number) {
    super(
      `Task answered more than max_answer_bytes (${limitBytes} bytes); the answer was cut off`,
      {
        code: "TASK_ANSWER_TOO_LARGE",
        where: endpoint,
      },
    );
  }
}

export class TaskTimeoutError extends ExecutorError {
  constructor(message: string, opts?: ErrorOptions) {
    super("task_timeout", "TASK_TIMEOUT", message, opts);
  }
}

export class InternalError extends ExecutorError {
  constructor(message: string, opts?: ErrorOptions) {
    super("internal", "INTERNAL", message, opts);
  }
}

function formatLines(lines: string[]): string {
  return lines.length === 0 ? "" : `; last log lines:\n${lines.join("\n")}`;
}

/**
 * A start the engine called off (TaskRuntime.start's signal aborted): why (the signal's reason)
 * and the task's last output lines, for a ready timeout's answer. Not an answer of its own: the
 * engine answers with `reason`, or with a ready timeout's error.
 */
export class StartAbortedError extends Error {
  constructor(
    readonly reason: unknown,
    readonly lastLines: string[],
  ) {
    super(`Start called off: ${(reason as Error)?.message ?? String(reason)}`);
    this.name = "StartAbortedError";
  }
}
