/**
 * An esbuild bundle of src/main.ts under .bench/ (inside the repo, so the
 * external koffi still resolves from node_modules): what the packaged binary
 * runs, without tsx's loader, and with a source map for the profiler.
 */
import { build } from "esbuild";
import { join } from "node:path";

export async function bundleExecutor(root: string, outfile = join(root, ".bench/executor.mjs")): Promise<string> {
  await build({
    entryPoints: [join(root, "src/main.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    sourcemap: true,
    logLevel: "error",
    // Native add-ons stay outside: koffi is loaded only with has_gpu, ssh2's bindings are optional.
    external: ["koffi", "cpu-features", "*.node"],
    banner: { js: "import { createRequire as __bench_cr } from 'node:module'; const require = __bench_cr(import.meta.url);" },
  });
  return outfile;
}
