/**
 * `npm ci` on the oldest Node that `engines` admits prints no EBADENGINE warning: every package in
 * the lock file, dev dependencies included, admits that Node too.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";

// npm's own range rules (semver is in the tree through npm's tooling deps; the test only reads it).
const semver = createRequire(import.meta.url)("semver") as {
  minVersion(r: string): { version: string } | null;
  satisfies(v: string, r: string): boolean;
};

describe("package.json engines", () => {
  it("every locked package admits the oldest Node that engines.node admits", () => {
    const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { engines: { node: string } };
    const lock = JSON.parse(readFileSync("package-lock.json", "utf8")) as {
      packages: Record<string, { version?: string; engines?: { node?: string } | string[] }>;
    };
    const oldest = semver.minVersion(pkg.engines.node)!.version;
    expect(oldest).toBe("20.19.0");
    const refusing = Object.entries(lock.packages)
      .filter(
        ([path, p]) =>
          path !== "" &&
          p.engines &&
          !Array.isArray(p.engines) &&
          p.engines.node &&
          !semver.satisfies(oldest, p.engines.node),
      )
      .map(
        ([path, p]) =>
          `${path.replace(/^.*node_modules\//, "")}@${p.version} wants node ${(p.engines as { node: string }).node}`,
      );
    expect(refusing).toEqual([]);
  });
});
