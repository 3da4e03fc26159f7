/**
 * Reads a V8 .cpuprofile of the bundled executor and says where the time
 * went: self time per function (mapped back through the bundle's source map
 * to src/ or node_modules/<package>), self and inclusive time per area
 * (hono, zod, undici, JSON, AbortSignal, logging, node's http, GC, ...).
 */
import { readFileSync } from "node:fs";
import { SourceMap } from "node:module";
import { fileURLToPath } from "node:url";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FrameInfo {
  name: string;
  /** Original file (src/..., node_modules/pkg/..., node:...) and line. */
  where: string;
  area: string;
}

export interface ProfileSummary {
  totalMs: number;
  busyMs: number;
  samples: number;
  /** Self time per function, busiest first. */
  functions: { name: string; where: string; area: string; selfMs: number; selfPct: number }[];
  /** Time with the function anywhere on the stack, busiest first. */
  inclusive: { name: string; where: string; area: string; ms: number; pct: number }[];
  /** For the busiest native functions (syscalls, GC aside): the call paths that lead to them. */
  callers: { name: string; pct: number; paths: { path: string; pct: number }[] }[];
  /** Per area: self time, and time with the area anywhere on the stack (both % of busy time). */
  areas: {
    area: string;
    selfMs: number;
    selfPct: number;
    inclusiveMs: number;
    inclusivePct: number;
  }[];
}

const NOT_BUSY = new Set(["(idle)", "(root)"]);

export function summarize(
  profileFile: string,
  opts: { root: string; top?: number },
): ProfileSummary {
  const p = JSON.parse(readFileSync(profileFile, "utf8")) as CpuProfile;
  const maps = new Map<string, SourceMap | null>();
  const info = new Map<number, FrameInfo>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    info.set(n.id, frameInfo(n.callFrame, maps, opts.root));
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  // timeDeltas[i] is the time between sample i-1 and sample i: charge it to sample i.
  const self = new Map<number, number>();
  const incl = new Map<string, number>();
  const inclFn = new Map<string, number>();
  const paths = new Map<string, Map<string, number>>();
  const keyOf = (fi: FrameInfo) => `${fi.name}@${fi.where}`;
  let total = 0;
  let busy = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    const dt = Math.max(0, p.timeDeltas[i] ?? 0) / 1000;
    total += dt;
    const fi = info.get(id)!;
    if (NOT_BUSY.has(fi.name)) continue;
    busy += dt;
    self.set(id, (self.get(id) ?? 0) + dt);
    const seen = new Set<string>();
    const seenFn = new Set<string>();
    const chain: string[] = [];
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const f = info.get(n)!;
      seen.add(f.area);
      seenFn.add(keyOf(f));
      if (chain.length < 6 && f.name !== "(root)")
        chain.push(`${f.name} (${f.where.replace(/^node_modules\//, "")})`);
    }
    for (const a of seen) incl.set(a, (incl.get(a) ?? 0) + dt);
    for (const k of seenFn) inclFn.set(k, (inclFn.get(k) ?? 0) + dt);
    if (fi.where === "(native)" && !fi.name.startsWith("(")) {
      const m = paths.get(fi.name) ?? new Map<string, number>();
      const path = chain.slice(1).join(" ← ");
      m.set(path, (m.get(path) ?? 0) + dt);
      paths.set(fi.name, m);
    }
  }
  const byFn = new Map<string, { name: string; where: string; area: string; selfMs: number }>();
  const byArea = new Map<string, number>();
  for (const [id, t] of self) {
    const fi = info.get(id)!;
    const k = `${fi.name}@${fi.where}`;
    const e = byFn.get(k) ?? { ...fi, selfMs: 0 };
    e.selfMs += t;
    byFn.set(k, e);
    byArea.set(fi.area, (byArea.get(fi.area) ?? 0) + t);
  }
  const pct = (v: number) => (busy ? (v / busy) * 100 : 0);
  return {
    totalMs: total,
    busyMs: busy,
    samples: p.samples.length,
    functions: [...byFn.values()]
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, opts.top ?? 40)
      .map((f) => ({ ...f, selfPct: pct(f.selfMs) })),
    inclusive: [...inclFn]
      .map(([k, ms]) => {
        const [name, where] = [k.slice(0, k.indexOf("@")), k.slice(k.indexOf("@") + 1)];
        return { name, where, area: area(where, name), ms, pct: pct(ms) };
      })
      .filter((f) => f.name !== "(root)")
      .sort((a, b) => b.ms - a.ms)
      .slice(0, opts.top ?? 40),
    callers: [...paths]
      .map(([name, m]) => ({
        name,
        total: [...m.values()].reduce((a, b) => a + b, 0),
        paths: [...m]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 4)
          .map(([path, ms]) => ({ path, pct: pct(ms) })),
      }))
      .sort((a, b) => b.total - a.total)
      .slice(0, 4)
      .map((c) => ({ name: c.name, pct: pct(c.total), paths: c.paths })),
    areas: [...new Set([...byArea.keys(), ...incl.keys()])]
      .map((a) => ({
        area: a,
        selfMs: byArea.get(a) ?? 0,
        selfPct: pct(byArea.get(a) ?? 0),
        inclusiveMs: incl.get(a) ?? 0,
        inclusivePct: pct(incl.get(a) ?? 0),
      }))
      .filter((a) => a.area !== "(root)")
      .sort((a, b) => b.selfMs - a.selfMs),
  };
}

