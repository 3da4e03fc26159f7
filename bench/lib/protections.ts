/**
 * The host's protections (task_disk_mb with the executor's disk guard, min_free_disk_mb, the host
 * firewall rule) cost nothing on the warm path and nothing beyond noise on a cold start: two
 * executors side by side, one with the defaults ("on") and one with all three off, the same task
 * and intents, measured in interleaved blocks whose order rotates so drift hits both.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ExecutorProcess, type PhaseOptions } from "./executor-process.ts";
import { execute, nextSeq, pool } from "./load.ts";
import { median } from "./stats.ts";

export interface ProtectionsSide {
  config: string;
  /** Warm path, one request after another: median ms. */
  warmP50: number;
  /** A new key each time (a cold start and its first answer): median ms. */
  coldP50: number;
  warmSamples: number;
  coldSamples: number[];
  /** What GET /tasks said of the host firewall and the disk bound. */
  hostFirewall: string;
  diskHeldBy: string;
}

export interface ProtectionsResult {
  on: ProtectionsSide;
  off: ProtectionsSide;
  warmRatio: number;
  coldRatio: number;
}

const IMAGE = "meca-test/echo:1";
const SIDES = {
  on: "", // the defaults: task_disk_mb 1024, task_disk_check_interval 0.5, min_free_disk_mb 2048, task_host_firewall auto
  off: "task_disk_mb: 0\nmin_free_disk_mb: 0\ntask_host_firewall: off\n",
} as const;

export async function protectionsPhase(o: PhaseOptions): Promise<ProtectionsResult> {
  const blocks = o.quick ? 4 : 10;
  const blockSize = o.quick ? 50 : 200;
  const coldReps = o.quick ? 2 : 5;
  const sides: {
    name: keyof typeof SIDES;
    exec: ExecutorProcess;
    warm: number[];
    cold: number[];
  }[] = [];
  try {
    for (const name of ["on", "off"] as const) {
      const config = join(o.work, `protections-${name}.yaml`);
      writeFileSync(
        config,
        `instance: bench-protections-${name}\ntimeout: 30\ncpu: 2\nmem: 2048\n${SIDES[name]}`,
      );
      o.log(`protections: starting an executor with the protections ${name}`);
      sides.push({
        name,
        exec: await ExecutorProcess.start({ target: o.target, root: o.root, config, file: o.file }),
        warm: [],
        cold: [],
      });
    }
    // Unusual mem: no other executor on the engine picks the same container names.
    const warmIntent = (name: string) => ({
      id: IMAGE,
      resource: { cpu: 0.5, mem: name === "on" ? 137 : 139 },
    });
    const pools = sides.map((s) => pool(s.exec.origin, 1));
    for (const [i, s] of sides.entries()) await execute(pools[i]!, warmIntent(s.name), nextSeq()); // each side's warm task
    for (let b = 0; b < blocks; b++) {
      for (const i of b % 2 === 0 ? [0, 1] : [1, 0]) {
        const s = sides[i]!;
        for (let k = 0; k < blockSize; k++) {
          const t0 = performance.now();
          await execute(pools[i]!, warmIntent(s.name), nextSeq());
          s.warm.push(performance.now() - t0);
        }
      }
    }
    o.log(`protections: ${coldReps} cold starts per side, interleaved`);
    for (let r = 0; r < coldReps; r++) {
      for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) {
        const s = sides[i]!;
        const t0 = performance.now();
        await execute(
          pools[i]!,
          { id: IMAGE, resource: { cpu: 0.1, mem: 150 + r * 2 + i } },
          nextSeq(),
        );
        s.cold.push(performance.now() - t0);
      }
    }
    const summary = async (s: (typeof sides)[number]): Promise<ProtectionsSide> => {
      const t = (await (await fetch(`${s.exec.origin}/tasks`)).json()) as {
        host_firewall?: { state: string };
        disk?: { held_by: string };
      };
      return {
        config: SIDES[s.name].trim().replaceAll("\n", ", ") || "defaults",
        warmP50: median(s.warm),
        coldP50: median(s.cold),
        warmSamples: s.warm.length,
        coldSamples: s.cold,
        hostFirewall: t.host_firewall?.state ?? "?",
        diskHeldBy: t.disk?.held_by ?? "?",
      };
    };
    await Promise.all(pools.map((p) => p.close()));
    const on = await summary(sides[0]!);
    const off = await summary(sides[1]!);
    return { on, off, warmRatio: on.warmP50 / off.warmP50, coldRatio: on.coldP50 / off.coldP50 };
  } finally {
    for (const s of sides) {
      const code = await s.exec.stop();
      if (code !== 0)
        o.log(`protections: the executor with the protections ${s.name} exited with ${code}`);
    }
  }
}

/** The table rows: protections on (the defaults) in the executor column, off in the other. */
export function protectionsRows(r: ProtectionsResult) {
  const f = (v: number) => v.toFixed(2);
  const g = (v: number) => v.toFixed(0);
  return [
    {
      metric: `Warm path p50, protections on (firewall ${r.on.hostFirewall}, disk bound held by ${r.on.diskHeldBy}) vs off (ms)`,
      executor: f(r.on.warmP50),
      other: f(r.off.warmP50),
      ratio: `${r.warmRatio.toFixed(2)}×`,
      target: "≈ 1.00× (unchanged)",
      met: r.warmRatio <= 1.1,
    },
    {
      metric: "Cold start p50, protections on vs off (ms)",
      executor: g(r.on.coldP50),
      other: g(r.off.coldP50),
      ratio: `${r.coldRatio.toFixed(2)}×`,
      target: "≈ 1.00× (within noise)",
      met: r.coldRatio <= 1.15,
    },
  ];
}
