/**
 * `npm run build:image`: builds the single executable, lays out the image's
 * build context in dist/image/ (the executable, the shared libraries that it
 * and koffi's native module link, as `ldd` resolves them on this host, an
 * empty /tmp; no config: its defaults live in the executable) and runs `docker build -f build/Dockerfile`.
 * No base image, so no registry is needed. Prints the image's size.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildExecutable } from "./build.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const context = join(root, "dist/image");

export const IMAGE = "meca-executor:latest";

export async function buildImage(
  opts: { tag?: string } = {},
): Promise<{ tag: string; bytes: number }> {
  const tag = opts.tag ?? IMAGE;
  const started = Date.now();
  const { path: executable } = await buildExecutable();
  rmSync(context, { recursive: true, force: true });
  const rootfs = join(context, "rootfs");
  mkdirSync(join(rootfs, "tmp"), { recursive: true });
  chmodSync(join(rootfs, "tmp"), 0o1777);
  const koffiNative = join(
    dirname(createRequire(join(root, "package.json")).resolve("koffi/package.json")),
    "build/koffi/linux_x64/koffi.node",
  );
  for (const lib of new Set([...sharedLibraries(executable), ...sharedLibraries(koffiNative)])) {
    mkdirSync(join(rootfs, dirname(lib)), { recursive: true });
    copyFileSync(lib, join(rootfs, lib)); // follows symlinks: the soname's path holds the real file
  }
  copyFileSync(executable, join(context, "meca-executor"));
  chmodSync(join(context, "meca-executor"), 0o755);
  const before = imageId(tag);
  execFileSync(
    "docker",
    ["build", "-q", "-f", join(root, "build/Dockerfile"), "-t", tag, context],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  // The build it replaced, now without a name: removed unless a container still uses it (each
  // rebuild would otherwise leave one behind, some 130 MiB each).
  if (before && before !== imageId(tag)) {
    try {
      if (
        execFileSync("docker", ["image", "inspect", "-f", "{{len .RepoTags}}", before], {
          encoding: "utf8",
        }).trim() === "0"
      ) {
        execFileSync("docker", ["image", "rm", before], { stdio: "ignore" });
      }
    } catch {
      // in use by a container, or gone already: it stays
    }
  }
  const bytes = Number(
    execFileSync("docker", ["image", "inspect", "-f", "{{.Size}}", tag], {
      encoding: "utf8",
    }).trim(),
  );
  console.log(
    `Built image ${tag}: ${(bytes / 2 ** 20).toFixed(1)} MiB in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  return { tag, bytes };
}

/** The id of the image named `tag`, or undefined when there is none. */
function imageId(tag: string): string | undefined {
  try {
    return execFileSync("docker", ["image", "inspect", "-f", "{{.Id}}", tag], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return undefined;
  }
}

/** Absolute paths of the shared libraries `file` loads, the dynamic loader included. */
export function sharedLibraries(file: string): string[] {
  const out = execFileSync("ldd", [file], { encoding: "utf8" });
  const libs: string[] = [];
  for (const line of out.split("\n")) {
    if (line.includes("not found")) throw new Error(`Cannot package "${file}": ${line.trim()}`);
    const path = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line)?.[1];
    if (path !== undefined) libs.push(path);
  }
  return libs;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  buildImage().catch((e: unknown) => {
    console.error(`Cannot build the image: ${(e as Error).message}`);
    process.exit(1);
  });
}
