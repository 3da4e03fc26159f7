/**
 * No import cycle in src/, counting `import type` too: each module's dependencies point one way
 * (docs/architecture.md, "Layers and their one-way dependencies").
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const SRC = resolve("src");

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}

/** Relative imports (static, type-only and re-exports) of each file, as absolute paths. */
export function importGraph(root: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const f of files(root)) {
    const text = readFileSync(f, "utf8");
    const deps = [...text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+"(\.[^"]+)"/gms)].map(
      (m) => resolve(dirname(f), m[1]!),
    );
    graph.set(f, deps);
  }
  return graph;
}

/** The first cycle found, as the files in order; undefined when there is none. */
export function findCycle(graph: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (f: string): string[] | undefined => {
    if (state.get(f) === "done") return undefined;
    if (state.get(f) === "open") return [...stack.slice(stack.indexOf(f)), f];
    state.set(f, "open");
    stack.push(f);
    for (const d of graph.get(f) ?? []) {
      const c = visit(d);
      if (c) return c;
    }
    stack.pop();
    state.set(f, "done");
    return undefined;
  };
  for (const f of graph.keys()) {
    const c = visit(f);
    if (c) return c;
  }
  return undefined;
}

describe("src/", () => {
  it("has no import cycle, type imports included", () => {
    const cycle = findCycle(importGraph(SRC));
    expect(cycle?.map((f) => relative(SRC, f)).join(" → ")).toBeUndefined();
  });

  it("the check finds a cycle where there is one, through a type import too", () => {
    const g = new Map([
      ["/a.ts", ["/b.ts"]],
      ["/b.ts", ["/c.ts"]],
      ["/c.ts", ["/a.ts"]],
      ["/d.ts", []],
    ]);
    expect(findCycle(g)).toEqual(["/a.ts", "/b.ts", "/c.ts", "/a.ts"]);
    const text =
      'import type { X } from "./app.ts";\nexport { y } from "./y.ts";\nimport {\n  z,\n} from "./z.ts";\n';
    expect(
      [...text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+"(\.[^"]+)"/gms)].map((m) => m[1]),
    ).toEqual(["./app.ts", "./y.ts", "./z.ts"]);
    expect(
      findCycle(
        new Map([
          ["/a.ts", ["/b.ts"]],
          ["/b.ts", []],
        ]),
      ),
    ).toBeUndefined();
  });
});
