/**
 * The owner's CPU first: a CPU-bound program of the host's owner (one busy process per core, a
 * fixed amount of work each) timed alone, then while tasks spin on every core they are allowed
 * (the `meca-test/cpu:1` fixture, 50 ms of CPU per request, 8 clients, task_concurrency 1 so that
 * there is a replica per core), once through an executor with `task_cpu_priority: idle` and once
 * with `normal`, in one run. The owner's speed is its time alone over its time beside the tasks.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { ExecutorProcess, type PhaseOptions } from "./executor-process.ts";
import { execute, nextSeq, pool } from "./load.ts";
import { median } from "./stats.ts";
import { CPU_IMAGE } from "./replicas.ts";

export interface OwnerResult {
  cores: number;
  /** The owner program's wall time alone, and beside the tasks per mode, ms (medians of `reps`). */
  aloneMs: number;
  idleMs: number;
  normalMs: number;
  /** aloneMs / modeMs: the share of its speed the owner keeps. */
  idleSpeed: number;
  normalSpeed: number;
  /** Requests the tasks completed while the owner ran, per mode: they still got the idle CPU. */
  idleRequests: number;
  normalRequests: number;
  reps: number;
  errors: number;
}

const CLIENTS = 8;
/** Iterations of the owner's loop per process: about a second of one core on this machine. */
const WORK = 60_000_000;

/** One busy process per core, each doing WORK iterations; resolves with the wall time until all end. */
async function ownerProgram(cores: number): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    Array.from(
      { length: cores },
      () =>
        new Promise<void>((resolve, reject) => {
          const child = spawn(process.execPath, [
            "-e",
            `let x = 0; for (let i = 0; i < ${WORK}; i++) x += Math.sqrt(i); if (x < 0) console.log(x);`,
          ]);
          child.on("error", reject);
          child.on("exit", (code) =>
            code === 0 ? resolve() : reject(new Error(`owner exited ${code}`)),
          );
        }),
    ),
  );
  return performance.now() - t0;
}

export async function ownerPhase(o: PhaseOptions): Promise<OwnerResult> {
  const cores = cpus().length;
  const reps = o.quick ? 1 : 3;
  const intent = { cpu: 1, mem: 133 };
  const alone: number[] = [];
  const beside: Record<"idle" | "normal", number[]> = { idle: [], normal: [] };
  const served: Record<"idle" | "normal", number> = { idle: 0, normal: 0 };
  const during: Record<"idle" | "normal", number> = { idle: 0, normal: 0 };
  let errors = 0;
  const execs: Record<string, ExecutorProcess> = {};
  try {
    for (const mode of ["idle", "normal"] as const) {
      const config = join(o.work, `owner-${mode}.yaml`);
      writeFileSync(
        config,
        `instance: bench-owner-${mode}\ntimeout: 30\ncpu: ${cores}\nmem: 2048\ntask_concurrency: 1\ntask_cpu_priority: ${mode}\n`,
      );
      o.log(`owner: starting an executor with task_cpu_priority ${mode}`);
      execs[mode] = await ExecutorProcess.start({
        target: o.target,
        root: o.root,
        config,
        file: o.file,
      });
    }
    for (let r = 0; r < reps; r++) {
      o.log(`owner: the owner's program alone (${cores} processes)`);
      alone.push(await ownerProgram(cores));
      const order: ("idle" | "normal")[] = r % 2 === 0 ? ["idle", "normal"] : ["normal", "idle"];
      for (const mode of order) {
        const p = pool(execs[mode]!.origin, CLIENTS);
        let stop = false;
        const send = async () => {
          while (!stop) {
            try {
              await execute(p, { id: CPU_IMAGE, resource: intent }, nextSeq());
              served[mode]++;
            } catch {
              errors++;
            }
          }
        };
        const load = Array.from({ length: CLIENTS }, send);
        // The replicas start and spin before the owner's program begins.
        await new Promise((res) => setTimeout(res, 3_000));
        const before = served[mode];
        o.log(`owner: the owner's program beside tasks spinning, task_cpu_priority ${mode}`);
        beside[mode].push(await ownerProgram(cores));
        during[mode] += served[mode] - before;
        stop = true;
        await Promise.all(load);
        await p.close();
      }
    }
  } finally {
    for (const e of Object.values(execs)) await e.stop();
  }
  const aloneMs = median(alone);
  const idleMs = median(beside.idle);
  const normalMs = median(beside.normal);
  return {
    cores,
    aloneMs,
    idleMs,
    normalMs,
    idleSpeed: aloneMs / idleMs,
    normalSpeed: aloneMs / normalMs,
    idleRequests: during.idle,
    normalRequests: during.normal,
    reps,
    errors,
  };
}
