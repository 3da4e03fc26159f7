/**
 * Replicas: a CPU-bound task (the `meca-test/cpu:1` fixture: 50 ms of CPU per request, then echo)
 * at 8 concurrent clients with room for 2 cores, through two executors that differ only in
 * `task_concurrency`: the default (0: one container per key, so every request shares the one
 * core its intent asked for) and 1 (one request per replica, as many replicas as capacity allows).
 * Both run side by side; slices alternate in rotating order so drift hits both.
 */
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import type { Pool } from "undici";
import { ExecutorProcess, type PhaseOptions } from "./executor-process.ts";
import { execute, nextSeq, pool, saturate, type Saturation, type Side } from "./load.ts";
import { percentile } from "./stats.ts";

export interface ReplicasSide {
  taskConcurrency: number;
  rps: number;
  p50: number;
  completed: number;
  errors: number;
  firstError?: string;
  /** Task containers of this executor after the load. */
  replicas: number;
}

export interface ReplicasResult {
  clients: number;
  spinMs: number;
  capacityCores: number;
  intent: { cpu: number; mem: number };
  sliceMs: number;
  rounds: number;
  default: ReplicasSide;
  replicas: ReplicasSide;
  /** replicas.rps / default.rps. */
  ratio: number;
  /** The host's 1-minute load average before and after the slices: other work on a shared machine shows here. */
  loadAverage: [number, number];
}

const SPIN_MS = 50;
const CLIENTS = 8;
const CAPACITY_CORES = 2;

export const CPU_IMAGE = "meca-test/cpu:1";

export async function replicasPhase(o: PhaseOptions): Promise<ReplicasResult> {
  const sliceMs = o.quick ? 2000 : 4000;
  const rounds = o.quick ? 1 : 2;
  // Unusual mem: no other executor on the engine picks the same container names.
  const intent = { cpu: 1, mem: 131 };
  const sides: { tc: number; exec: ExecutorProcess; pool: Pool; slices: Saturation[] }[] = [];
  try {
    for (const tc of [0, 1]) {
      const config = join(o.work, `replicas-${tc}.yaml`);
      writeFileSync(
        config,
        `instance: bench-replicas-${tc}\ntimeout: 30\ncpu: ${CAPACITY_CORES}\nmem: 2048\ntask_concurrency: ${tc}\n`,
      );
      o.log(`replicas: starting an executor with task_concurrency ${tc}`);
      const exec = await ExecutorProcess.start({
        target: o.target,
        root: o.root,
        config,
        file: o.file,
      });
      sides.push({ tc, exec, pool: pool(exec.origin, CLIENTS), slices: [] });
    }
    const send = (p: Pool) => () => execute(p, { id: CPU_IMAGE, resource: intent }, nextSeq());
    const sideOf = (s: (typeof sides)[number]): Side => ({
      name: `task_concurrency ${s.tc}`,
      send: send(s.pool),
      close: async () => {},
    });
    const loadBefore = loadavg()[0]!;
    // Warm both: the replicas start under the first burst and are not measured.
    for (const s of sides) await saturate(sideOf(s), { concurrency: CLIENTS, durationMs: 1000 });
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? sides : [...sides].reverse();
      for (const s of order) {
        o.log(`replicas: ${CLIENTS} clients, task_concurrency ${s.tc}, ${sliceMs / 1000} s`);
        s.slices.push(await saturate(sideOf(s), { concurrency: CLIENTS, durationMs: sliceMs }));
      }
    }
    const summary = async (s: (typeof sides)[number]): Promise<ReplicasSide> => {
      const completed = s.slices.reduce((n, x) => n + x.completed, 0);
      const ms = s.slices.reduce((n, x) => n + x.elapsedMs, 0);
      const tasks = (await (await fetch(`${s.exec.origin}/tasks`)).json()) as unknown[];
      return {
        taskConcurrency: s.tc,
        rps: (completed / ms) * 1000,
        p50: percentile(
          s.slices.flatMap((x) => x.latencies),
          50,
        ),
        completed,
        errors: s.slices.reduce((n, x) => n + x.errors, 0),
        firstError: s.slices.find((x) => x.firstError)?.firstError,
        replicas: Array.isArray(tasks)
          ? tasks.length
          : ((tasks as { tasks?: unknown[] }).tasks?.length ?? 0),
      };
    };
    const def = await summary(sides[0]!);
    const rep = await summary(sides[1]!);
    return {
      clients: CLIENTS,
      spinMs: SPIN_MS,
      capacityCores: CAPACITY_CORES,
      intent,
      sliceMs,
      rounds,
      default: def,
      replicas: rep,
      ratio: rep.rps / def.rps,
      loadAverage: [loadBefore, loadavg()[0]!],
    };
  } finally {
    for (const s of sides) {
      await s.pool.close();
      const code = await s.exec.stop();
      if (code !== 0)
        o.log(`replicas: the executor with task_concurrency ${s.tc} exited with ${code}`);
    }
  }
}

/** The table rows: replicas (task_concurrency 1) in the executor column, the default in the other. */
export function replicasRows(r: ReplicasResult): {
  metric: string;
  executor: string;
  other: string;
  ratio: string;
  target: string;
  met?: boolean;
}[] {
  const f = (v: number) => v.toFixed(1);
  return [
    {
      metric: `CPU-bound task (${r.spinMs} ms CPU), ${r.clients} clients, ${r.capacityCores} cores: throughput, task_concurrency 1 vs default (req/s)`,
      executor: f(r.replicas.rps),
      other: f(r.default.rps),
      ratio: `${r.ratio.toFixed(2)}×`,
      target: "≈ 2× on 2 cores",
      met: r.ratio >= 1.6,
    },
    {
      metric:
        "CPU-bound task: latency p50 and replicas after the load, task_concurrency 1 vs default",
      executor: `${f(r.replicas.p50)} ms, ${r.replicas.replicas}`,
      other: `${f(r.default.p50)} ms, ${r.default.replicas}`,
      ratio: "",
      target: "—",
    },
  ];
}
