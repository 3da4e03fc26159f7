/**
 * The single executable (Node SEA, built by `build/build.ts`) carries koffi's
 * native module as the asset "koffi.node", since a SEA can require only
 * Node's built-in modules. Inside it, `import("koffi")` resolves to
 * `build/koffi-from-sea.ts` (an esbuild alias), which calls this: the asset
 * is written to a private temporary folder (mkdtemp: mode 0700, under TMPDIR),
 * loaded with process.dlopen and deleted at once; the mapping outlives the
 * file. Outside a SEA this returns undefined.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import type * as Koffi from "koffi";

/** The asset's key in the SEA config. */
export const KOFFI_ASSET = "koffi.node";

interface SeaModule {
  isSea(): boolean;
  getRawAsset(key: string): ArrayBuffer;
}

let loaded: { koffi: typeof Koffi | undefined } | undefined;

/** koffi from the SEA asset, loaded once; undefined when not running as a SEA. Throws when it cannot be loaded. */
export function loadSeaKoffi(): typeof Koffi | undefined {
  loaded ??= { koffi: load() };
  return loaded.koffi;
}

function load(): typeof Koffi | undefined {
  const getBuiltin = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  const sea = getBuiltin?.("node:sea") as SeaModule | undefined;
  if (sea === undefined || !sea.isSea()) return undefined;
  let dir: string | undefined;
  try {
    dir = mkdtempSync(join(tmpdir(), "meca-executor-"));
    const file = join(dir, KOFFI_ASSET);
    writeFileSync(file, new Uint8Array(sea.getRawAsset(KOFFI_ASSET)), { mode: 0o500 });
    const module = { exports: {} as typeof Koffi };
    process.dlopen(module, file, constants.dlopen.RTLD_NOW);
    return module.exports;
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new Error(
      `Cannot load koffi from the executable: ${reason} (TMPDIR must be writable and allow executable mappings)`,
      { cause },
    );
  } finally {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}
