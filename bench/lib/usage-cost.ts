/**
 * What usage costs (docs/usage.md): three executors side by side, `usage: true` (the default),
 * `usage: false`, and a second `usage: true` (an A/A pair: what noise alone gives in this run),
 * each with a warm echo task of its own key, measured in rounds whose order rotates so that drift
 * hits all three: sequential p50, throughput at 32 clients, executor CPU per request; then each
 * executor's CPU while it idles with its warm task.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ExecutorProcess, sleep, type PhaseOptions } from "./executor-process.ts";
import { executorSide, saturate, sequential, type Side } from "./load.ts";
import { median, percentile } from "./stats.ts";

export interface UsageSide {
  usage: boolean;
  p50Ms: number;
  /** Requests per second at 32 clients: the median of the rounds' slices. */
  rps: number;
  /** Executor CPU per request, µs: one request after another, and under 32 clients. */
  cpuUsSequential: number;
  cpuUsLoad: number;
  /** Executor CPU while idle with its warm task, ms per second. */
  idleCpuMsPerS: number;
  /** The Meca-Usage header of its last answer (none with usage off). */
  header: string | null;
}

export interface UsageCostResult {
  on: UsageSide;
  off: UsageSide;
  /** The second executor with usage on: on against it is the run's noise. */
  onAgain: UsageSide;
  rounds: number;
  /** How long each idled, s. */
  idleSeconds: number;
  errors: number;
}

const IMAGE = "meca-test/echo:1";

export async function usagePhase(o: PhaseOptions): Promise<UsageCostResult> {
  const rounds = o.quick ? 3 : 6;
  const seq = o.quick ? 200 : 400;
  const sliceMs = o.quick ? 800 : 1500;
  // /proc counts CPU in 10 ms ticks: 30 s idle resolves a third of a ms per second.
  const idleMs = o.quick ? 5000 : 30_000;
  const names = ["on", "off", "on-again"] as const;
  const sides: {
    usage: boolean;
    exec: ExecutorProcess;
    side: Side;
    origin: string;
    intent: Record<string, unknown>;
    lat: number[];
    rps: number[];
    cpuSeq: number;
    cpuLoad: number;
    nLoad: number;
  }[] = [];
  let errors = 0;
  try {
    for (const [i, name] of names.entries()) {
      const usage = name !== "off";
      const config = join(o.work, `usage-${name}.yaml`);
      writeFileSync(
        config,
        `instance: bench-usage-${name}\ntimeout: 60\ncpu: 2\nmem: 2048\nusage: ${usage}\n`,
      );
      o.log(`usage: starting an executor with usage ${usage} (${name})`);
      const exec = await ExecutorProcess.start({
        target: o.target,
        root: o.root,
        config,
        file: o.file,
      });
      // Unusual mem, distinct per side: no other executor on the engine picks the same containers.
      const intent = { id: IMAGE, resource: { cpu: 1, mem: 141 + i }, runtime: "" };
      const side = executorSide(exec.origin, intent);
      sides.push({
        usage,
        exec,
        side,
        origin: exec.origin,
        intent,
        lat: [],
        rps: [],
        cpuSeq: 0,
        cpuLoad: 0,
        nLoad: 0,
      });
      await side.send(0);
    }
    for (const s of sides) {
      await sequential(s.side, 200);
      await saturate(s.side, { concurrency: 32, durationMs: 300 });
    }
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < sides.length; k++) {
        const s = sides[(k + r) % sides.length]!;
        let c0 = s.exec.cpuMs();
        s.lat.push(...(await sequential(s.side, seq)));
        s.cpuSeq += s.exec.cpuMs() - c0;
        c0 = s.exec.cpuMs();
        const t = await saturate(s.side, { concurrency: 32, durationMs: sliceMs });
        s.cpuLoad += s.exec.cpuMs() - c0;
        s.nLoad += t.completed;
        s.rps.push(t.rps);
        errors += t.errors;
        if (t.errors > 0) o.log(`usage: ${t.errors} answers failed verification: ${t.firstError}`);
      }
      o.log(`usage: round ${r + 1}/${rounds}`);
    }
    o.log(`usage: ${idleMs / 1000} s idle, each with its warm task`);
    const idle0 = sides.map((s) => s.exec.cpuMs());
    const t0 = performance.now();
    await sleep(idleMs);
    const seconds = (performance.now() - t0) / 1000;
    const idle = sides.map((s, i) => (s.exec.cpuMs() - idle0[i]!) / seconds);
    const result: UsageSide[] = [];
    for (const [i, s] of sides.entries()) {
      const res = await fetch(`${s.origin}/`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...s.intent, input: "last" }),
      });
      await res.text();
      result.push({
        usage: s.usage,
        p50Ms: percentile(s.lat, 50),
        rps: median(s.rps),
        cpuUsSequential: (s.cpuSeq * 1000) / s.lat.length,
        cpuUsLoad: (s.cpuLoad * 1000) / Math.max(1, s.nLoad),
        idleCpuMsPerS: idle[i]!,
        header: res.headers.get("meca-usage"),
      });
    }
    return {
      on: result[0]!,
      off: result[1]!,
      onAgain: result[2]!,
      rounds,
      idleSeconds: seconds,
      errors,
    };
  } finally {
    for (const s of sides) {
      await s.side.close();
      const code = await s.exec.stop();
      if (code !== 0) o.log(`usage: an executor exited with ${code}`);
    }
  }
}

