import { BadRequestError, ExceedsCapacityError, ForbiddenError } from "./errors.ts";
import { imageAllowed, normalizeImageRef, parseImageRef } from "./image-ref.ts";

/** What a client asks for, already shape-checked by the HTTP layer. */
export interface TaskIntent {
  image: string;
  /** Cores, one decimal; 0 or absent with mem 0 or absent means the default. */
  cpu?: number;
  /** MB. */
  mem?: number;
  useGpu?: boolean;
  gpuCount?: number;
  /** "", "container" or "microVM". */
  runtime?: string;
  useSgx?: boolean;
}

/** A resolved task: everything that makes up its key. */
export interface TaskSpec {
  image: string;
  runtimeKind: "container" | "microVM";
  /** The Docker runtime name; undefined for the engine's default. */
  runtime?: string;
  cpuTenths: number;
  memMB: number;
  gpuCount: number;
  sgx: boolean;
}

/** What `resolveSpec` needs to know about this host. */
export interface SpecLimits {
  capacity: { cpuTenths: number; memMB: number; gpus: number };
  microVMRuntime: string;
  sgxEnabled: boolean;
  allowedImages: readonly string[];
}

/** An execute body's fields (docs/api.md), already validated, as the engine's intent and the task's input; config's prewarm entries use it too. */
export function toIntent(b: {
  id: string;
  resource?: { cpu?: number; mem?: number; use_gpu?: boolean; gpu_count?: number } | null;
  runtime?: string | null;
  input?: string | null;
  use_sgx?: boolean | null;
}): { intent: TaskIntent; input: string } {
  return {
    intent: {
      image: b.id,
      cpu: b.resource?.cpu,
      mem: b.resource?.mem,
      useGpu: b.resource?.use_gpu === true,
      gpuCount: b.resource?.gpu_count,
      runtime: b.runtime ?? "",
      useSgx: b.use_sgx === true,
    },
    input: b.input ?? "",
  };
}

export const DEFAULT_CPU_TENTHS = 10;

/** True when `cores` is a whole number of tenths of a core (0.3, 2), not 0.25. */
export function isWholeTenths(cores: number): boolean {
  return Math.abs(cores * 10 - Math.round(cores * 10)) < 1e-9;
}
export const DEFAULT_MEM_MB = 128;
/** The least memory the Docker engine accepts for a container (its "Minimum memory limit allowed is 6MB"). */
export const MIN_MEM_MB = 6;

/** Turns an intent into a spec, refusing at once what can never run here. */
export function resolveSpec(intent: TaskIntent, limits: SpecLimits): TaskSpec {
  const image = normalizedImage(intent.image);
  if (
    !imageAllowed(image, limits.allowedImages) &&
    !imageAllowed(intent.image, limits.allowedImages)
  ) {
    throw new ForbiddenError(
      `Image "${intent.image}" is not in allowed_images`,
      "IMAGE_NOT_ALLOWED",
    );
  }
  // Absent, or cpu and mem both 0: the defaults. Otherwise a given value must be positive; a missing one takes its default.
  const bothZero = (intent.cpu ?? 0) === 0 && (intent.mem ?? 0) === 0;
  const cpuTenths =
    bothZero || intent.cpu === undefined ? DEFAULT_CPU_TENTHS : Math.round(intent.cpu * 10);
  const memMB = bothZero || intent.mem === undefined ? DEFAULT_MEM_MB : intent.mem;
  if (cpuTenths <= 0)
    throw new BadRequestError(`Field "resource.cpu" must be greater than 0`, {
      field: "resource.cpu",
    });
  if (memMB <= 0)
    throw new BadRequestError(`Field "resource.mem" must be a positive whole number of MB`, {
      field: "resource.mem",
    });
  if (memMB < MIN_MEM_MB)
    throw new BadRequestError(
      `Field "resource.mem" must be at least ${MIN_MEM_MB} MB, the least the container engine accepts`,
      { field: "resource.mem" },
    );
  // use_gpu with gpu_count 0 (or none) means one GPU, as in the original executor.
  const gpuCount = intent.useGpu ? Math.max(1, intent.gpuCount ?? 1) : 0;

  let runtimeKind: TaskSpec["runtimeKind"] = "container";
  let runtime: string | undefined;
  if (intent.runtime === "microVM") {
    if (!limits.microVMRuntime) {
      throw new BadRequestError(
        `Field "runtime" asks for "microVM" but no microVM_runtime is configured on this host`,
        {
          field: "runtime",
          code: "MICROVM_UNAVAILABLE",
        },
      );
    }
    runtimeKind = "microVM";
    runtime = limits.microVMRuntime;
  }
  if (intent.useSgx && !limits.sgxEnabled) {
    throw new BadRequestError(`Field "use_sgx" asks for SGX but SGX is not enabled on this host`, {
      field: "use_sgx",
      code: "SGX_UNAVAILABLE",
    });
  }

  const cap = limits.capacity;
  if (cpuTenths > cap.cpuTenths) {
    throw new ExceedsCapacityError(
      `Field "resource.cpu" asks for ${cpuTenths / 10} cores but tasks may use at most ${cap.cpuTenths / 10} on this host`,
    );
  }
  if (memMB > cap.memMB) {
    throw new ExceedsCapacityError(
      `Field "resource.mem" asks for ${memMB} MB but tasks may use at most ${cap.memMB} MB on this host`,
    );
  }
  if (gpuCount > cap.gpus) {
    throw new ExceedsCapacityError(
      `Field "resource.gpu_count" asks for ${gpuCount} GPUs but this host has ${cap.gpus}`,
    );
  }
  return { image, runtimeKind, runtime, cpuTenths, memMB, gpuCount, sgx: intent.useSgx === true };
}

