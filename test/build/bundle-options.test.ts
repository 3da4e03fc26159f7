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
import { build } from "esbuild";
import { bundleOptions, checkSlimExports, SLIM } from "../../build/bundle-options.ts";

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
  const out = execFileSync(
    NODE,
    ["-e", `require(${JSON.stringify(file)}); console.log(JSON.stringify(process.moduleLoadList))`],
    { encoding: "utf8" },
  );
  return (JSON.parse(out) as string[])
    .filter((m) => m.startsWith("NativeModule "))
    .map((m) => m.slice("NativeModule ".length));
}

/** Files required after requiring `file` in a fresh node. */
function filesLoadedBy(file: string): string[] {
  const out = execFileSync(
    NODE,
    [
      "-e",
      `require(${JSON.stringify(file)}); console.log(JSON.stringify(Object.keys(require.cache)))`,
    ],
    { encoding: "utf8" },
  );
  return JSON.parse(out) as string[];
}

describe("slim bundle entries", () => {
  it("export every name src/ imports from undici and systeminformation", () => {
    expect(() => checkSlimExports()).not.toThrow();
  });

  it("fail the build when src/ imports a name they lack", () => {
    scratch = mkdtempSync(join(tmpdir(), "meca-slim-"));
    mkdirSync(join(scratch, "platform"));
    writeFileSync(
      join(scratch, "platform", "x.ts"),
      'import { Pool, ProxyAgent } from "undici";\nimport * as si from "systeminformation";\nsi.diskLayout();\n',
    );
    expect(() => checkSlimExports(scratch)).toThrow(
      /undici\.ProxyAgent .*systeminformation\.diskLayout|systeminformation\.diskLayout.*undici\.ProxyAgent/,
    );
  });

  it("give undici's Pool its request API, and buildConnector", () => {
    const u = require(SLIM.undici!) as {
      Pool: { prototype: Record<string, unknown> };
      buildConnector: unknown;
    };
    expect(typeof u.Pool.prototype.request).toBe("function");
    expect(typeof u.buildConnector).toBe("function");
  });

  it("bundle undici's Pool without node:http2, and the Pool still calls over HTTP/1.1", async () => {
    scratch = mkdtempSync(join(tmpdir(), "meca-slim-"));
    const entry = join(scratch, "entry.mjs");
    writeFileSync(
      entry,
      [
        'import { createServer } from "node:http";',
        'import { Pool } from "undici";',
        'const server = createServer((req, res) => res.end("pong")).listen(0, "127.0.0.1", async () => {',
        "  const pool = new Pool(`http://127.0.0.1:${server.address().port}`);",
        '  const r = await pool.request({ method: "GET", path: "/" });',
        "  const body = await r.body.text();",
        "  await pool.close();",
        "  server.close();",
        "  console.log(JSON.stringify({ body, modules: process.moduleLoadList }));",
        "});",
      ].join("\n"),
    );
    const out = join(scratch, "out.cjs");
    await build({
      ...bundleOptions(),
      entryPoints: [entry],
      outfile: out,
      format: "cjs",
      logLevel: "silent",
    });
    const { body, modules } = JSON.parse(execFileSync(NODE, [out], { encoding: "utf8" })) as {
      body: string;
      modules: string[];
    };
    expect(body).toBe("pong");
    for (const left of ["http2", "tls", "crypto"])
      expect(modules).not.toContain(`NativeModule ${left}`);
    expect(modules).toContain("NativeModule net");
  });

  it("leave out the modules src/ never uses", () => {
    const undici = builtinsLoadedBy(SLIM.undici!);
    expect(undici).toContain("net");
    for (const unused of ["zlib", "worker_threads", "console"])
      expect(undici).not.toContain(unused);
    const si = require(SLIM.systeminformation!) as Record<string, unknown>;
    expect(Object.keys(si).sort()).toEqual(["cpu", "currentLoad", "mem"]);
    const siFiles = filesLoadedBy(SLIM.systeminformation!).filter((f) =>
      f.includes("/systeminformation/"),
    );
    expect(siFiles.map((f) => f.replace(/.*\/systeminformation\/lib\//, "")).sort()).toEqual([
      "cpu.js",
      "memory.js",
      "util.js",
    ]);
  });
});
