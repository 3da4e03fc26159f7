/**
 * NVML through koffi (Node). koffi is passed in by the caller, which imports it
 * lazily, so bundles and Deno never load its native module unless asked to.
 */
import type * as Koffi from "koffi";
import {
  decodeCString,
  NVML_STRUCTS,
  NVML_SYMBOLS,
  type NvmlInType,
  type NvmlLibrary,
  type NvmlOutType,
  type NvmlStructName,
  type NvmlSymbolName,
  toNumber,
} from "./_nvml-symbols.ts";

type KoffiModule = typeof Koffi;
type KoffiType = Koffi.IKoffiCType;

interface Types {
  device: KoffiType;
  structs: Record<NvmlStructName, KoffiType>;
}

// koffi keeps named types in one process-wide registry, so the types are made
// once per koffi module and left anonymous.
const typeCache = new WeakMap<object, Types>();

function typesOf(koffi: KoffiModule): Types {
  let types = typeCache.get(koffi);
  if (types === undefined) {
    const structs = {} as Record<NvmlStructName, KoffiType>;
    for (const [name, fields] of Object.entries(NVML_STRUCTS)) {
      const def: Record<string, string> = {};
      for (const [field, type] of Object.entries(fields))
        def[field] = type === "u64" ? "unsigned long long" : "unsigned int";
      structs[name as NvmlStructName] = koffi.struct(def);
    }
    types = { device: koffi.pointer(koffi.opaque()), structs };
    typeCache.set(koffi, types);
  }
  return types;
}

function inType(t: NvmlInType, types: Types): Koffi.TypeSpec {
  return t === "device" ? types.device : t === "u32" ? "unsigned int" : "int";
}

function outTypes(out: NvmlOutType, koffi: KoffiModule, types: Types): Koffi.TypeSpec[] {
  if (out === "u32") return [koffi.out(koffi.pointer("unsigned int"))];
  if (out === "device") return [koffi.out(koffi.pointer(types.device))];
  // A Uint8Array passed for `uint8_t *` is written in place: no copy-out needed.
  if (typeof out === "object") return ["uint8_t *", "unsigned int"];
  return [koffi.out(koffi.pointer(types.structs[out]))];
}

/** Opens `path` with koffi; throws koffi's error (dlopen's reason) when it cannot. */
export function openWithKoffi(koffi: KoffiModule, path: string): NvmlLibrary {
  const lib = koffi.load(path);
  const types = typesOf(koffi);
  const fns = new Map<string, Koffi.KoffiFunction>();
  for (const [name, def] of Object.entries(NVML_SYMBOLS)) {
    const params = def.in.map((t) => inType(t, types));
    if ("out" in def) params.push(...outTypes(def.out, koffi, types));
    fns.set(name, lib.func(name, def.result === "cstring" ? "const char *" : "int", params));
  }
  return {
    call(name: NvmlSymbolName, ...args: unknown[]) {
      const fn = fns.get(name)!;
      const def = NVML_SYMBOLS[name] as { out?: NvmlOutType };
      if (def.out === undefined) return { result: fn(...args), out: undefined };
      if (typeof def.out === "object") {
        const buf = new Uint8Array(def.out.string);
        const result = fn(...args, buf, buf.length);
        return { result, out: decodeCString(buf) };
      }
      if (def.out === "u32" || def.out === "device") {
        const cell: unknown[] = [null];
        const result = fn(...args, cell);
        return { result, out: def.out === "u32" ? toNumber(cell[0] as number) : cell[0] };
      }
      const struct: Record<string, number | bigint> = {};
      const result = fn(...args, struct);
      return {
        result,
        out: Object.fromEntries(Object.entries(struct).map(([k, v]) => [k, toNumber(v)])),
      };
    },
    unload: () => lib.unload(),
  } as unknown as NvmlLibrary;
}
