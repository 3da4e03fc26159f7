/**
 * The layer rule of docs/architecture.md ("Layers"), enforced: src/engine speaks only to its ports,
 * so it imports no runtime (`node:*`, Node's bare built-ins, Deno), no platform library (hono,
 * undici, dockerode, koffi, systeminformation) and nothing from src/platform or src/http; and
 * src/config.ts, read by the engine's wiring, imports nothing from src/http. The imports are read
 * with TypeScript's own pre-processor (static, `export … from`, dynamic `import()` and `require`).
 */
import { builtinModules } from "node:module";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve, dirname } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const PLATFORM_LIBRARIES = ["hono", "undici", "dockerode", "koffi", "systeminformation"];

interface Violation {
  file: string;
  import: string;
  why: string;
}

/** Every import of `text` (a file at `file`, relative to the repository) that breaks the engine's rule. */
export function engineViolations(file: string, text: string): Violation[] {
  const out: Violation[] = [];
  const info = ts.preProcessFile(text, true, true);
  for (const { fileName: spec } of info.importedFiles) {
    const bare = spec.split("/")[0]!;
    const pkg = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : bare;
    let why: string | undefined;
    if (spec.startsWith("node:") || builtinModules.includes(bare)) why = "a Node built-in";
    else if (spec.startsWith("npm:") || spec.startsWith("jsr:") || spec.startsWith("https:"))
      why = "a Deno import";
    else if (PLATFORM_LIBRARIES.includes(pkg)) why = "a platform library";
    else if (spec.startsWith(".")) {
      const target = relative(process.cwd(), resolve(dirname(file), spec));
      if (!target.startsWith(join("src", "engine"))) why = "outside src/engine";
    } else why = "a package";
    if (why) out.push({ file, import: spec, why });
  }
  // The Deno global, outside comments and strings (a mention in prose is no use of it).
  const scanner = ts.createScanner(ts.ScriptTarget.Latest, true, ts.LanguageVariant.Standard, text);
  for (let k = scanner.scan(); k !== ts.SyntaxKind.EndOfFileToken; k = scanner.scan()) {
    if (k === ts.SyntaxKind.Identifier && scanner.getTokenText() === "Deno") {
      out.push({ file, import: "Deno", why: "the Deno global" });
      break;
    }
  }
  return out;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? tsFiles(join(dir, e.name))
      : e.name.endsWith(".ts")
        ? [join(dir, e.name)]
        : [],
  );
}

describe("the layer rule", () => {
  it("src/engine imports no runtime, no platform library and nothing outside src/engine", () => {
    const found = tsFiles(join("src", "engine")).flatMap((f) =>
      engineViolations(f, readFileSync(f, "utf8")),
    );
    expect(found.map((v) => `${v.file} imports ${v.import} (${v.why})`)).toEqual([]);
  });

  it("names the file and the import when the rule is broken", () => {
    const f = join("src", "engine", "task-pool.ts");
    const text = [
      'import { setTimeout } from "node:timers/promises";',
      'import { readFile } from "fs";',
      'import type { Hono } from "hono";',
      'export { request } from "undici";',
      'const d = await import("dockerode");',
      'import { x } from "../platform/clock.ts";',
      'import { y } from "./ledger.ts";',
      "// Deno is mentioned here only",
      "const v = Deno.env.get('X');",
    ].join("\n");
    expect(engineViolations(f, text)).toEqual([
      { file: f, import: "node:timers/promises", why: "a Node built-in" },
      { file: f, import: "fs", why: "a Node built-in" },
      { file: f, import: "hono", why: "a platform library" },
      { file: f, import: "undici", why: "a platform library" },
      { file: f, import: "dockerode", why: "a platform library" },
      { file: f, import: "../platform/clock.ts", why: "outside src/engine" },
      { file: f, import: "Deno", why: "the Deno global" },
    ]);
  });

  it("src/config.ts imports nothing from src/http", () => {
    const info = ts.preProcessFile(readFileSync(join("src", "config.ts"), "utf8"), true, true);
    expect(info.importedFiles.map((i) => i.fileName).filter((s) => s.includes("/http/"))).toEqual(
      [],
    );
  });
});
