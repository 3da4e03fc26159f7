/**
 * The warm path: the executor against a direct call to the same task
 * container's published port (and, for reference, a minimal Node forwarder
 * to that port). Sequential latency in interleaved blocks (the order rotates,
 * so drift hits every side), then throughput at N concurrent clients in
 * rotating slices, sampling RSS and CPU time of the processes in the path.
 */
import type { ExecutorProcess } from "./executor-process.ts";
import { FloorProcess } from "./floor.ts";
import { directSide, executorSide, pool, saturate, sequential, type Saturation, type Side } from "./load.ts";
import type { RawEngine } from "./raw-engine.ts";
import { mean, percentile } from "./stats.ts";

export interface WarmOptions {
  image: string;
  intent: Record<string, unknown>;
  blocks: number;
  blockSize: number;
  concurrency: number;
  sliceMs: number;
  rounds: number;
  /** Also measure the reference forwarder. */
  floor: boolean;
  log: (line: string) => void;
}

export interface Latency {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  /** p50 of each block, in run order. */
  blockP50: number[];
  /** CPU (user + system) of the forwarding process per request, µs; absent for the direct side. */
  cpuUsPerRequest?: number;
}

export interface Throughput {
  rps: number;
  completed: number;
  errors: number;
  p50: number;
  p99: number;
  cpuUsPerRequest?: number;
  slices: { rps: number; completed: number; errors: number; firstError?: string }[];
}

type Name = "executor" | "direct" | "floor";

export interface WarmResult {
  containerId: string;
  directOrigin: string;
  idleRssMB: number;
  sequential: Partial<Record<Name, Latency>> & { executor: Latency; direct: Latency };
  throughput: { concurrency: number } & Partial<Record<Name, Throughput>> & { executor: Throughput; direct: Throughput };
  loadRssMaxMB: number;
  afterLoadRssMB: number;
  /** The reference forwarder's RSS, idle and under load. */
  floorRssMB?: { idle: number; loadMax: number };
  requests: number;
}

interface Probe {
  rssMB(): number;
  cpuMs(): number;
}

/** The container behind the warm task for `image`, from GET /tasks. */
async function warmContainer(exec: ExecutorProcess, image: string): Promise<string> {
  const p = pool(exec.origin, 1);
  try {
    const res = await p.request({ method: "GET", path: "/tasks" });
    const { tasks } = (await res.body.json()) as { tasks: { image: string; state: string; container_id: string | null }[] };
    const t = tasks.find((t) => t.image === image && t.state === "ready" && t.container_id);
    if (!t) throw new Error(`GET /tasks lists no ready task for "${image}": ${JSON.stringify(tasks)}`);
    return t.container_id!;
  } finally {
    await p.close();
  }
}

/** Each round starts one further along, so no side is always first. */
const rotate = <T>(xs: T[], r: number): T[] => xs.map((_, i) => xs[(i + r) % xs.length]!);

