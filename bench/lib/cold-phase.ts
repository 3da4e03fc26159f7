/**
 * Cold starts, one at a time (executor and raw Engine API interleaved), then
 * six at once (executor, and raw for reference). Every start uses a task key
 * the executor has not seen (a distinct memory limit), and each sample starts
 * from an engine with no task container: the executor's are removed with
 * pause + unpause, the raw ones with DELETE, both untimed.
 */
import { executorCold, rawCold, type Limits, type RawColdResult } from "./cold.ts";
import { sleep, type ExecutorProcess } from "./executor-process.ts";
import { pool } from "./load.ts";
import type { RawEngine } from "./raw-engine.ts";
import { median } from "./stats.ts";

export interface ColdOptions {
  image: string;
  reps: number;
  parallelReps: number;
  parallel: number;
  cpu: number;
  /** Pause after each clean-up so that Docker's own tear-down does not overlap the next sample. */
  settleMs: number;
  /** Ids of raw containers, for the final clean-up should anything fail. */
  track: Set<string>;
  /** Ids of raw networks, removed after their containers. */
  trackNetworks: Set<string>;
  log: (line: string) => void;
}

export interface ColdResult {
  cpu: number;
  executor: { samples: number[]; median: number };
  /** Raw Engine API, the same container with no network of its own (published port, as before isolation). */
  raw: { samples: number[]; median: number; steps: Record<keyof RawColdResult["steps"], number> };
  /** Raw Engine API doing what the executor does with isolation: a network, then the container on it. */
  rawIsolated: {
    samples: number[];
    median: number;
    steps: Record<keyof RawColdResult["steps"], number>;
  };
  parallel: {
    n: number;
    /** Wall time until all n answered, per repetition. */
    executor: { samples: number[]; median: number; perStart: number[][] };
    raw: { samples: number[]; median: number };
  };
}

export async function coldPhase(
  exec: ExecutorProcess,
  engine: RawEngine,
  o: ColdOptions,
): Promise<ColdResult> {
  const admin = pool(exec.origin, o.parallel + 2);
  let mem = 301;
  const fresh = (): Limits => ({ cpu: o.cpu, mem: mem++ });
  let serial = 0;
  const rawName = () => `meca-bench-raw-${process.pid}-${++serial}`;
  const post = async (path: string) => {
    const r = await admin.request({ method: "POST", path });
    const text = await r.body.text();
    if (r.statusCode !== 200) throw new Error(`POST ${path} answered ${r.statusCode}: ${text}`);
  };
  /** Pause removes every task (and waits for it); unpause takes work again. */
  const resetExecutor = async () => {
    await post("/pause");
    await post("/unpause");
    await sleep(o.settleMs);
  };
  const removeRaw = async (ids: string[]) => {
    await Promise.all(ids.map((id) => engine.remove(id)));
    for (const id of ids) o.track.delete(id);
    const nets = [...o.trackNetworks];
    await Promise.all(nets.map((id) => engine.removeNetwork(id)));
    for (const id of nets) o.trackNetworks.delete(id);
    await sleep(o.settleMs);
  };
  const startRaw = (l: Limits, isolated = false) =>
    rawCold(
      engine,
      rawName(),
      o.image,
      l,
      (id, net) => {
        o.track.add(id);
        if (net) o.trackNetworks.add(net);
      },
      { isolated },
    );

  try {
    await resetExecutor();
    const ex: number[] = [];
    const raw: RawColdResult[] = [];
    const rawIso: RawColdResult[] = [];
    const orders = [
      ["executor", "raw-isolated", "raw"],
      ["raw-isolated", "raw", "executor"],
      ["raw", "executor", "raw-isolated"],
    ];
    for (let i = 0; i < o.reps; i++) {
      for (const side of orders[i % orders.length]!) {
        if (side === "executor") {
          ex.push(await executorCold(admin, o.image, fresh()));
          await resetExecutor();
        } else {
          const r = await startRaw(fresh(), side === "raw-isolated");
          (side === "raw" ? raw : rawIso).push(r);
          await removeRaw([r.id]);
        }
      }
    }
    o.log(
      `cold: executor ${ex.map((v) => v.toFixed(0)).join(" ")} ms; raw with a network ${rawIso.map((r) => r.ms.toFixed(0)).join(" ")} ms; raw without ${raw.map((r) => r.ms.toFixed(0)).join(" ")} ms`,
    );

    const pex: number[] = [];
    const perStart: number[][] = [];
    const praw: number[] = [];
    for (let r = 0; r < o.parallelReps; r++) {
      let t0 = performance.now();
      perStart.push(
        await Promise.all(
          Array.from({ length: o.parallel }, () => executorCold(admin, o.image, fresh())),
        ),
      );
      pex.push(performance.now() - t0);
      await resetExecutor();
      t0 = performance.now();
      const started = await Promise.allSettled(
        Array.from({ length: o.parallel }, () => startRaw(fresh(), true)),
      );
      praw.push(performance.now() - t0);
      await removeRaw([...o.track]);
      const failed = started.find((s) => s.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
    }
    o.log(
      `cold: ${o.parallel} at once: executor ${pex.map((v) => v.toFixed(0)).join(" ")} ms; raw ${praw.map((v) => v.toFixed(0)).join(" ")} ms`,
    );

    const side = (rs: RawColdResult[]) => {
      const step = (k: keyof RawColdResult["steps"]) => median(rs.map((r) => r.steps[k]));
      return {
        samples: rs.map((r) => r.ms),
        median: median(rs.map((r) => r.ms)),
        steps: {
          network: step("network"),
          create: step("create"),
          start: step("start"),
          mark: step("mark"),
          inspect: step("inspect"),
          answer: step("answer"),
        },
      };
    };
    return {
      cpu: o.cpu,
      executor: { samples: ex, median: median(ex) },
      raw: side(raw),
      rawIsolated: side(rawIso),
      parallel: {
        n: o.parallel,
        executor: { samples: pex, median: median(pex), perStart },
        raw: { samples: praw, median: median(praw) },
      },
    };
  } finally {
    await admin.close();
  }
}
