/**
 * The NVML functions the executor calls, declared once for every FFI adapter
 * (koffi on Node, Deno.dlopen on Deno). Signatures follow nvml.h: every
 * function returns nvmlReturn_t (a C int) except nvmlErrorString; input
 * parameters come first and at most one output parameter comes last. A
 * `{ string: n }` output is the C pair `char *buf, unsigned int length`.
 */

/** Opaque nvmlDevice_t as the adapter hands it out; only the adapter reads it. */
declare const deviceBrand: unique symbol;
export type NvmlDevice = { readonly [deviceBrand]: true };

export const NVML_STRUCTS = {
  nvmlUtilization_t: { gpu: "u32", memory: "u32" },
  nvmlMemory_t: { total: "u64", free: "u64", used: "u64" },
} as const;

export type NvmlStructName = keyof typeof NVML_STRUCTS;
export type NvmlFieldType = "u32" | "u64";
export type NvmlInType = "i32" | "u32" | "device";
export type NvmlOutType = "u32" | "device" | { string: number } | NvmlStructName;

export interface NvmlSymbolDef {
  in: readonly NvmlInType[];
  out?: NvmlOutType;
  /** `i32` is nvmlReturn_t; `cstring` is a `const char *` owned by the library. */
  result: "i32" | "cstring";
}

// Buffer sizes from nvml.h (NVML_*_BUFFER_SIZE).
const NAME_SIZE = 96; // NVML_DEVICE_NAME_V2_BUFFER_SIZE
const UUID_SIZE = 96; // NVML_DEVICE_UUID_V2_BUFFER_SIZE
const DRIVER_VERSION_SIZE = 80; // NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE

export const NVML_SYMBOLS = {
  nvmlInit_v2: { in: [], result: "i32" },
  nvmlShutdown: { in: [], result: "i32" },
  nvmlErrorString: { in: ["i32"], result: "cstring" },
  nvmlSystemGetDriverVersion: { in: [], out: { string: DRIVER_VERSION_SIZE }, result: "i32" },
  nvmlDeviceGetCount_v2: { in: [], out: "u32", result: "i32" },
  nvmlDeviceGetHandleByIndex_v2: { in: ["u32"], out: "device", result: "i32" },
  nvmlDeviceGetName: { in: ["device"], out: { string: NAME_SIZE }, result: "i32" },
  nvmlDeviceGetUUID: { in: ["device"], out: { string: UUID_SIZE }, result: "i32" },
  nvmlDeviceGetUtilizationRates: { in: ["device"], out: "nvmlUtilization_t", result: "i32" },
  nvmlDeviceGetMemoryInfo: { in: ["device"], out: "nvmlMemory_t", result: "i32" },
} as const satisfies Record<string, NvmlSymbolDef>;

export type NvmlSymbolName = keyof typeof NVML_SYMBOLS;

export const NVML_SUCCESS = 0;
export const NVML_ERROR_NOT_SUPPORTED = 3;

type JsIn<T> = T extends "device" ? NvmlDevice : number;
type JsOut<T> = T extends "u32"
  ? number
  : T extends "device"
    ? NvmlDevice
    : T extends { string: number }
      ? string
      : T extends NvmlStructName
        ? { -readonly [F in keyof (typeof NVML_STRUCTS)[T]]: number }
        : undefined;

type Def<N extends NvmlSymbolName> = (typeof NVML_SYMBOLS)[N];
type JsIns<T extends readonly NvmlInType[]> = { -readonly [K in keyof T]: JsIn<T[K]> };
export type NvmlArgs<N extends NvmlSymbolName> = JsIns<Def<N>["in"]>;
export interface NvmlCallResult<N extends NvmlSymbolName> {
  result: Def<N>["result"] extends "cstring" ? string : number;
  out: Def<N> extends { out: infer O } ? JsOut<O> : undefined;
}

/** What an FFI adapter gives the probe: typed calls over the table above. */
export interface NvmlLibrary {
  call<N extends NvmlSymbolName>(name: N, ...args: NvmlArgs<N>): NvmlCallResult<N>;
  /** Unmaps the library; no call may follow. */
  unload(): void;
}

/** Decodes a NUL-terminated C string written into `buf`. */
export function decodeCString(buf: Uint8Array): string {
  const end = buf.indexOf(0);
  return new TextDecoder().decode(end < 0 ? buf : buf.subarray(0, end));
}

/** Numbers for the probe: 64-bit values beyond 2^53 lose precision, far beyond any GPU memory size. */
export function toNumber(value: number | bigint): number {
  return typeof value === "bigint" ? Number(value) : value;
}
