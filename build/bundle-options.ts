/**
 * The esbuild options of the executor's bundle, shared by `npm run build` (the
 * single executable) and the benchmark's `--target bundle`, so that both run
 * the same code. What keeps the executable small lives here:
 *
 * - `undici` and `systeminformation` resolve to `build/slim/*.cjs`, which load
 *   only the modules src/ uses (each package's index loads everything it has:
 *   fetch, zlib, worker_threads, mocks, caches; disks, networks, printers).
 *   `checkSlimExports` fails the build when src/ imports a name they lack.
 * - undici's HTTP/2 client gets `build/slim/no-http2.cjs` for node:http2, so
 *   neither node:http2 nor the tls and crypto it brings load (~5 MB RSS).
 * - koffi (native) comes from the executable's own asset; see koffi-from-sea.ts.
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BuildOptions, Plugin } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Node and V8 options the executable runs with, whatever its command line (the SEA
 * config's execArgv; NODE_OPTIONS still adds to them). Chosen for a small daemon;
 * README.md ("Speed") records what each saved. The benchmark runs its bundle with them too.
 */
export const EXEC_ARGV: readonly string[] = [
  // undici parses HTTP with llhttp, a WebAssembly module. V8 compiles it with Liftoff, then again
  // with TurboFan on a worker thread, whose allocator keeps the compiler's memory: ~9 MB of RSS
  // for a parser whose share of a request's CPU is small. Liftoff code only.
  "--liftoff-only",
  // JavaScript's TurboFan compiles on the main thread, not on a worker: the worker's malloc arena
  // kept 20-45 MB after a burst of load; the main thread's gives it back.
  "--no-concurrent-recompilation",
  // New space of at most 2 × 8 MB (V8's default lets it grow to 2 × 16 MB). It was 2 MB while
  // nothing gave memory back after load; with the collection when idle (--expose-gc below) the
  // RSS 10 s after a burst is the same at 2, 8 or 16 MB (70 MB), and 8 MB does ~10 % more
  // requests per second at 32 clients than 2 MB (bench:compare, 76 -> 67 us of CPU per request).
  "--max-semi-space-size=8",
  // Optimise the hot path sooner (defaults 400, 3000, 500): MECA traffic is sparse, so most
  // requests come while the code is still warming up.
  "--invocation-count-for-maglev=100",
  "--invocation-count-for-turbofan=1000",
  "--minimum-invocations-after-ic-update=100",
  // Baseline (Sparkplug) code for every function from its first call instead of after a while in
  // the interpreter: the first few hundred requests are faster (first-minute p50 0.82/0.67/0.62 ->
  // 0.61/0.59/0.63 ms in paired starts), for ~1.8 MB more code at idle.
  "--always-sparkplug",
  // For src/platform/idle-gc.ts: one memory-reducing collection once requests stop. V8's memory
  // reducer never found the daemon idle, so what a burst of load grew stayed resident: 100-123 MB
  // after a 32-client burst, against 70-73 MB once collected.
  "--expose-gc",
];

/** Bare imports of src/ that resolve to a slimmer entry of the same package. */
export const SLIM: Record<string, string> = {
  undici: join(root, "build/slim/undici.cjs"),
  systeminformation: join(root, "build/slim/systeminformation.cjs"),
};

/** What undici's HTTP/2 client gets for node:http2 (it catches the error and goes on without). */
export const NO_HTTP2 = join(root, "build/slim/no-http2.cjs");

/** The slim entries replace bare `import ... from "undici"` only; the files they load resolve normally. */
const slimPlugin: Plugin = {
  name: "slim-deps",
  setup(b) {
    const filter = new RegExp(`^(${Object.keys(SLIM).join("|")})$`);
    b.onResolve({ filter }, (args) => ({ path: SLIM[args.path]! }));
    b.onResolve({ filter: /^(node:)?http2$/ }, (args) =>
      /[\\/]undici[\\/]lib[\\/]dispatcher[\\/]client-h2\.js$/.test(args.importer)
        ? { path: NO_HTTP2 }
        : undefined,
    );
  },
};

/** Options common to the executable's bundle and the benchmark's. */
export function bundleOptions(): BuildOptions {
  checkSlimExports();
  return {
    bundle: true,
    platform: "node",
    legalComments: "none",
    plugins: [slimPlugin],
    // ssh2's optional accelerators (cpu-features, sshcrypto.node) fall back to JS.
    external: ["cpu-features", "*.node"],
    logOverride: { "empty-import-meta": "silent" },
  };
}

/** Every name src/ imports from a slimmed package is one its slim entry exports. */
export function checkSlimExports(srcDir = join(root, "src")): void {
  const missing: string[] = [];
  for (const [pkg, entry] of Object.entries(SLIM)) {
    const text = readFileSync(entry, "utf8");
    const exported = new Set([...text.matchAll(/module\.exports\.(\w+)\s*=/g)].map((m) => m[1]!));
    for (const file of tsFiles(srcDir)) {
      const src = readFileSync(file, "utf8");
      for (const m of src.matchAll(
        new RegExp(`import\\s+(?!type\\b)([^;]*?)\\s+from\\s+"${pkg}"`, "g"),
      )) {
        const clause = m[1]!;
        if (/^\*\s+as\s+\w+$/.test(clause)) {
          const ns = clause.split(/\s+/).at(-1)!;
          for (const u of src.matchAll(new RegExp(`\\b${ns}\\.(\\w+)`, "g")))
            if (!exported.has(u[1]!)) missing.push(`${pkg}.${u[1]} (${file})`);
          continue;
        }
        const names = /\{([^}]*)\}/.exec(clause)?.[1] ?? "";
        for (const part of names.split(",")) {
          const name = part.trim().split(/\s+as\s+/)[0]!;
          if (name && !name.startsWith("type ") && !exported.has(name))
            missing.push(`${pkg}.${name} (${file})`);
        }
      }
    }
  }
  if (missing.length > 0)
    throw new Error(`The slim bundle entries in build/slim lack ${missing.join(", ")}`);
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith(".ts") ? [p] : [];
  });
}
