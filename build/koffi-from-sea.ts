/**
 * What `import("koffi")` resolves to inside the single executable (an esbuild
 * alias in build.ts): koffi's native module from the executable's own asset,
 * never a node_modules found on disk. src/platform/nvml.ts imports koffi
 * lazily, so this runs only when NVML is loaded (has_gpu, doctor).
 */
import type * as Koffi from "koffi";
import { loadSeaKoffi } from "../src/platform/sea.ts";

function koffiOrThrow(): typeof Koffi {
  const koffi = loadSeaKoffi();
  if (koffi === undefined)
    throw new Error("This bundle carries koffi only when it runs as the single executable");
  return koffi;
}

const koffi: typeof Koffi = koffiOrThrow();
export default koffi;
