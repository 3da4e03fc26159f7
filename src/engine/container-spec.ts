/** The container a replica runs in, as the backend is asked to create it; and a small abort helper. */
import type { Reservation } from "./ledger.ts";
import type { ContainerSpec } from "./ports.ts";
import { LABELS, ownership, type EngineSettings } from "./settings.ts";
import { keyHash, type TaskIntent, type TaskSpec } from "./task-spec.ts";
import type { TaskNet } from "./task-networks.ts";
import type { Task } from "./task.ts";

const MB = 1024 * 1024;
const SHM_MB = 64;

/** Labels say whose it is (instance, run) and which key it serves; limits come from the task's spec and reservation. */
export function containerSpecFor(
  task: Task,
  r: Reservation,
  s: EngineSettings,
  o: { run: string; gpuIds?: (indexes: readonly number[]) => string[]; net?: TaskNet },
): ContainerSpec {
  const spec = task.spec;
  return {
    name: task.id,
    image: spec.image,
    labels: {
      ...ownership(s.instance, { run: o.run }),
      [LABELS.key]: keyHash(task.key),
      [LABELS.image]: spec.image,
      [LABELS.spec]: specLabel(spec),
    },
    nanoCpus: spec.cpuTenths * 100_000_000,
    memoryBytes: spec.memMB * MB,
    pidsLimit: s.pidsLimit,
    runtime: spec.runtime,
    gpus: r.gpus.length > 0 ? (o.gpuIds?.(r.gpus) ?? r.gpus.map(String)) : undefined,
    sgx: spec.sgx ? { device: s.sgx.device, aesmdPath: s.sgx.aesmdPath } : undefined,
    network: o.net?.name ?? (s.network || undefined),
    securityOpt: s.noNewPrivileges ? ["no-new-privileges:true"] : [],
    capDrop: [...s.capDrop],
    nofile: s.nofile,
    diskBytes: s.taskDiskMB > 0 ? s.taskDiskMB * MB : undefined,
    // Docker's own default size, never more than the memory it is charged to.
    shmBytes: Math.min(SHM_MB, spec.memMB) * MB,
    privileged: false,
  };
}

/** The spec as the label adoption reads back (parseSpecLabel). */
export function specLabel(spec: TaskSpec): string {
  const { image, runtimeKind, runtime, cpuTenths, memMB, gpuCount, sgx } = spec;
  return JSON.stringify({
    image,
    runtimeKind,
    runtime: runtime ?? "",
    cpuTenths,
    memMB,
    gpuCount,
    sgx,
  });
}

/** A spec label back as the intent a request would give for it; undefined when it is not one. */
export function parseSpecLabel(text: string | undefined): TaskIntent | undefined {
  if (text === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  const o = v as Record<string, unknown>;
  const whole = (x: unknown) => typeof x === "number" && Number.isInteger(x) && x >= 0;
  if (
    typeof o !== "object" ||
    o === null ||
    typeof o.image !== "string" ||
    !whole(o.cpuTenths) ||
    !whole(o.memMB) ||
    !whole(o.gpuCount)
  )
    return undefined;
  if ((o.runtimeKind !== "container" && o.runtimeKind !== "microVM") || typeof o.sgx !== "boolean")
    return undefined;
  const gpuCount = o.gpuCount as number;
  return {
    image: o.image,
    cpu: (o.cpuTenths as number) / 10,
    mem: o.memMB as number,
    useGpu: gpuCount > 0,
    gpuCount,
    runtime: o.runtimeKind === "microVM" ? "microVM" : "",
    useSgx: o.sgx,
  };
}

/** `p`, or the signal's reason as soon as it aborts. */
export function raceAbort<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
