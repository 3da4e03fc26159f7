/**
 * The single executable (Node SEA, built by `build/build.ts`) carries koffi's
 * native module as the asset "koffi.node", since a SEA can require only
 * Node's built-in modules. It is written to a private temporary folder
 * (mkdtemp: mode 0700, under TMPDIR), loaded with process.dlopen and deleted
 * at once: the mapping outlives the file. Outside a SEA, and under Deno,
 * this returns undefined and loadNvml imports koffi from node_modules.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import type * as Koffi from "koffi";
import { NvmlError } from "./nvml.ts";

/** The asset's key in the SEA config. */
export const KOFFI_ASSET = "koffi.node";

let loaded: Promise<typeof Koffi | undefined> | undefined;

/** koffi from the SEA asset, loaded once; undefined when not running as a SEA. */
export function loadSeaKoffi(): Promise<typeof Koffi | undefined> {
  loaded ??= load();
  return loaded;
}

async function load(): Promise<typeof Koffi | undefined> {
  if ("Deno" in globalThis) return undefined;
  const sea = await import("node:sea").catch(() => undefined);
  if (sea === undefined || !sea.isSea()) return undefined;
  const bytes = new Uint8Array(sea.getRawAsset(KOFFI_ASSET));
  const dir = mkdtempSync(join(tmpdir(), "meca-executor-"));
  try {
    const file = join(dir, KOFFI_ASSET);
    writeFileSync(file, bytes, { mode: 0o500 });
    const module = { exports: {} as typeof Koffi };
    process.dlopen(module, file, constants.dlopen.RTLD_NOW);
    return module.exports;
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new NvmlError(`Cannot load koffi from the executable: ${reason} (TMPDIR must allow executable mappings)`, {
      code: "NVML_LOAD_FAILED",
      cause,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
