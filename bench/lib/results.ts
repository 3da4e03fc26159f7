/** The figures of one run, and the table rows with the targets (issue 6). */
import type { ColdResult } from "./cold-phase.ts";
import type { Target } from "./executor-process.ts";
import type { MemoryBreakdown } from "./memory.ts";
import { ms, plus, x, type Machine, type Row } from "./report.ts";
import type { PrewarmResult } from "./prewarm.ts";
import type { RestartResult } from "./restart.ts";
import type { ProtectionsResult } from "./protections.ts";
import type { ReplicasResult } from "./replicas.ts";
import type { WarmResult } from "./warm.ts";
import type { UsageCostResult } from "./usage-cost.ts";
import type { OwnerResult } from "./owner.ts";

export interface Series {
  samples: number[];
  median: number;
}

export interface Results {
  version: 1;
  date: string;
  machine: Machine;
  target: Target;
  plan: Record<string, number>;
  /** The node that ran the bundle, the empty process and the reference forwarder, and the executable's flags. */
  nodeRun: { node: string; version: string; execArgv: string[] };
  warm: WarmResult;
  cold: ColdResult;
  /** An empty Node process of the same build and flags, idle. */
  emptyNode: MemoryBreakdown | null;
  /** The least HTTP daemon of the same build and flags (empty-server.cjs), idle after 20 requests: node:http alone, and with undici's Pool forwarding each request. */
  emptyHttp?: { server: MemoryBreakdown | null; withUndici: MemoryBreakdown | null };
  startup: { target: Series; binary: Series | null };
  durationS: number;
  /** CPU-bound task, task_concurrency 1 against the default (bench/lib/replicas.ts). */
  replicas: ReplicasResult;
  /** The host's protections on (the defaults) against off (bench/lib/protections.ts). */
  protections: ProtectionsResult;
  /** An executor with one prewarm entry (bench/lib/prewarm.ts). */
  prewarm: PrewarmResult;
  restart: RestartResult;
  /** usage on against off, with an A/A pair (bench/lib/usage-cost.ts). */
  usage: UsageCostResult;
  /** The owner's CPU beside spinning tasks, task_cpu_priority idle against normal (bench/lib/owner.ts). */
  owner: OwnerResult;
}

export const TARGETS = {
  warmP50OverheadMs: 0.3,
  firstMinuteP50OverheadMs: 0.4,
  throughputRatio: 0.5,
  coldRatio: 0.8,
  parallelRatio: 1.1,
  idleRssMB: 60,
  afterLoadRssMB: 90,
} as const;

/** The cold-start rows: the executor against the raw isolated start, one and several at once. */
export function coldRows(c: Results["cold"]): Row[] {
  const n = c.parallel.n;
  const coldRatio = c.executor.median / c.rawIsolated.median;
  const parRatio = c.parallel.executor.median / c.parallel.raw.median;
  return [
    {
      metric: `cold start with isolation, median of ${c.executor.samples.length} (ms)`,
      executor: ms(c.executor.median),
      other: `raw network + run: ${ms(c.rawIsolated.median)}`,
      ratio: x(coldRatio),
      target: `≤ ${TARGETS.coldRatio}×`,
      met: coldRatio <= TARGETS.coldRatio,
    },
    {
      metric: "cold start with isolation vs raw without a network (ms)",
      executor: ms(c.executor.median),
      other: `raw run: ${ms(c.raw.median)}`,
      ratio: x(c.executor.median / c.raw.median),
      target: "—",
    },
    {
      metric: `${n} cold starts at once, until all answered, median of ${c.parallel.executor.samples.length} (ms); raw: each with a network`,
      executor: ms(c.parallel.executor.median),
      other: ms(c.parallel.raw.median),
      ratio: x(parRatio),
      target: `≤ ${TARGETS.parallelRatio}×`,
      met: parRatio <= TARGETS.parallelRatio,
    },
  ];
}

