/** Docker's failures → the engine's errors, for every transport. */
import {
  BadRequestError,
  EngineUnavailableError,
  ExecutorError,
  ImageNotFoundError,
  InternalError,
  TaskStartError,
} from "../../engine/errors.ts";
import type { ContainerSpec } from "./backend.ts";
import { DockerApiError, isApiStatus } from "./docker-api.ts";

/** 409: the name is taken (CONTAINER_NAME_CONFLICT); 404: no such image; else the task cannot start. */
export function createFailure(err: unknown, spec: ContainerSpec): ExecutorError {
  if (err instanceof ExecutorError) return err;
  const reason = reasonOf(err);
  if (isApiStatus(err, 409)) {
    return new TaskStartError(
      `Cannot create container "${spec.name}": the name is already in use (${reason})`,
      {
        cause: err,
        code: "CONTAINER_NAME_CONFLICT",
      },
    );
  }
  if (isApiStatus(err, 404)) return new ImageNotFoundError(spec.image, reason, { cause: err });
  return (
    missingDevice(reason, err) ??
    new TaskStartError(`Cannot create container "${spec.name}": ${reason}`, { cause: err })
  );
}

/** `gpus`: the device IDs the container asked for, named when the engine cannot pass them. */
export function startFailure(err: unknown, id: string, gpus: string[] = []): ExecutorError {
  if (err instanceof ExecutorError) return err;
  const reason = reasonOf(err);
  return (
    missingDevice(reason, err, gpus) ??
    new TaskStartError(`Cannot start the task's container: ${withoutId(reason, id)}`, {
      cause: err,
      where: id,
    })
  );
}

/**
 * A device or folder the request asked for is missing where the tasks run, as the engine found
 * when it created or started the container: the SGX device (Devices), the AESM folder (a bind
 * Mount, which fails when absent), or GPUs (no NVIDIA runtime or hook). The client asked for
 * something this host cannot give: 400, with the engine's reason.
 */
function missingDevice(
  reason: string,
  cause: unknown,
  gpus: string[] = [],
): ExecutorError | undefined {
  const device = /adding custom device "([^"]+)"/.exec(reason)?.[1];
  if (device !== undefined) {
    return new BadRequestError(
      `Field "use_sgx" cannot be served: the SGX device "${device}" is not available where tasks run (${reason})`,
      {
        field: "use_sgx",
        code: "SGX_UNAVAILABLE",
        cause,
      },
    );
  }
  const folder = /bind source path does not exist: (\S+)/.exec(reason)?.[1];
  if (folder !== undefined) {
    return new BadRequestError(
      `Field "use_sgx" cannot be served: the AESM socket folder "${folder}" does not exist where tasks run (${reason})`,
      {
        field: "use_sgx",
        code: "SGX_UNAVAILABLE",
        cause,
      },
    );
  }
  if (/device driver "nvidia"/.test(reason)) {
    const which = gpus.length > 0 ? ` ${gpus.map((g) => `"${g}"`).join(", ")}` : "s";
    return new BadRequestError(
      `Field "resource.use_gpu" cannot be served: the engine cannot pass GPU${which} to containers (${reason})`,
      {
        field: "resource.use_gpu",
        code: "GPU_UNAVAILABLE",
        cause,
      },
    );
  }
  return undefined;
}

/**
 * Any other failure: the engine's fault (5xx, unreachable), or a request the
 * engine refused (4xx: what the client asked for, such as an image reference
 * the engine cannot parse) → 400 ENGINE_REJECTED with the engine's reason.
 */
export function engineFailure(err: unknown, action: string, id?: string): ExecutorError {
  if (err instanceof ExecutorError) return err;
  const where = id;
  if (err instanceof DockerApiError) {
    const reason = withoutId(err.reason, id);
    const message = `${action}: ${reason}`;
    if (err.status >= 500) return new EngineUnavailableError(message, { cause: err, where });
    if (err.status >= 400)
      return new BadRequestError(
        `${action}: the Docker engine refused it (${err.status}): ${reason}`,
        { code: "ENGINE_REJECTED", cause: err, where },
      );
    return new InternalError(message, { cause: err, where });
  }
  const reason = err instanceof Error ? err.message : String(err);
  return new EngineUnavailableError(`${action}: ${withoutId(reason, id)}`, { cause: err, where });
}

/**
 * The engine's reason without the container's id, whole or short (12 digits), which the engine
 * writes into many of its messages: an answer never carries a task's id (the error's `where`
 * keeps it for the log).
 */
export function withoutId(reason: string, id: string | undefined): string {
  if (id === undefined || id.length < 12) return reason;
  return reason.split(id).join("<container>").split(id.slice(0, 12)).join("<container>");
}

function reasonOf(err: unknown): string {
  if (err instanceof DockerApiError) return err.reason;
  return err instanceof Error ? err.message : String(err);
}
