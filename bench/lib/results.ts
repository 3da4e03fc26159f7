/** The figures of one run, and the table rows with the targets (issue 6). */
import type { ColdResult } from "./cold-phase.ts";
import type { Target } from "./executor-process.ts";
import { ms, plus, x, type Machine, type Row } from "./report.ts";
import type { ReplicasResult } from "./replicas.ts";
import type { WarmResult } from "./warm.ts";

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
  warm: WarmResult;
  cold: ColdResult;
  startup: { target: Series; binary: Series | null };
  durationS: number;
  /** CPU-bound task, task_concurrency 1 against the default (bench/lib/replicas.ts). */
  replicas: ReplicasResult;
}

export const TARGETS = {
  warmP50OverheadMs: 0.3,
  throughputRatio: 0.5,
  coldRatio: 1.1,
  parallelRatio: 2,
  idleRssMB: 60,
} as const;

export function buildRows(r: Results): Row[] {
  const s = r.warm.sequential;
  const t = r.warm.throughput;
  const c = r.cold;
  const n = c.parallel.n;
  const p50Over = s.executor.p50 - s.direct.p50;
  const tpRatio = t.executor.rps / t.direct.rps;
  const coldRatio = c.executor.median / c.rawIsolated.median;
  const parRatio = c.parallel.executor.median / c.executor.median;
  const rawParRatio = c.parallel.raw.median / c.raw.median;
  return [
    { metric: "warm p50, sequential (ms)", executor: ms(s.executor.p50), other: ms(s.direct.p50), ratio: plus(p50Over), target: `≤ +${TARGETS.warmP50OverheadMs} ms`, met: p50Over <= TARGETS.warmP50OverheadMs },
    { metric: "warm p99, sequential (ms)", executor: ms(s.executor.p99), other: ms(s.direct.p99), ratio: plus(s.executor.p99 - s.direct.p99), target: "—" },
    { metric: `throughput, ${t.concurrency} clients (req/s)`, executor: ms(t.executor.rps), other: ms(t.direct.rps), ratio: x(tpRatio), target: `≥ ${TARGETS.throughputRatio}×`, met: tpRatio >= TARGETS.throughputRatio },
    { metric: `latency p50 / p99 at ${t.concurrency} clients (ms)`, executor: `${ms(t.executor.p50)} / ${ms(t.executor.p99)}`, other: `${ms(t.direct.p50)} / ${ms(t.direct.p99)}`, ratio: "", target: "—" },
    { metric: "executor CPU per request, sequential / 32 clients (µs)", executor: `${ms(s.executor.cpuUsPerRequest)} / ${ms(t.executor.cpuUsPerRequest)}`, other: "", ratio: "", target: "—" },
    ...floorRows(r),
    { metric: `cold start with isolation, median of ${c.executor.samples.length} (ms)`, executor: ms(c.executor.median), other: `raw network + run: ${ms(c.rawIsolated.median)}`, ratio: x(coldRatio), target: `≤ ${TARGETS.coldRatio}×`, met: coldRatio <= TARGETS.coldRatio },
    { metric: "cold start with isolation vs raw without a network (ms)", executor: ms(c.executor.median), other: `raw run: ${ms(c.raw.median)}`, ratio: x(c.executor.median / c.raw.median), target: "—" },
    { metric: `${n} cold starts at once vs one, executor (ms)`, executor: ms(c.parallel.executor.median), other: `one: ${ms(c.executor.median)}`, ratio: x(parRatio), target: `≤ ${TARGETS.parallelRatio}×`, met: parRatio <= TARGETS.parallelRatio },
    { metric: `${n} cold starts at once vs one, raw Engine API (reference)`, executor: "", other: `${ms(c.parallel.raw.median)} vs ${ms(c.raw.median)}`, ratio: x(rawParRatio), target: "—" },
    { metric: "RSS idle, after start and a few requests (MB)", executor: ms(r.warm.idleRssMB), other: "", ratio: "", target: `≤ ${TARGETS.idleRssMB} MB`, met: r.warm.idleRssMB <= TARGETS.idleRssMB },
    { metric: `RSS under ${t.concurrency}-client load, max sampled (MB)`, executor: ms(r.warm.loadRssMaxMB), other: "", ratio: "", target: "—" },
    { metric: "RSS idle again after the load (MB)", executor: ms(r.warm.afterLoadRssMB), other: "", ratio: "", target: "—" },
    { metric: "binary: exec → healthy /health (ms)", executor: r.startup.binary ? ms(r.startup.binary.median) : "not built", other: "", ratio: "", target: "—" },
    { metric: `${r.target}: exec → healthy /health, median of ${r.startup.target.samples.length} (ms)`, executor: ms(r.startup.target.median), other: "", ratio: "", target: "—" },
  ];
}

/** The reference forwarder, in the executor's column, against the same direct figures. */
function floorRows(r: Results): Row[] {
  const s = r.warm.sequential;
  const t = r.warm.throughput;
  if (!s.floor || !t.floor) return [];
  const f = "reference: minimal Node forwarder,";
  return [
    { metric: `${f} warm p50 (ms)`, executor: ms(s.floor.p50), other: ms(s.direct.p50), ratio: plus(s.floor.p50 - s.direct.p50), target: "—" },
    { metric: `${f} throughput, ${t.concurrency} clients (req/s)`, executor: ms(t.floor.rps), other: ms(t.direct.rps), ratio: x(t.floor.rps / t.direct.rps), target: "—" },
    { metric: `${f} CPU per request, sequential / ${t.concurrency} clients (µs)`, executor: `${ms(s.floor.cpuUsPerRequest)} / ${ms(t.floor.cpuUsPerRequest)}`, other: "", ratio: "", target: "—" },
    { metric: `${f} RSS idle / under load (MB)`, executor: `${ms(r.warm.floorRssMB?.idle)} / ${ms(r.warm.floorRssMB?.loadMax)}`, other: "", ratio: "", target: "—" },
  ];
}