export function buildRows(r: Results): Row[] {
  const s = r.warm.sequential;
  const t = r.warm.throughput;
  const c = r.cold;
  const p50Over = s.executor.p50 - s.direct.p50;
  const tpRatio = t.executor.rps / t.direct.rps;
  const fm = r.warm.firstMinute;
  const fmOver = fm.executor.p50 - fm.direct.p50;
  const fc = r.warm.freshConnection;
  return [
    {
      metric: `first minute: warm p50 of the ${fm.count} requests after the first cold start (ms)`,
      executor: ms(fm.executor.p50),
      other: ms(fm.direct.p50),
      ratio: plus(fmOver),
      target: `≤ +${TARGETS.firstMinuteP50OverheadMs} ms`,
      met: fmOver <= TARGETS.firstMinuteP50OverheadMs,
    },
    {
      metric: "warm p50, sequential (ms)",
      executor: ms(s.executor.p50),
      other: ms(s.direct.p50),
      ratio: plus(p50Over),
      target: `≤ +${TARGETS.warmP50OverheadMs} ms`,
      met: p50Over <= TARGETS.warmP50OverheadMs,
    },
    {
      metric: "warm p99, sequential (ms)",
      executor: ms(s.executor.p99),
      other: ms(s.direct.p99),
      ratio: plus(s.executor.p99 - s.direct.p99),
      target: "—",
    },
    {
      metric: `throughput, ${t.concurrency} clients (req/s)`,
      executor: ms(t.executor.rps),
      other: ms(t.direct.rps),
      ratio: x(tpRatio),
      target: `≥ ${TARGETS.throughputRatio}×`,
      met: tpRatio >= TARGETS.throughputRatio,
    },
    {
      metric: `warm p50 / p99, new connection per request (ms)`,
      executor: `${ms(fc.executor.p50)} / ${ms(fc.executor.p99)}`,
      other: `${ms(fc.direct.p50)} / ${ms(fc.direct.p99)}`,
      ratio: plus(fc.executor.p50 - fc.direct.p50),
      target: "—",
    },
    {
      metric: `latency p50 / p99 at ${t.concurrency} clients (ms)`,
      executor: `${ms(t.executor.p50)} / ${ms(t.executor.p99)}`,
      other: `${ms(t.direct.p50)} / ${ms(t.direct.p99)}`,
      ratio: "",
      target: "—",
    },
    {
      metric: "executor CPU per request, sequential / 32 clients (µs)",
      executor: `${ms(s.executor.cpuUsPerRequest)} / ${ms(t.executor.cpuUsPerRequest)}`,
      other: "",
      ratio: "",
      target: "—",
    },
    ...floorRows(r),
    ...coldRows(c),
    {
      metric: `RSS idle, ${r.plan.settleAfterLoadMs! / 1000} s after the first minute (MB); other: ${REFERENCES}`,
      executor: ms(r.warm.idleRssMB),
      other: references(r, (b) => ms(b.rss)),
      ratio: "",
      target: `≤ ${TARGETS.idleRssMB} MB`,
      met: r.warm.idleRssMB <= TARGETS.idleRssMB,
    },
    ...memoryRows("idle", r.warm.idleMemory, r),
    {
      metric: `RSS under ${t.concurrency}-client load, max sampled (MB)`,
      executor: ms(r.warm.loadRssMaxMB),
      other: "",
      ratio: "",
      target: "—",
    },
    {
      metric: `RSS idle again, ${r.plan.settleAfterLoadMs! / 1000} s after the ${t.concurrency}-client load (MB)`,
      executor: ms(r.warm.afterLoadRssMB),
      other: "",
      ratio: "",
      target: `≤ ${TARGETS.afterLoadRssMB} MB`,
      met: r.warm.afterLoadRssMB <= TARGETS.afterLoadRssMB,
    },
    ...memoryRows("after the load", r.warm.afterLoadMemory, r),
    {
      metric: "binary: exec → healthy /health (ms)",
      executor: r.startup.binary ? ms(r.startup.binary.median) : "not built",
      other: "",
      ratio: "",
      target: "—",
    },
    {
      metric: `${r.target}: exec → healthy /health, median of ${r.startup.target.samples.length} (ms)`,
      executor: ms(r.startup.target.median),
      other: "",
      ratio: "",
      target: "—",
    },
  ];
}

/** The reference processes of the memory rows, in the order `references` lists them. */
const REFERENCES =
  "an empty Node process / an empty node:http server / the same server forwarding each request through undici's Pool, each of the same build and flags, idle";

/** A figure of each reference process, `a / b / c` (those measured). */
function references(r: Results, f: (b: MemoryBreakdown) => string): string {
  return [r.emptyNode, r.emptyHttp?.server, r.emptyHttp?.withUndici]
    .map((b) => (b ? f(b) : "–"))
    .join(" / ");
}

/** Where the RSS goes: the executor beside the reference processes of the same build. */
function memoryRows(when: string, m: MemoryBreakdown | undefined, r: Results): Row[] {
  if (!m) return [];
  const row = (what: string, f: (b: MemoryBreakdown) => string): Row => ({
    metric: `  ${when}: ${what}`,
    executor: f(m),
    other: references(r, f),
    ratio: "",
    target: "—",
  });
  return [
    row("pages of the node binary and libraries (file-backed, MB)", (b) => ms(b.fileBacked)),
    row(
      "V8 heap resident, of it used / JIT code (MB)",
      (b) => `${ms(b.v8Heap)} (${ms(b.v8HeapUsed)} / ${ms(b.v8Code)})`,
    ),
    row("external: Buffers, ArrayBuffers (MB)", (b) => ms(b.external)),
    row("rest: malloc by Node, V8, libuv; thread stacks; WebAssembly (MB)", (b) => ms(b.rest)),
  ];
}

/** The reference forwarder, in the executor's column, against the same direct figures. */
function floorRows(r: Results): Row[] {
  const s = r.warm.sequential;
  const t = r.warm.throughput;
  if (!s.floor || !t.floor) return [];
  const f = "reference: minimal Node forwarder,";
  return [
    {
      metric: `${f} warm p50 (ms)`,
      executor: ms(s.floor.p50),
      other: ms(s.direct.p50),
      ratio: plus(s.floor.p50 - s.direct.p50),
      target: "—",
    },
    {
      metric: `${f} throughput, ${t.concurrency} clients (req/s)`,
      executor: ms(t.floor.rps),
      other: ms(t.direct.rps),
      ratio: x(t.floor.rps / t.direct.rps),
      target: "—",
    },
    {
      metric: `${f} CPU per request, sequential / ${t.concurrency} clients (µs)`,
      executor: `${ms(s.floor.cpuUsPerRequest)} / ${ms(t.floor.cpuUsPerRequest)}`,
      other: "",
      ratio: "",
      target: "—",
    },
    {
      metric: `${f} RSS idle / under load (MB)`,
      executor: `${ms(r.warm.floorRssMB?.idle)} / ${ms(r.warm.floorRssMB?.loadMax)}`,
      other: "",
      ratio: "",
      target: "—",
    },
    {
      metric: `${f} throughput, executor ÷ forwarder`,
      executor: x(t.executor.rps / t.floor.rps),
      other: "",
      ratio: "",
      target: "—",
    },
  ];
}
