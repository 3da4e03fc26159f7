/**
 * The warm path: the executor against a direct call to the same task
 * container's published port (and, for reference, a minimal Node forwarder
 * to that port). Sequential latency in interleaved blocks (the order rotates,
 * so drift hits every side), then throughput at N concurrent clients in
 * rotating slices, sampling RSS and CPU time of the processes in the path.
 */
import type { ExecutorProcess } from "./executor-process.ts";
import { alternating, type PairedLatency } from "./first-minute.ts";
import { FloorProcess } from "./floor.ts";
import {
  directSide,
  executorSide,
  freshConnectionSide,
  saturate,
  sequential,
  type Saturation,
  type Side,
} from "./load.ts";
import { memoryBreakdown, rssSplit, type MemoryBreakdown } from "./memory.ts";
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
  /** The executor's instance label: its one task container is found by it, without asking the executor. */
  instance: string;
  /** Warm requests per side right after the first cold start (the "first minute"). */
  firstMinute: number;
  /** Sequential requests per side with a new connection each. */
  freshConnections: number;
  /** Also measure the reference forwarder, run by this node. */
  floor: boolean;
  floorNode: string;
  floorFlags: readonly string[];
  /** How long the executor idles after the load before its RSS is read again. */
  settleAfterLoadMs: number;
  /** Where the memory probe writes (see memory.ts). */
  memDir: string;
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
  /** p50 and p99 of the warm requests right after the first cold start, executor and direct alternating. */
  firstMinute: PairedLatency;
  /** Sequential, a new TCP connection per request on both sides. */
  freshConnection: PairedLatency;
  idleMemory?: MemoryBreakdown;
  afterLoadMemory?: MemoryBreakdown;
  sequential: Partial<Record<Name, Latency>> & { executor: Latency; direct: Latency };
  throughput: { concurrency: number } & Partial<Record<Name, Throughput>> & {
      executor: Throughput;
      direct: Throughput;
    };
  loadRssMaxMB: number;
  afterLoadRssMB: number;
  /** The reference forwarder's RSS, idle and under load. */
  floorRssMB?: { idle: number; loadMax: number };
  floorIdleMemory?: MemoryBreakdown;
  requests: number;
}

interface Probe {
  rssMB(): number;
  cpuMs(): number;
}

/** The one task container of the executor's instance (the warm task, just started). */
async function theTaskContainer(engine: RawEngine, instance: string): Promise<string> {
  const ids = await engine.listByLabel("meca.executor.instance", instance);
  if (ids.length !== 1)
    throw new Error(`Expected one task container of instance "${instance}", found ${ids.length}`);
  return ids[0]!;
}

/**
 * The direct side: the fastest way to the task that the executor also uses: the task's own
 * address on its network (with isolation), else its port published on 127.0.0.1.
 */
function taskOrigin(engine: RawEngine, containerId: string): Promise<string> {
  return engine.taskEndpoint(containerId);
}

/** Each round starts one further along, so no side is always first. */
const rotate = <T>(xs: T[], r: number): T[] => xs.map((_, i) => xs[(i + r) % xs.length]!);

