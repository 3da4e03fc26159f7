/**
 * GpuProbe over NVIDIA's NVML (libnvidia-ml.so.1). The functions are declared
 * once in `_nvml-symbols.ts`; an adapter binds them with Deno.dlopen when
 * running under Deno, else with koffi, which is imported only here and only
 * when a probe is loaded, so bundles and Deno never load it otherwise.
 */
import type * as Koffi from "koffi";
import { ExecutorError } from "../engine/errors.ts";
import type { GpuDevice, GpuProbe, Logger } from "../engine/ports.ts";
import { type DenoFfi, openWithDeno } from "./_nvml-deno.ts";
import { openWithKoffi } from "./_nvml-koffi.ts";
import {
  NVML_ERROR_NOT_SUPPORTED,
  NVML_SUCCESS,
  type NvmlDevice,
  type NvmlArgs,
  type NvmlCallResult,
  type NvmlLibrary,
  type NvmlSymbolName,
} from "./_nvml-symbols.ts";

/** The soname the NVIDIA driver installs; found through the dynamic linker's search path. */
export const DEFAULT_NVML_LIBRARY = "libnvidia-ml.so.1";

const MIB = 2 ** 20;

/**
 * NVML could not be loaded or a call failed. The GPU driver is the host's
 * business, not the caller's, so it reads as "unavailable" (503).
 */
export class NvmlError extends ExecutorError {
  /** The NVML function that failed, when one did. */
  readonly call?: string;
  /** Its nvmlReturn_t. */
  readonly returnCode?: number;
  constructor(
    message: string,
    opts: {
      code: "NVML_LOAD_FAILED" | "NVML_CALL_FAILED";
      call?: string;
      returnCode?: number;
      cause?: unknown;
    },
  ) {
    super("unavailable", opts.code, message, { cause: opts.cause, retryAfter: 5 });
    this.call = opts.call;
    this.returnCode = opts.returnCode;
  }
}

export interface LoadNvmlOptions {
  /** Path or soname handed to dlopen, e.g. DEFAULT_NVML_LIBRARY. */
  library: string;
  logger?: Logger;
  /** A koffi module to use instead of importing "koffi" (for packagers that ship it apart). */
  koffi?: typeof Koffi;
}

/** Opens NVML, initialises it and returns a probe; rejects with NvmlError. */
export async function loadNvml(opts: LoadNvmlOptions): Promise<NvmlGpuProbe> {
  const lib = await openLibrary(opts);
  const rc = lib.call("nvmlInit_v2").result;
  if (rc !== NVML_SUCCESS) {
    const error = callError(lib, "nvmlInit_v2", rc, ` (library "${opts.library}")`);
    lib.unload();
    throw error;
  }
  const probe = new NvmlGpuProbe(lib, opts.logger);
  try {
    opts.logger?.info("NVML loaded", {
      library: opts.library,
      driverVersion: probe.driverVersion(),
    });
  } catch (error) {
    probe.close();
    throw error;
  }
  return probe;
}

async function openLibrary(opts: LoadNvmlOptions): Promise<NvmlLibrary> {
  const deno = (globalThis as { Deno?: DenoFfi }).Deno;
  let koffi = opts.koffi;
  if (deno === undefined && koffi === undefined) {
    try {
      const mod = await import("koffi");
      koffi = ((mod as { default?: typeof Koffi }).default ?? mod) as typeof Koffi;
    } catch (cause) {
      throw new NvmlError(
        `Cannot load NVML library "${opts.library}": koffi is unavailable (${reason(cause)})`,
        {
          code: "NVML_LOAD_FAILED",
          cause,
        },
      );
    }
  }
  const open = (path: string) =>
    deno !== undefined ? openWithDeno(deno, path) : openWithKoffi(koffi!, path);
  try {
    return open(opts.library);
  } catch (cause) {
    // A bare soname the loader cannot find may still be where the NVIDIA container toolkit puts
    // the driver's libraries in a container (the image has no ld.so.cache that lists them).
    for (const dir of opts.library.includes("/") ? [] : TOOLKIT_LIBRARY_DIRS) {
      try {
        return open(`${dir}/${opts.library}`);
      } catch {
        // next folder
      }
    }
    throw new NvmlError(`Cannot load NVML library "${opts.library}": ${reason(cause)}`, {
      code: "NVML_LOAD_FAILED",
      cause,
    });
  }
}

