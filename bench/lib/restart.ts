/**
 * Restart: six warm keys through `kill -9` and a restart of the same instance. Measured per round:
 * exec until healthy with the six leftovers to adopt (the executor serves only once they are
 * adopted), the same with nothing left over (a plain start of the same config), the cold starts
 * the six keys' first requests cause after the restart (target 0), and those first requests' and
 * the keys' warm latency.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ExecutorProcess, type PhaseOptions } from "./executor-process.ts";
import { execute, nextSeq, pool } from "./load.ts";
import { median } from "./stats.ts";

export interface RestartResult {
  rounds: number;
  keys: number;
  /** exec → healthy with the keys' containers left by a kill -9, median ms (adoption included). */
  adoptMs: number;
  /** exec → healthy with nothing left over, median ms. */
  freshMs: number;
  /** Containers of the keys after the restart's first requests that the killed run did not have, all rounds. */
  coldStarts: number;
  /** Tasks adopted per round. */
  adopted: number[];
  /** The first request of each key after the restart, median ms over keys and rounds. */
  firstMs: number;
  /** Warm p50 of the same keys afterwards (ms). */
  warmP50: number;
  adoptSamples: number[];
}

const IMAGE = "meca-test/echo:1";
const KEYS = 6;
// Unusual mems: no other executor on the engine picks the same container names.
const intent = (k: number) => ({ id: IMAGE, resource: { cpu: 0.2, mem: 161 + k } });

type TasksBody = { tasks: { container_id: string; state: string }[] };

export async function restartPhase(o: PhaseOptions): Promise<RestartResult> {
  const rounds = o.quick ? 1 : 3;
  const config = join(o.work, "restart.yaml");
  writeFileSync(config, "instance: bench-restart\ntimeout: 30\ncpu: 2\nmem: 2048\n");
  const start = () =>
    ExecutorProcess.start({ target: o.target, root: o.root, config, file: o.file });
  const adoptMs: number[] = [];
  const freshMs: number[] = [];
  const adopted: number[] = [];
  const first: number[] = [];
  const warm: number[] = [];
  let coldStarts = 0;
  for (let r = 0; r < rounds; r++) {
    o.log(`restart: round ${r + 1} of ${rounds}`);
    const a = await start();
    freshMs.push(a.startMs);
    let p = pool(a.origin, 1);
    for (let k = 0; k < KEYS; k++) await execute(p, intent(k), nextSeq());
    await p.close();
    const before = new Set(
      ((await (await fetch(`${a.origin}/tasks`)).json()) as TasksBody).tasks.map(
        (t) => t.container_id,
      ),
    );
    await a.kill9();
    const b = await start();
    try {
      adoptMs.push(b.startMs);
      const rows = ((await (await fetch(`${b.origin}/tasks`)).json()) as TasksBody).tasks;
      adopted.push(rows.filter((t) => before.has(t.container_id) && t.state === "ready").length);
      p = pool(b.origin, 1);
      await (await p.request({ method: "GET", path: "/health" })).body.text();
      for (let k = 0; k < KEYS; k++) {
        const t = performance.now();
        await execute(p, intent(k), nextSeq());
        first.push(performance.now() - t);
      }
      const after = ((await (await fetch(`${b.origin}/tasks`)).json()) as TasksBody).tasks;
      coldStarts += after.filter((t) => !before.has(t.container_id)).length;
      for (let i = 0; i < 200; i++) {
        const t = performance.now();
        await execute(p, intent(i % KEYS), nextSeq());
        warm.push(performance.now() - t);
      }
      await p.close();
    } finally {
      const code = await b.stop();
      if (code !== 0) o.log(`restart: the executor exited with ${code}`);
    }
  }
  return {
    rounds,
    keys: KEYS,
    adoptMs: median(adoptMs),
    freshMs: median(freshMs),
    coldStarts,
    adopted,
    firstMs: median(first),
    warmP50: median(warm),
    adoptSamples: adoptMs,
  };
}

export function restartRows(r: RestartResult) {
  return [
    {
      metric: `Restart: cold starts of ${r.keys} warm keys' first requests after kill -9 and a restart, ${r.rounds} rounds (adopted per round: ${r.adopted.join(", ")})`,
      executor: String(r.coldStarts),
      other: "",
      ratio: "",
      target: "0",
      met: r.coldStarts === 0 && r.adopted.every((n) => n === r.keys),
    },
    {
      metric: `Restart: exec → healthy with ${r.keys} tasks adopted vs with nothing left over, median (ms)`,
      executor: r.adoptMs.toFixed(0),
      other: r.freshMs.toFixed(0),
      ratio: `${(r.adoptMs / r.freshMs).toFixed(2)}×`,
      target: "—",
    },
    {
      metric: "Restart: first request of an adopted key vs the keys' warm p50 afterwards (ms)",
      executor: r.firstMs.toFixed(2),
      other: r.warmP50.toFixed(2),
      ratio: `${(r.firstMs / r.warmP50).toFixed(2)}×`,
      target: "—",
    },
  ];
}