/**
 * The rows: usage on in the executor column, off in the other. "Within noise": on differs from off
 * by no more than the two usage-on executors differ from each other in the same run (or 2 %).
 */
export function usageRows(r: UsageCostResult) {
  const within = (on: number, again: number, off: number) =>
    Math.abs(on - off) <= Math.max(Math.abs(on - again), 0.02 * off);
  return [
    {
      metric: `Warm path p50, usage on vs off (ms); the A/A pair: ${r.on.p50Ms.toFixed(3)} and ${r.onAgain.p50Ms.toFixed(3)}`,
      executor: r.on.p50Ms.toFixed(3),
      other: r.off.p50Ms.toFixed(3),
      ratio: `${(r.on.p50Ms / r.off.p50Ms).toFixed(2)}×`,
      target: "within noise (the A/A pair's spread)",
      met: within(r.on.p50Ms, r.onAgain.p50Ms, r.off.p50Ms),
    },
    {
      metric: `Throughput at 32 clients, usage on vs off (req/s); the A/A pair: ${r.on.rps.toFixed(0)} and ${r.onAgain.rps.toFixed(0)}`,
      executor: r.on.rps.toFixed(0),
      other: r.off.rps.toFixed(0),
      ratio: `${(r.on.rps / r.off.rps).toFixed(2)}×`,
      target: "within noise (the A/A pair's spread)",
      met: within(r.on.rps, r.onAgain.rps, r.off.rps),
    },
    {
      metric: `Executor CPU per request, usage on vs off (µs; sequential, and ${r.on.cpuUsLoad.toFixed(0)} vs ${r.off.cpuUsLoad.toFixed(0)} under 32 clients)`,
      executor: r.on.cpuUsSequential.toFixed(0),
      other: r.off.cpuUsSequential.toFixed(0),
      ratio: `${(r.on.cpuUsSequential / r.off.cpuUsSequential).toFixed(2)}×`,
      target: "",
    },
    {
      metric: "Executor CPU idle with a warm task, usage on vs off (ms per s)",
      executor: r.on.idleCpuMsPerS.toFixed(2),
      other: r.off.idleCpuMsPerS.toFixed(2),
      ratio: `${(r.on.idleCpuMsPerS / Math.max(0.01, r.off.idleCpuMsPerS)).toFixed(2)}×`,
      target: "unchanged",
      // Unchanged within two of /proc's 10 ms ticks over the idle time (or 10 %).
      met:
        r.on.idleCpuMsPerS <=
        r.off.idleCpuMsPerS + Math.max(20 / r.idleSeconds, 0.1 * r.off.idleCpuMsPerS),
    },
  ];
}