/** Where the NVIDIA container toolkit mounts the driver's libraries: Debian-like roots, then others. */
export const TOOLKIT_LIBRARY_DIRS = [
  "/usr/lib/x86_64-linux-gnu",
  "/usr/lib64",
  "/usr/lib",
  "/lib/x86_64-linux-gnu",
  "/lib64",
] as const;

/** NVIDIA GPUs as NVML sees them. Made by loadNvml(); holds one nvmlInit_v2 until close(). */
export class NvmlGpuProbe implements GpuProbe {
  readonly #lib: NvmlLibrary;
  readonly #logger?: Logger;
  readonly #warnedNoUtilization = new Set<number>();
  #closed = false;

  /** Takes an initialised library. */
  constructor(lib: NvmlLibrary, logger?: Logger) {
    this.#lib = lib;
    this.#logger = logger;
  }

  /** The kernel driver's version, e.g. "550.54.15". Throws NvmlError. */
  driverVersion(): string {
    return this.#call("nvmlSystemGetDriverVersion");
  }

  async sample(): Promise<GpuDevice[]> {
    const count = this.#call("nvmlDeviceGetCount_v2");
    const devices: GpuDevice[] = [];
    for (let index = 0; index < count; index++) {
      const handle = this.#call("nvmlDeviceGetHandleByIndex_v2", index);
      const memory = this.#call("nvmlDeviceGetMemoryInfo", handle);
      devices.push({
        index,
        uuid: this.#call("nvmlDeviceGetUUID", handle),
        model: this.#call("nvmlDeviceGetName", handle),
        utilizationPercent: this.#utilization(index, handle),
        // Round used memory up and total down, so that a device never looks emptier than it is.
        memoryUsedMB: Math.ceil(memory.used / MIB),
        memoryTotalMB: Math.floor(memory.total / MIB),
      });
    }
    return devices;
  }

  /** Calls nvmlShutdown once and unloads the library; later calls are no-ops. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const rc = this.#lib.call("nvmlShutdown").result;
    if (rc !== NVML_SUCCESS) {
      this.#logger?.warn("nvmlShutdown failed", {
        returnCode: rc,
        error: errorString(this.#lib, rc),
      });
    }
    this.#lib.unload();
  }

  // Some devices (MIG instances, some vGPUs) do not report utilisation: count
  // them as idle and let memory use decide, rather than lose every GPU.
  #utilization(index: number, handle: NvmlDevice): number {
    const { result, out } = this.#lib.call("nvmlDeviceGetUtilizationRates", handle);
    if (result === NVML_ERROR_NOT_SUPPORTED) {
      if (!this.#warnedNoUtilization.has(index)) {
        this.#warnedNoUtilization.add(index);
        this.#logger?.warn("GPU does not report utilisation; counting it as 0 %", { gpu: index });
      }
      return 0;
    }
    if (result !== NVML_SUCCESS)
      throw callError(this.#lib, "nvmlDeviceGetUtilizationRates", result);
    return out.gpu;
  }

  #call<N extends Exclude<NvmlSymbolName, "nvmlErrorString">>(
    name: N,
    ...args: NvmlArgs<N>
  ): NvmlCallResult<N>["out"] {
    if (this.#closed)
      throw new NvmlError(`Cannot call NVML "${name}": the probe is closed`, {
        code: "NVML_CALL_FAILED",
        call: name,
      });
    const { result, out } = this.#lib.call(name, ...args);
    if (result !== NVML_SUCCESS) throw callError(this.#lib, name, result as number);
    return out;
  }
}

function errorString(lib: NvmlLibrary, rc: number): string {
  return lib.call("nvmlErrorString", rc).result || `error ${rc}`;
}

function callError(lib: NvmlLibrary, name: string, rc: number, suffix = ""): NvmlError {
  return new NvmlError(`NVML call "${name}" failed: ${errorString(lib, rc)}${suffix}`, {
    code: "NVML_CALL_FAILED",
    call: name,
    returnCode: rc,
  });
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
