/**
 * NVML through Deno.dlopen. Needs `--allow-ffi`. Structs and out-parameters
 * are plain byte buffers decoded here; the layout is the C one (natural
 * alignment, host byte order), which NVML's structs of u32/u64 follow.
 */
import {
  decodeCString,
  NVML_STRUCTS,
  NVML_SYMBOLS,
  type NvmlFieldType,
  type NvmlInType,
  type NvmlLibrary,
  type NvmlOutType,
  type NvmlSymbolName,
  toNumber,
} from "./_nvml-symbols.ts";

type DenoNative = "i32" | "u32" | "pointer" | "buffer";
type DenoPointer = object | null;

/** The slice of the Deno namespace this adapter uses (Deno >= 1.31). */
export interface DenoFfi {
  dlopen(
    path: string,
    symbols: Record<string, { parameters: DenoNative[]; result: DenoNative }>,
  ): { symbols: Record<string, (...args: unknown[]) => unknown>; close(): void };
  UnsafePointer: { create(value: bigint): DenoPointer };
  UnsafePointerView: { getCString(pointer: object): string };
}

const FIELD_SIZE: Record<NvmlFieldType, number> = { u32: 4, u64: 8 };
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function inNative(t: NvmlInType): DenoNative {
  return t === "device" ? "pointer" : t;
}

function outNatives(out: NvmlOutType): DenoNative[] {
  return typeof out === "object" ? ["buffer", "u32"] : ["buffer"];
}

/** Field offsets and total size of a struct of u32/u64 fields, as a C compiler lays it out. */
function layout(fields: Record<string, NvmlFieldType>): {
  offsets: [string, NvmlFieldType, number][];
  size: number;
} {
  let offset = 0;
  let align = 1;
  const offsets: [string, NvmlFieldType, number][] = [];
  for (const [name, type] of Object.entries(fields)) {
    const size = FIELD_SIZE[type];
    offset = Math.ceil(offset / size) * size;
    offsets.push([name, type, offset]);
    offset += size;
    align = Math.max(align, size);
  }
  return { offsets, size: Math.ceil(offset / align) * align };
}

/** Opens `path` with Deno.dlopen; throws Deno's error (dlopen's reason) when it cannot. */
export function openWithDeno(deno: DenoFfi, path: string): NvmlLibrary {
  const symbols: Record<string, { parameters: DenoNative[]; result: DenoNative }> = {};
  for (const [name, def] of Object.entries(NVML_SYMBOLS)) {
    const parameters = def.in.map(inNative);
    if ("out" in def) parameters.push(...outNatives(def.out));
    symbols[name] = { parameters, result: def.result === "cstring" ? "pointer" : "i32" };
  }
  const lib = deno.dlopen(path, symbols);

  function readOut(out: Exclude<NvmlOutType, { string: number }>, buf: Uint8Array): unknown {
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    if (out === "u32") return view.getUint32(0, LITTLE_ENDIAN);
    if (out === "device") return deno.UnsafePointer.create(view.getBigUint64(0, LITTLE_ENDIAN));
    const value: Record<string, number> = {};
    for (const [name, type, offset] of layout(NVML_STRUCTS[out]).offsets) {
      value[name] =
        type === "u64"
          ? toNumber(view.getBigUint64(offset, LITTLE_ENDIAN))
          : view.getUint32(offset, LITTLE_ENDIAN);
    }
    return value;
  }

  return {
    call(name: NvmlSymbolName, ...args: unknown[]) {
      const fn = lib.symbols[name]!;
      const def = NVML_SYMBOLS[name] as { out?: NvmlOutType; result: "i32" | "cstring" };
      if (def.out === undefined) {
        const raw = fn(...args);
        if (def.result === "i32") return { result: raw, out: undefined };
        return {
          result: raw === null ? "" : deno.UnsafePointerView.getCString(raw as object),
          out: undefined,
        };
      }
      if (typeof def.out === "object") {
        const buf = new Uint8Array(def.out.string);
        return { result: fn(...args, buf, buf.length), out: decodeCString(buf) };
      }
      const size =
        def.out === "u32" ? 4 : def.out === "device" ? 8 : layout(NVML_STRUCTS[def.out]).size;
      const buf = new Uint8Array(size);
      const result = fn(...args, buf);
      return { result, out: readOut(def.out, buf) };
    },
    unload: () => lib.close(),
  } as unknown as NvmlLibrary;
}