/** The key of one warm container. */
export function taskKey(spec: TaskSpec): string {
  return `${spec.image}|${spec.runtimeKind}|${spec.runtime ?? ""}|${spec.cpuTenths}|${spec.memMB}|${spec.gpuCount}|${spec.sgx ? "sgx" : ""}`;
}

/** Image references as clients wrote them → their normalized form: every warm request names its image again. */
const normalized = new Map<string, string>();
const NORMALIZED_MAX = 1024;

/**
 * `raw` when it is a valid image reference (at most 512 characters), else "": what the executor
 * may keep about a request's `id` (the record of recent requests), whatever the client sent.
 */
export function recordableImage(raw: string): string {
  // Stryker disable next-line ConditionalExpression: a reference in the memo parses as valid again; the memo only saves the work
  if (normalized.has(raw)) return raw;
  return "error" in parseImageRef(raw) ? "" : raw;
}

/** The normalized image of a valid reference (remembered); a malformed one is refused every time. */
function normalizedImage(raw: string): string {
  let image = normalized.get(raw);
  // Stryker disable next-line ConditionalExpression,EqualityOperator: parsing again gives the same image; the memo only saves the work
  if (image === undefined) {
    const ref = parseImageRef(raw);
    if ("error" in ref)
      throw new BadRequestError(`Field "id" ${ref.error}: "${truncate(raw)}"`, {
        field: "id",
        code: "INVALID_IMAGE",
      });
    image = normalizeImageRef(ref);
    // Stryker disable next-line ConditionalExpression,EqualityOperator: the bound only caps the memo's memory; clearing it at any size, or never, gives the same answers
    if (normalized.size >= NORMALIZED_MAX) normalized.clear();
    normalized.set(raw, image);
  }
  return image;
}

/** 64-bit FNV-1a of the key, as 16 hex digits: stable, synchronous, Web-standard. */
export function keyHash(key: string): string {
  let h = 0xcbf29ce484222325n;
  const bytes = new TextEncoder().encode(key);
  for (const b of bytes) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, "0");
}

/**
 * A Docker container name that carries the key's hash: `meca-<instance>-<image slug>-<hash>-<run>n<n>`.
 * `run` tells this process's containers from those of an earlier run of the same instance, whose
 * leftovers may still be being removed. It is also the task's host name on a Docker network,
 * so no dot: a last label of digits would read as an IPv4 address in a URL.
 */
export function containerName(
  spec: TaskSpec,
  o: { instance: string; run: string; serial: number },
): string {
  // Stryker disable next-line Regex: an image reference has no line break, so ".*" runs to the end with or without "$"
  const unpinned = spec.image.replace(/@.*$/, "");
  const slug = unpinned
    .replace(/[^a-zA-Z0-9_.-]+/g, "_")
    .slice(-40)
    .replace(/^[^a-zA-Z0-9]+/, "");
  return `meca-${o.instance}-${slug}-${keyHash(taskKey(spec)).slice(0, 12)}-${o.run}n${o.serial}`;
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
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
  // Stryker disable next-line ConditionalExpression: JSON.parse(undefined) throws, and the catch below answers undefined too
  if (text === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  // A primitive has none of the fields below, so only null needs refusing before they are read.
  if (v === null) return undefined;
  const o = v as Record<string, unknown>;
  // Stryker disable next-line ConditionalExpression: Number.isInteger is false for anything but a number
  const whole = (x: unknown) => typeof x === "number" && Number.isInteger(x) && x >= 0;
  if (typeof o.image !== "string" || !whole(o.cpuTenths) || !whole(o.memMB) || !whole(o.gpuCount))
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