export async function warmPhase(exec: ExecutorProcess, engine: RawEngine, o: WarmOptions): Promise<WarmResult> {
  const ex = executorSide(exec.origin, o.intent, o.concurrency);
  await ex.send(0); // starts the warm task
  const containerId = await warmContainer(exec, o.image);
  // The task's own address on its network: the fastest direct path there is to it.
  const directOrigin = await engine.taskEndpoint(containerId);
  const di = directSide(directOrigin, o.concurrency);
  const floor = o.floor ? await FloorProcess.start(directOrigin) : undefined;
  const fl: Side | undefined = floor ? { ...executorSide(floor.origin, o.intent, o.concurrency), name: "floor" } : undefined;
  const sides: Side[] = fl ? [ex, di, fl] : [ex, di];
  const probe = (s: Side): Probe | undefined => (s === ex ? exec : s === fl ? floor : undefined);
  let requests = 1;
  try {
    for (const s of sides) await sequential(s, 20);
    await new Promise((r) => setTimeout(r, 1000));
    const idleRssMB = exec.rssMB();
    const floorIdle = floor?.rssMB();
    o.log(`warm: task ${containerId.slice(0, 12)} at ${directOrigin}; idle RSS ${idleRssMB.toFixed(1)} MB`);

    // Warm-up (JIT, connections), not counted.
    for (const s of sides) await sequential(s, 300);
    requests += sides.length * 320;

    const seq = new Map<string, { lat: number[]; blockP50: number[]; cpu: number }>(sides.map((s) => [s.name, { lat: [], blockP50: [], cpu: 0 }]));
    for (let b = 0; b < o.blocks; b++) {
      for (const side of rotate(sides, b)) {
        const p = probe(side);
        const c0 = p?.cpuMs() ?? 0;
        const lat = await sequential(side, o.blockSize);
        const acc = seq.get(side.name)!;
        acc.cpu += (p?.cpuMs() ?? 0) - c0;
        acc.lat.push(...lat);
        acc.blockP50.push(percentile(lat, 50));
        requests += lat.length;
      }
    }
    const latency = (s: Side): Latency => {
      const a = seq.get(s.name)!;
      return {
        count: a.lat.length,
        p50: percentile(a.lat, 50),
        p90: percentile(a.lat, 90),
        p99: percentile(a.lat, 99),
        mean: mean(a.lat),
        blockP50: a.blockP50,
        cpuUsPerRequest: probe(s) ? (a.cpu * 1000) / a.lat.length : undefined,
      };
    };
    o.log(`warm: sequential ${o.blocks} blocks × ${o.blockSize} per side done`);

    // Throughput: a short unmeasured slice per side, then rotating measured slices.
    for (const s of sides) await saturate(s, { concurrency: o.concurrency, durationMs: 500 });
    const slices = new Map<string, { runs: Saturation[]; cpu: number; rssMax: number }>(sides.map((s) => [s.name, { runs: [], cpu: 0, rssMax: 0 }]));
    for (let r = 0; r < o.rounds; r++) {
      for (const side of rotate(sides, r)) {
        const p = probe(side);
        const acc = slices.get(side.name)!;
        const sample = () => (acc.rssMax = Math.max(acc.rssMax, p!.rssMB()));
        const sampler = p ? setInterval(sample, 25) : undefined;
        const c0 = p?.cpuMs() ?? 0;
        const s = await saturate(side, { concurrency: o.concurrency, durationMs: o.sliceMs });
        clearInterval(sampler);
        if (p) {
          acc.cpu += p.cpuMs() - c0;
          sample();
        }
        acc.runs.push(s);
        requests += s.completed;
        o.log(`warm: ${side.name} ${o.concurrency} clients: ${s.rps.toFixed(0)} req/s (${s.completed} verified, ${s.errors} errors)`);
      }
    }
    const throughput = (side: Side): Throughput => {
      const { runs, cpu } = slices.get(side.name)!;
      const lat = runs.flatMap((s) => s.latencies);
      const completed = runs.reduce((a, s) => a + s.completed, 0);
      const elapsed = runs.reduce((a, s) => a + s.elapsedMs, 0);
      return {
        rps: (completed / elapsed) * 1000,
        completed,
        errors: runs.reduce((a, s) => a + s.errors, 0),
        p50: percentile(lat, 50),
        p99: percentile(lat, 99),
        cpuUsPerRequest: probe(side) ? (cpu * 1000) / completed : undefined,
        slices: runs.map((s) => ({ rps: s.rps, completed: s.completed, errors: s.errors, firstError: s.firstError })),
      };
    };
    await new Promise((r) => setTimeout(r, 1000));
    return {
      containerId,
      directOrigin,
      idleRssMB,
      sequential: { executor: latency(ex), direct: latency(di), ...(fl ? { floor: latency(fl) } : {}) },
      throughput: { concurrency: o.concurrency, executor: throughput(ex), direct: throughput(di), ...(fl ? { floor: throughput(fl) } : {}) },
      loadRssMaxMB: slices.get("executor")!.rssMax,
      afterLoadRssMB: exec.rssMB(),
      floorRssMB: floor ? { idle: floorIdle!, loadMax: slices.get("floor")!.rssMax } : undefined,
      requests,
    };
  } finally {
    await Promise.all(sides.map((s) => s.close()));
    floor?.stop();
  }
}
