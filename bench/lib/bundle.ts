/**
 * An esbuild bundle of src/main.ts under .bench/ (inside the repo, so the
 * external koffi still resolves from node_modules): what the packaged binary
 * runs, without tsx's loader, and with a source map for the profiler. It uses
 * the checkout's own build/bundle-options.ts when it has one, so the bundle is
 * built as the executable's is, and says which node flags the executable runs with.
 */
import { build, type BuildOptions } from "esbuild";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

export interface Bundle {
  file: string;
  /** The node flags the checkout's executable carries in its own options (none for an older checkout). */
  execArgv: string[];
}

type Shared = { bundleOptions(): BuildOptions; EXEC_ARGV?: readonly string[] };

async function shared(root: string): Promise<Shared | undefined> {
  const file = join(root, "build/bundle-options.ts");
  return existsSync(file) ? ((await import(pathToFileURL(file).href)) as Shared) : undefined;
}

/** The node flags the checkout's executable carries in its own options. */
export async function executableFlags(root: string): Promise<string[]> {
  return [...((await shared(root))?.EXEC_ARGV ?? [])];
}

export async function bundleExecutor(
  root: string,
  outfile = join(root, ".bench/executor.mjs"),
): Promise<Bundle> {
  const m = await shared(root);
  const options: BuildOptions = m?.bundleOptions() ?? { bundle: true, platform: "node" };
  const execArgv = [...(m?.EXEC_ARGV ?? [])];
  await build({
    ...options,
    entryPoints: [join(root, "src/main.ts")],
    format: "esm",
    target: "node20",
    outfile,
    sourcemap: true,
    logLevel: "error",
    // Native add-ons stay outside: koffi is loaded only with has_gpu, ssh2's bindings are optional.
    external: ["koffi", "cpu-features", "*.node"],
    banner: {
      js: "import { createRequire as __bench_cr } from 'node:module'; const require = __bench_cr(import.meta.url);",
    },
  });
  return { file: outfile, execArgv };
}
