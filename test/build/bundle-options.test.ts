/**
 * The executable's slim entries for undici and systeminformation: every name
 * src/ imports is there and works, and they leave out what src/ never uses.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { checkSlimExports, SLIM } from "../../build/bundle-options.ts";

const require = createRequire(import.meta.url);
/** A Node to load the entries in (under Deno, process.execPath is deno). */
const NODE = "Deno" in globalThis ? "node" : process.execPath;
let scratch: string | undefined;
afterEach(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
});

/** Built-in modules loaded after requiring `file` in a fresh node. */
function builtinsLoadedBy(file: string): string[] {
  const out = execFileSync(NODE, ["-e", `require(${JSON.stringify(file)}); console.log(JSON.stringify(process.moduleLoadList))`], { encoding: "utf8" });
  return (JSON.parse(out) as string[]).filter((m) => m.startsWith("NativeModule ")).map((m) => m.slice("NativeModule ".length));
}

/** Files required after requiring `file` in a fresh node. */
function filesLoadedBy(file: string): string[] {
  const out = execFileSync(NODE, ["-e", `require(${JSON.stringify(file)}); console.log(JSON.stringify(Object.keys(require.cache)))`], { encoding: "utf8" });
  return JSON.parse(out) as string[];
}

describe("slim bundle entries", () => {
  it("export every name src/ imports from undici and systeminformation", () => {
    expect(() => checkSlimExports()).not.toThrow();
  });

  it("fail the build when src/ imports a name they lack", () => {
    scratch = mkdtempSync(join(tmpdir(), "meca-slim-"));
    mkdirSync(join(scratch, "platform"));
    writeFileSync(join(scratch, "platform", "x.ts"), 'import { Pool, ProxyAgent } from "undici";\nimport * as si from "systeminformation";\nsi.diskLayout();\n');
    expect(() => checkSlimExports(scratch)).toThrow(/undici\.ProxyAgent .*systeminformation\.diskLayout|systeminformation\.diskLayout.*undici\.ProxyAgent/);
  });

  it("give undici's Pool its request API, and a fetch", () => {
    const u = require(SLIM.undici!) as { Pool: { prototype: Record<string, unknown> }; Agent: { prototype: Record<string, unknown> }; fetch: unknown; buildConnector: unknown };
    expect(typeof u.Pool.prototype.request).toBe("function");
    expect(typeof u.Agent.prototype.request).toBe("function");
    expect(typeof u.fetch).toBe("function");
    expect(typeof u.buildConnector).toBe("function");
  });

  it("leave out the modules src/ never uses", () => {
    const undici = builtinsLoadedBy(SLIM.undici!);
    expect(undici).toContain("net");
    for (const unused of ["zlib", "worker_threads", "console"]) expect(undici).not.toContain(unused);
    const si = require(SLIM.systeminformation!) as Record<string, unknown>;
    expect(Object.keys(si).sort()).toEqual(["cpu", "currentLoad", "mem"]);
    const siFiles = filesLoadedBy(SLIM.systeminformation!).filter((f) => f.includes("/systeminformation/"));
    expect(siFiles.map((f) => f.replace(/.*\/systeminformation\/lib\//, "")).sort()).toEqual(["cpu.js", "memory.js", "util.js"]);
  });
});
