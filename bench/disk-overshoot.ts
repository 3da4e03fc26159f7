/**
 * npm run bench:disk: how far past task_disk_mb a task writing as fast as it can gets before the
 * executor's disk guard removes it, at several task_disk_check_interval values, under runc and
 * runsc; and what the checks cost (executor CPU per second with 10 idle tasks). Runs the executor
 * in this process on the real engine (as root, on a host where the engine cannot hold the bound
 * itself, e.g. overlay2 on ext4). The figures feed README, "The host's own resources".
 *
 * --only-many-files: the guard's CPU with three tasks of 60,000 empty files each (a layer costly to
 * walk), and how far a fast writer in a fourth task gets past the default bound with and without them.
 *
 *   tsx bench/disk-overshoot.ts [--only-cost | --only-many-files]
 */
import { hasRuntime } from "../test/support/docker-env.ts";
import { startExecutor } from "../test/support/harness.ts";

const IMAGE = "meca-test/echo:1";
const BOUND_MB = 200;
const INTERVALS = [0.25, 0.5, 1, 2];
const REPS = 3;

async function overshoot(runtime: "runc" | "runsc", interval: number): Promise<string> {
  const h = await startExecutor({
    task_disk_mb: BOUND_MB,
    task_disk_check_interval: interval,
    ...(runtime === "runsc" ? { microVM_runtime: "runsc" } : {}),
  });
  const rt = runtime === "runsc" ? "microVM" : undefined;
  const wrote: number[] = [];
  try {
    for (let i = 0; i < REPS; i++) {
      await h.execute({ id: IMAGE, resource: { cpu: 0.5, mem: 64 }, runtime: rt, input: "up" });
      const r = await h.execute({
        id: IMAGE,
        resource: { cpu: 0.5, mem: 64 },
        runtime: rt,
        input: "fill:6000",
      });
      if (r.status !== 507) throw new Error(`expected 507, got ${r.status} ${r.body.msg}`);
      wrote.push(Number(/wrote (\d+) MB/.exec(r.body.msg)![1]));
    }
  } finally {
    await h.close();
  }
  return `| ${runtime} | ${interval} s | ${wrote.join(", ")} |`;
}

async function checkCost(interval: number | undefined): Promise<string> {
  const h = await startExecutor(
    interval === undefined
      ? { task_disk_mb: 0, cpu: 2, mem: 2048 }
      : { task_disk_check_interval: interval, cpu: 2, mem: 2048 },
  );
  try {
    for (let i = 0; i < 10; i++)
      await h.execute({ id: IMAGE, resource: { cpu: 0.1, mem: 40 + i }, input: "up" });
    await new Promise((r) => setTimeout(r, 1_000));
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 10_000));
    const c = process.cpuUsage(c0);
    const msPerS = (c.user + c.system) / 1000 / ((performance.now() - t0) / 1000);
    return `| ${interval === undefined ? "no bound" : `${interval} s`} | ${msPerS.toFixed(1)} |`;
  } finally {
    await h.close();
  }
}

/** Executor CPU (ms per second) over `seconds`, nothing else running in this process. */
async function cpuOver(seconds: number): Promise<number> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000 / ((performance.now() - t0) / 1000);
}

/** Three tasks of 60,000 files (or none), then a writer of 4000 MB at full speed, 3 times: the guard's CPU and where the writer was caught. */
async function manyFiles(heavy: boolean): Promise<string> {
  const h = await startExecutor({ cpu: 2, mem: 2048 });
  try {
    if (heavy) {
      for (let i = 0; i < 3; i++) {
        const r = await h.execute({
          id: IMAGE,
          resource: { cpu: 0.1, mem: 64 + i },
          input: "files:60000",
        });
        if (r.body.msg !== "files:60000") throw new Error(`files: ${r.status} ${r.body.msg}`);
      }
    }
    await new Promise((r) => setTimeout(r, 2_000));
    const cpu = await cpuOver(10);
    const wrote: number[] = [];
    for (let i = 0; i < REPS; i++) {
      await h.execute({ id: IMAGE, resource: { cpu: 0.5, mem: 128 }, input: "up" });
      const r = await h.execute({
        id: IMAGE,
        resource: { cpu: 0.5, mem: 128 },
        input: "fill:4000",
      });
      if (r.status !== 507) throw new Error(`expected 507, got ${r.status} ${r.body.msg}`);
      wrote.push(Number(/wrote (\d+) MB/.exec(r.body.msg)![1]));
    }
    return `| ${heavy ? "3 tasks of 60,000 files" : "none"} | ${cpu.toFixed(1)} | ${wrote.join(", ")} |`;
  } finally {
    await h.close();
  }
}

if (process.argv.includes("--only-many-files")) {
  const out = [
    `Default bound (task_disk_mb 1024, interval 0.5 s), writer fill:4000 (full speed, fsync per MiB), ${REPS} runs; ${new Date().toISOString()}`,
    "",
    "| other tasks | executor CPU, idle (ms/s) | MB written when caught |",
    "| --- | --- | --- |",
  ];
  for (const heavy of [false, true]) {
    out.push(await manyFiles(heavy));
    console.error(out.at(-1));
  }
  console.log(out.join("\n"));
  process.exit(0);
}

const lines = [
  `Disk bound ${BOUND_MB} MB, fill:6000 (as fast as the task can, an fsync per MiB), ${REPS} runs each; ${new Date().toISOString()}`,
  "",
  "| runtime | interval | MB written when caught |",
  "| --- | --- | --- |",
];
// --only-cost: the CPU rows alone.
for (const runtime of process.argv.includes("--only-cost") ? [] : (["runc", "runsc"] as const)) {
  if (runtime === "runsc" && !hasRuntime("runsc")) continue;
  for (const interval of INTERVALS) {
    lines.push(await overshoot(runtime, interval));
    console.error(lines.at(-1));
  }
}
lines.push(
  "",
  "| task_disk_check_interval | executor CPU, 10 idle tasks (ms/s) |",
  "| --- | --- |",
);
for (const interval of [0.25, 0.5, 1, undefined]) {
  lines.push(await checkCost(interval));
  console.error(lines.at(-1));
}
console.log(lines.join("\n"));
process.exit(0);
