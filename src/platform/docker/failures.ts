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
  return missingDevice(reason, err) ?? new TaskStartError(`Cannot create container "${spec.name}": ${reason}`, { cause: err });
}

/** `gpus`: the device IDs the container asked for, named when the engine cannot pass them. */
export function startFailure(err: unknown, id: string, gpus: string[] = []): ExecutorError {
  if (err instanceof ExecutorError) return err;
  const reason = reasonOf(err);
  return missingDevice(reason, err, gpus) ?? new TaskStartError(`Cannot start container "${id}": ${reason}`, { cause: err });
}

/**
 * A device or folder the request asked for is missing where the tasks run, as the engine found
 * when it created or started the container: the SGX device (Devices), the AESM folder (a bind
 * Mount, which fails when absent), or GPUs (no NVIDIA runtime or hook). The client asked for
 * something this host cannot give: 400, with the engine's reason.
 */
function missingDevice(reason: string, cause: unknown, gpus: string[] = []): ExecutorError | undefined {
  const device = /adding custom device "([^"]+)"/.exec(reason)?.[1];
  if (device !== undefined) {
    return new BadRequestError(`Field "use_sgx" cannot be served: the SGX device "${device}" is not available where tasks run (${reason})`, {
      field: "use_sgx",
      code: "SGX_UNAVAILABLE",
      cause,
    });
  }
  const folder = /bind source path does not exist: (\S+)/.exec(reason)?.[1];
  if (folder !== undefined) {
    return new BadRequestError(`Field "use_sgx" cannot be served: the AESM socket folder "${folder}" does not exist where tasks run (${reason})`, {
      field: "use_sgx",
      code: "SGX_UNAVAILABLE",
      cause,
    });
  }
  if (/device driver "nvidia"/.test(reason)) {
    const which = gpus.length > 0 ? ` ${gpus.map((g) => `"${g}"`).join(", ")}` : "s";
    return new BadRequestError(`Field "resource.use_gpu" cannot be served: the engine cannot pass GPU${which} to containers (${reason})`, {
      field: "resource.use_gpu",
      code: "GPU_UNAVAILABLE",
      cause,
    });
  }
  return undefined;
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