export async function warmPhase(
  exec: ExecutorProcess,
  engine: RawEngine,
  o: WarmOptions,
): Promise<WarmResult> {
  const ex = executorSide(exec.origin, o.intent, o.concurrency);
  await ex.send(0); // the first cold start after start-up: starts the warm task
  const containerId = await theTaskContainer(engine, o.instance);
  const directOrigin = await taskOrigin(engine, containerId);
  const di = directSide(directOrigin, o.concurrency);
  // The first minute: before anything else reaches the executor.
  const firstMinute = await alternating(ex, di, o.firstMinute);
  o.log(
    `warm: first ${o.firstMinute} after the cold start: executor p50 ${firstMinute.executor.p50.toFixed(3)} ms, direct ${firstMinute.direct.p50.toFixed(3)} ms`,
  );
  const floor = o.floor
    ? await FloorProcess.start(directOrigin, o.floorNode, o.memDir, o.floorFlags)
    : undefined;
  const fl: Side | undefined = floor
    ? { ...executorSide(floor.origin, o.intent, o.concurrency), name: "floor" }
    : undefined;
  const sides: Side[] = fl ? [ex, di, fl] : [ex, di];
  const probe = (s: Side): Probe | undefined => (s === ex ? exec : s === fl ? floor : undefined);
  let requests = 1;
  try {
    for (const s of sides) await sequential(s, 20);
    // Idle as after the load: once V8's memory reducer has run.
    await new Promise((r) => setTimeout(r, o.settleAfterLoadMs));
    const idleMemory = await memoryBreakdown(exec.pid, o.memDir);
    const idleRssMB = idleMemory?.rss ?? rssSplit(exec.pid).rss;
    const floorIdleMemory = floor ? await memoryBreakdown(floor.pid, o.memDir) : undefined;
    const floorIdle = floorIdleMemory?.rss ?? floor?.rssMB();
    o.log(
      `warm: task ${containerId.slice(0, 12)} at ${directOrigin}; idle RSS ${idleRssMB.toFixed(1)} MB`,
    );

    // Warm-up (JIT, connections), not counted.
    for (const s of sides) await sequential(s, 300);
    requests += sides.length * 320;

    const seq = new Map<string, { lat: number[]; blockP50: number[]; cpu: number }>(
      sides.map((s) => [s.name, { lat: [], blockP50: [], cpu: 0 }]),
    );
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

    const fresh = await alternating(
      freshConnectionSide("executor", exec.origin, o.intent),
      freshConnectionSide("direct", directOrigin, o.intent),
      o.freshConnections,
    );
    requests += 2 * o.freshConnections;
    o.log(
      `warm: new connection per request: executor p50 ${fresh.executor.p50.toFixed(3)} ms, direct ${fresh.direct.p50.toFixed(3)} ms`,
    );

    // Throughput: a short unmeasured slice per side, then rotating measured slices.
    for (const s of sides) await saturate(s, { concurrency: o.concurrency, durationMs: 500 });
    const slices = new Map<string, { runs: Saturation[]; cpu: number; rssMax: number }>(
      sides.map((s) => [s.name, { runs: [], cpu: 0, rssMax: 0 }]),
    );
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
        o.log(
          `warm: ${side.name} ${o.concurrency} clients: ${s.rps.toFixed(0)} req/s (${s.completed} verified, ${s.errors} errors)`,
        );
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
        slices: runs.map((s) => ({
          rps: s.rps,
          completed: s.completed,
          errors: s.errors,
          firstError: s.firstError,
        })),
      };
    };
    // V8's memory reducer gives the load's garbage back about 8 s after allocation stops.
    await new Promise((r) => setTimeout(r, o.settleAfterLoadMs));
    const afterLoadMemory = await memoryBreakdown(exec.pid, o.memDir);
    return {
      containerId,
      directOrigin,
      idleRssMB,
      firstMinute,
      freshConnection: fresh,
      idleMemory,
      afterLoadMemory,
      sequential: {
        executor: latency(ex),
        direct: latency(di),
        ...(fl ? { floor: latency(fl) } : {}),
      },
      throughput: {
        concurrency: o.concurrency,
        executor: throughput(ex),
        direct: throughput(di),
        ...(fl ? { floor: throughput(fl) } : {}),
      },
      loadRssMaxMB: slices.get("executor")!.rssMax,
      afterLoadRssMB: afterLoadMemory?.rss ?? rssSplit(exec.pid).rss,
      floorRssMB: floor ? { idle: floorIdle!, loadMax: slices.get("floor")!.rssMax } : undefined,
      floorIdleMemory,
      requests: requests + 2 * o.firstMinute,
    };
  } finally {
    await Promise.all(sides.map((s) => s.close()));
    floor?.stop();
  }
}
