/**
 * Prewarm: an executor started with one `prewarm` entry. Measured per start: exec until the entry's
 * replica is ready (GET /tasks), the first request of the prewarmed key, a cold start of a new key
 * and the warm p50 of the prewarmed key afterwards, all through the same executor.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ExecutorProcess, type PhaseOptions } from "./executor-process.ts";
import { execute, nextSeq, pool } from "./load.ts";
import { median } from "./stats.ts";

export interface PrewarmResult {
  starts: number;
  /** exec → the prewarmed replica ready, median ms. */
  readyMs: number;
  /** The first request of the prewarmed key, median ms. */
  firstMs: number;
  /** A cold start of a key not prewarmed, median ms. */
  coldMs: number;
  /** The prewarmed key's warm p50 (ms) over 200 requests after the first. */
  warmP50: number;
  firstSamples: number[];
}

const IMAGE = "meca-test/echo:1";
// Unusual mem: no other executor on the engine picks the same container names.
const WARM = { cpu: 0.5, mem: 141 };

export async function prewarmPhase(o: PhaseOptions): Promise<PrewarmResult> {
  const starts = o.quick ? 1 : 3;
  const config = join(o.work, "prewarm.yaml");
  writeFileSync(
    config,
    `instance: bench-prewarm\ntimeout: 30\ncpu: 2\nmem: 2048\nprewarm:\n  - id: ${IMAGE}\n    resource: { cpu: ${WARM.cpu}, mem: ${WARM.mem} }\n`,
  );
  const ready: number[] = [];
  const first: number[] = [];
  const cold: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < starts; i++) {
    o.log(`prewarm: start ${i + 1} of ${starts}`);
    const t0 = performance.now();
    const exec = await ExecutorProcess.start({
      target: o.target,
      root: o.root,
      config,
      file: o.file,
    });
    const p = pool(exec.origin, 1);
    try {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const t = (await (await fetch(`${exec.origin}/tasks`)).json()) as {
          tasks: { prewarmed: boolean; state: string }[];
        };
        if (t.tasks.some((x) => x.prewarmed && x.state === "ready")) break;
        if (Date.now() > deadline)
          throw new Error("The prewarmed replica was not ready within 60 s");
        await new Promise((r) => setTimeout(r, 5));
      }
      ready.push(performance.now() - t0);
      const intent = { id: IMAGE, resource: WARM };
      // The client's connection opened first, so the first request is measured as the warm ones are.
      await (await p.request({ method: "GET", path: "/health" })).body.text();
      let t1 = performance.now();
      await execute(p, intent, nextSeq());
      first.push(performance.now() - t1);
      t1 = performance.now();
      await execute(p, { id: IMAGE, resource: { cpu: 0.1, mem: 150 + i } }, nextSeq());
      cold.push(performance.now() - t1);
      for (let k = 0; k < 200; k++) {
        t1 = performance.now();
        await execute(p, intent, nextSeq());
        warm.push(performance.now() - t1);
      }
    } finally {
      await p.close();
      const code = await exec.stop();
      if (code !== 0) o.log(`prewarm: the executor exited with ${code}`);
    }
  }
  return {
    starts,
    readyMs: median(ready),
    firstMs: median(first),
    coldMs: median(cold),
    warmP50: median(warm),
    firstSamples: first,
  };
}

export function prewarmRows(r: PrewarmResult) {
  const f = (v: number) => v.toFixed(2);
  const ratio = r.firstMs / r.warmP50;
  return [
    {
      metric: `Prewarm: first request of a prewarmed key vs the warm p50 of the same key, median of ${r.starts} starts (ms)`,
      executor: f(r.firstMs),
      other: f(r.warmP50),
      ratio: `${ratio.toFixed(2)}×`,
      target: "≤ 1.5×",
      met: ratio <= 1.5,
    },
    {
      metric: "Prewarm: first request of a prewarmed key vs a cold start of a new key (ms)",
      executor: f(r.firstMs),
      other: r.coldMs.toFixed(0),
      ratio: `${(r.firstMs / r.coldMs).toFixed(3)}×`,
      target: "—",
    },
    {
      metric: "Prewarm: exec → the prewarmed replica ready (ms)",
      executor: r.readyMs.toFixed(0),
      other: "",
      ratio: "",
      target: "—",
    },
  ];
}
