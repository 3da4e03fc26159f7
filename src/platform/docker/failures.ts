/** Docker's failures → the engine's errors, for every transport. */
import {
  BadRequestError,
  EngineUnavailableError,
  ExecutorError,
  ImageNotFoundError,
  InternalError,
  TaskStartError,
} from "../../engine/errors.ts";
import type { ContainerSpec } from "../../engine/ports.ts";
import { DockerApiError, isApiStatus } from "./docker-api.ts";

/** 409: the name is taken (CONTAINER_NAME_CONFLICT); 404: no such image; else the task cannot start. */
export function createFailure(err: unknown, spec: ContainerSpec): ExecutorError {
  if (err instanceof ExecutorError) return err;
  const reason = reasonOf(err);
  if (isApiStatus(err, 409)) {
    return new TaskStartError(`Cannot create container "${spec.name}": the name is already in use (${reason})`, {
      cause: err,
      code: "CONTAINER_NAME_CONFLICT",
    });
  }
  if (isApiStatus(err, 404)) return new ImageNotFoundError(spec.image, reason, { cause: err });
  return new TaskStartError(`Cannot create container "${spec.name}": ${reason}`, { cause: err });
}

export function startFailure(err: unknown, id: string): ExecutorError {
  if (err instanceof ExecutorError) return err;
  return new TaskStartError(`Cannot start container "${id}": ${reasonOf(err)}`, { cause: err });
}

/**
 * Any other failure: the engine's fault (5xx, unreachable), or a request the
 * engine refused (4xx: what the client asked for, such as an image reference
 * the engine cannot parse) → 400 ENGINE_REJECTED with the engine's reason.
 */
export function engineFailure(err: unknown, action: string): ExecutorError {
  if (err instanceof ExecutorError) return err;
  if (err instanceof DockerApiError) {
    const message = `${action}: ${err.reason}`;
    if (err.status >= 500) return new EngineUnavailableError(message, { cause: err });
    if (err.status >= 400) return new BadRequestError(`${action}: the Docker engine refused it (${err.status}): ${err.reason}`, { code: "ENGINE_REJECTED", cause: err });
    return new InternalError(message, { cause: err });
  }
  const reason = err instanceof Error ? err.message : String(err);
  return new EngineUnavailableError(`${action}: ${reason}`, { cause: err });
}

function reasonOf(err: unknown): string {
  if (err instanceof DockerApiError) return err.reason;
  return err instanceof Error ? err.message : String(err);
}