function frameInfo(cf: CallFrame, maps: Map<string, SourceMap | null>, root: string): FrameInfo {
  const name = cf.functionName || "(anonymous)";
  if (!cf.url) return { name, where: "(native)", area: nativeArea(name) };
  let where = cf.url;
  if (cf.url.startsWith("file://")) {
    const map = sourceMap(cf.url, maps);
    const e = map?.findEntry(cf.lineNumber, cf.columnNumber) as
      { originalSource?: string; originalLine?: number } | undefined;
    const file = e?.originalSource
      ? e.originalSource.replace(/^file:\/\//, "")
      : fileURLToPath(cf.url);
    where = `${relative(file, root)}:${(e?.originalLine ?? cf.lineNumber) + 1}`;
  }
  return { name, where, area: area(where, name) };
}

function sourceMap(url: string, maps: Map<string, SourceMap | null>): SourceMap | null {
  if (!maps.has(url)) {
    let m: SourceMap | null = null;
    try {
      m = new SourceMap(JSON.parse(readFileSync(`${fileURLToPath(url)}.map`, "utf8")));
    } catch {
      // not a bundle: the url is the original file
    }
    maps.set(url, m);
  }
  return maps.get(url)!;
}

function relative(file: string, root: string): string {
  const i = file.lastIndexOf("node_modules/");
  if (i >= 0) return file.slice(i);
  const abs = file.startsWith("/") ? file : `${root}/.bench/${file}`;
  const norm = abs.replace(/\/\.bench\/\.\.\//g, "/");
  return norm.startsWith(`${root}/`) ? norm.slice(root.length + 1) : norm;
}

function nativeArea(name: string): string {
  if (name.startsWith("(")) return name; // (garbage collector), (program), (idle), (root)
  if (name === "parse" || name === "stringify") return "JSON (native)";
  return "native builtins";
}

/** The area a frame belongs to, for the per-area totals. */
export function area(where: string, name: string): string {
  const pkg = /^node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(where)?.[1];
  if (pkg) return pkg === "@hono/node-server" ? "@hono/node-server" : pkg;
  if (where.startsWith("src/logger")) return "logging (src/logger.ts)";
  if (where.startsWith("src/")) return where.split("/").slice(0, 2).join("/").replace(/:\d+$/, "");
  if (where.startsWith("node:internal/deps/undici"))
    return "node's bundled undici (Request/Response/Headers)";
  if (
    where.startsWith("node:internal/abort_controller") ||
    (/^(timeout|any)$/.test(name) && where.includes("abort"))
  )
    return "AbortSignal (node)";
  if (where.startsWith("node:internal/webstreams")) return "web streams (node)";
  if (where.startsWith("node:internal/timers") || where.startsWith("node:timers"))
    return "timers (node)";
  if (/^node:(_http_|http|internal\/http)/.test(where)) return "http server/client (node)";
  if (/^node:(net|internal\/net|internal\/stream_base|stream|internal\/streams)/.test(where))
    return "net + streams (node)";
  if (
    where.startsWith("node:internal/event_target") ||
    where.startsWith("node:events") ||
    where.startsWith("node:internal/events")
  )
    return "events (node)";
  if (
    where.startsWith("node:internal/process/task_queues") ||
    where.startsWith("node:internal/async_hooks")
  )
    return "microtasks (node)";
  if (where.startsWith("node:")) return "other node internals";
  return "other";
}
