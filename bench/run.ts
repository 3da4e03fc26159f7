/**
 * npm run bench: the executor side by side with the physical limit, in one
 * run, on this machine (issue 6). Warm path against a direct call to the same
 * task container; cold start against raw Engine API calls; six cold starts at
 * once against one; the executor's RSS; the binary's time from exec to
 * healthy. Prints a markdown table and writes bench/results/latest.{json,md}.
 *
 *   tsx bench/run.ts [--target source|bundle|bin] [--bin FILE] [--quick] [--skip-floor] [--out DIR] [--root DIR]
 *
 * --root runs the executor of another checkout (e.g. a scratch copy with a change to try).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, release, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { bundleExecutor, executableFlags } from "./lib/bundle.ts";
import { coldPhase, type ColdResult } from "./lib/cold-phase.ts";
import { ExecutorProcess, type PhaseOptions, type Target } from "./lib/executor-process.ts";
import { probeEnv } from "./lib/memory.ts";
import { emptyHttpServerMemory, emptyNodeMemory, pinnedNode } from "./lib/node-build.ts";
import { BENCH_LABEL, RawEngine } from "./lib/raw-engine.ts";
import { buildRows, coldRows, type Results } from "./lib/results.ts";
import { markdown, type Machine, type Row } from "./lib/report.ts";
import { ownerPhase, type OwnerResult } from "./lib/owner.ts";
import { usagePhase, usageRows, type UsageCostResult } from "./lib/usage-cost.ts";
import { median } from "./lib/stats.ts";
import { prewarmPhase, prewarmRows, type PrewarmResult } from "./lib/prewarm.ts";
import { restartPhase, restartRows, type RestartResult } from "./lib/restart.ts";
import { protectionsPhase, protectionsRows, type ProtectionsResult } from "./lib/protections.ts";
import { CPU_IMAGE, replicasPhase, replicasRows, type ReplicasResult } from "./lib/replicas.ts";
import { warmPhase } from "./lib/warm.ts";

const HERE = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const IMAGE = "meca-test/echo:1";
const INSTANCE = "bench";
// Unusual limits: container names carry a hash of the key but not the instance, so a test's
// executor on the same engine could otherwise pick the very same name.
const WARM_INTENT = { id: IMAGE, resource: { cpu: 1, mem: 127 }, runtime: "" };
const DEADLINE_MS = 8 * 60_000;

const { values: args } = parseArgs({
  options: {
    target: { type: "string", default: "source" },
    root: { type: "string", default: HERE },
    bin: { type: "string" },
    out: { type: "string", default: join(HERE, "bench/results") },
    quick: { type: "boolean", default: false },
    "skip-floor": { type: "boolean", default: false },
    /** Runs only the replicas comparison (task_concurrency 1 against the default). */
    "only-replicas": { type: "boolean", default: false },
    /** Runs only the protections comparison (the defaults against task_disk_mb 0, min_free_disk_mb 0, task_host_firewall off). */
    "only-protections": { type: "boolean", default: false },
    /** Runs only the prewarm rows. */
    "only-prewarm": { type: "boolean", default: false },
    /** Runs only the restart rows (adoption after kill -9). */
    "only-restart": { type: "boolean", default: false },
    /** Runs only the owner's CPU rows (task_cpu_priority idle against normal). */
    "only-owner": { type: "boolean", default: false },
    /** Runs only the usage rows (usage on against off, with an A/A pair). */
    "only-usage": { type: "boolean", default: false },
    /** Runs only the cold-start rows (the executor against the raw start, with and without a network). */
    "only-cold": { type: "boolean", default: false },
  },
});
/** The checkout whose executor runs. */
const ROOT = resolve(args.root!);
const BIN = args.bin ?? join(ROOT, "dist/meca-executor");
const target = args.target as Target;
if (!["source", "bundle", "bin"].includes(target))
  throw new Error(`Invalid --target "${target}": source, bundle or bin`);
const quick = args.quick!;
const plan = {
  blocks: quick ? 4 : 20,
  blockSize: quick ? 50 : 200,
  concurrency: 32,
  sliceMs: quick ? 1000 : 2500,
  rounds: 2,
  coldReps: quick ? 2 : 5,
  parallel: 6,
  parallelReps: quick ? 1 : 3,
  startupReps: quick ? 1 : 3,
  firstMinute: 300,
  settleAfterLoadMs: 10_000,
  freshConnections: quick ? 100 : 400,
};

const log = (line: string) => console.error(`[bench] ${line}`);
const work = join(HERE, ".bench");
const lock = join(work, "bench.lock");
const engine = new RawEngine();
const rawIds = new Set<string>();
const rawNetworks = new Set<string>();
let exec: ExecutorProcess | undefined;

async function main(): Promise<number> {
  mkdirSync(work, { recursive: true });
  takeLock();
  const t0 = performance.now();
  await sweep();
  const config = join(work, "config.yaml");
  // Idle timeout long enough that nothing is removed under the benchmark; capacity: the whole host.
  writeFileSync(config, `instance: ${INSTANCE}\ntimeout: 30\ncpu: ${cpus().length}\nmem: 4096\n`);
  const bundle =
    target === "bundle" ? await bundleExecutor(ROOT, join(work, "executor.mjs")) : undefined;
  const file = bundle?.file ?? (target === "bin" ? BIN : undefined);
  // The bundle runs on the node build the binary is made from, with the binary's own flags;
  // the empty Node process and the reference forwarder too.
  const node = target === "source" ? process.execPath : pinnedNode(ROOT);
  const execArgv = target === "source" ? [] : await executableFlags(ROOT);
  const memDir = join(work, "mem");
  mkdirSync(memDir, { recursive: true });
  const start = () =>
    ExecutorProcess.start({
      target,
      root: ROOT,
      config,
      file,
      node,
      nodeFlags: bundle?.execArgv,
      env: probeEnv(memDir),
    });

  const phase: PhaseOptions = { target, root: ROOT, file, work, quick, log };
  const runCold = (p: ExecutorProcess) =>
    coldPhase(p, engine, {
      image: IMAGE,
      reps: plan.coldReps,
      parallel: plan.parallel,
      parallelReps: plan.parallelReps,
      cpu: Math.min(3, Math.floor((cpus().length * 10) / plan.parallel)) / 10,
      settleMs: 300,
      track: rawIds,
      trackNetworks: rawNetworks,
      log,
    });
  if (args["only-cold"]) {
    exec = await start();
    return onlyPhase(phase, {
      name: "cold",
      title: "cold starts",
      run: () => runCold(exec!),
      note: (c) => coldNote(c),
      rows: coldRows,
      after: async () => {
        await exec?.stop();
        exec = undefined;
      },
    });
  }
  const alone = Object.keys(ONLY).find((name) => args[`only-${name}` as keyof typeof args]);
  if (alone) return ONLY[alone]!(phase);
  log(`starting the executor (${target})`);
  exec = await start();
  const startup = [exec.startMs];
  const warm = await warmPhase(exec, engine, {
    image: IMAGE,
    intent: WARM_INTENT,
    instance: INSTANCE,
    ...plan,
    floor: !args["skip-floor"],
    floorNode: node,
    floorFlags: execArgv,
    memDir,
    log,
  });
  const emptyNode = await emptyNodeMemory(node, execArgv, memDir);
  // The undici entry the executable bundles (build/slim), or the package's own from source.
  const slim = join(ROOT, "build/slim/undici.cjs");
  const undiciEntry =
    target !== "source" && existsSync(slim)
      ? slim
      : createRequire(join(ROOT, "package.json")).resolve("undici");
  const emptyHttp = {
    server: (await emptyHttpServerMemory(node, execArgv, memDir)) ?? null,
    withUndici: (await emptyHttpServerMemory(node, execArgv, memDir, { undiciEntry })) ?? null,
  };
  const cold = await runCold(exec);
  const code = await exec.stop();
  const replicas = await replicasPhase(phase);
  const protections = await protectionsPhase(phase);
  const prewarm = await prewarmPhase(phase);
  const restart = await restartPhase(phase);
  const usage = await usagePhase(phase);
  const owner = await ownerPhase(phase);
  const leftover = await engine.listByLabel("meca.executor.instance", INSTANCE);
  exec = undefined;
  if (code !== 0) throw new Error(`The executor exited with ${code} on POST /stop`);
  if (leftover.length > 0)
    throw new Error(`The executor left ${leftover.length} task container(s) after POST /stop`);

  for (let i = 1; i < plan.startupReps; i++) startup.push(await startupOnce(start));
  const binary = existsSync(BIN) ? await startupSeries(config, BIN, plan.startupReps) : undefined;
  if (!binary) log(`no binary at ${BIN}: exec → healthy of the binary is "not built"`);

  const results: Results = {
    version: 1,
    date: new Date().toISOString(),
    machine: await machine(),
    target,
    plan,
    nodeRun: { node, version: nodeVersionOf(node), execArgv },
    warm,
    cold,
    emptyNode: emptyNode ?? null,
    emptyHttp,
    startup: { target: { samples: startup, median: median(startup) }, binary: binary ?? null },
    durationS: (performance.now() - t0) / 1000,
    replicas,
    protections,
    prewarm,
    restart,
    usage,
    owner,
  };
  const rows = [
    ...buildRows(results),
    ...replicasRows(replicas),
    ...protectionsRows(protections),
    ...prewarmRows(prewarm),
    ...restartRows(restart),
    ...usageRows(usage),
    ...ownerRows(owner),
  ];
  const md = markdown({
    title: `meca-executor benchmark (${target}, ${results.date.slice(0, 16).replace("T", " ")} UTC)`,
    machine: results.machine,
    notes: notes(results),
    rows,
  });
  console.log(`\n${md}`);
  mkdirSync(args.out!, { recursive: true });
  const errors =
    warm.throughput.executor.errors +
    warm.throughput.direct.errors +
    (warm.throughput.floor?.errors ?? 0) +
    replicas.default.errors +
    replicas.replicas.errors +
    usage.errors +
    owner.errors;
  writeFileSync(
    join(args.out!, "latest.json"),
    `${JSON.stringify({ ...results, rows, errors }, null, 2)}\n`,
  );
  writeFileSync(join(args.out!, "latest.md"), md);
  log(`wrote ${join(args.out!, "latest.json")} and latest.md in ${results.durationS.toFixed(0)} s`);
  if (errors > 0) {
    log(`${errors} answers failed verification: the figures do not count`);
    return 1;
  }
  return 0;
}

function usageNote(r: UsageCostResult): string {
  return `Cost of usage: three executors, usage on, off, and on again (an A/A pair: the run's noise), each with a warm echo task, ${r.rounds} rounds in rotating order of sequential requests and 32 clients, then idle with the task; the last answer's Meca-Usage: \`${r.on.header ?? "none"}\`.`;
}

function ownerNote(r: OwnerResult): string {
  return `Owner's CPU: a CPU-bound program of the host's owner (${r.cores} processes, one per core, a fixed amount of work each) timed alone, then while tasks spin on every core they may use (${CPU_IMAGE}, 50 ms of CPU per request, 8 clients, task_concurrency 1: one replica per core), through an executor with task_cpu_priority idle and one with normal; median of ${r.reps} each, interleaved. The tasks completed ${r.idleRequests} (idle) and ${r.normalRequests} (normal) requests while the owner's program ran; ${r.errors} errors.`;
}

function ownerRows(r: OwnerResult): Row[] {
  const fmt = (v: number) => v.toFixed(0);
  return [
    {
      metric: "owner's program alone (ms)",
      executor: fmt(r.aloneMs),
      other: "",
      ratio: "",
      target: "—",
    },
    {
      metric: "owner's program beside tasks spinning, task_cpu_priority idle (ms); its speed kept",
      executor: fmt(r.idleMs),
      other: fmt(r.aloneMs),
      ratio: `${(r.idleSpeed * 100).toFixed(1)} %`,
      target: "≥ 95 %",
      met: r.idleSpeed >= 0.95,
    },
    {
      metric:
        "owner's program beside tasks spinning, task_cpu_priority normal (ms); its speed kept",
      executor: fmt(r.normalMs),
      other: fmt(r.aloneMs),
      ratio: `${(r.normalSpeed * 100).toFixed(1)} %`,
      target: "—",
    },
  ];
}

/** A phase `--only-<name>` runs alone: its rows printed, its result written to <name>.json. */
interface OnlyPhase<R> {
  name: string;
  title: string;
  run: (o: PhaseOptions) => Promise<R>;
  note: (r: R) => string;
  rows: (r: R) => Row[];
  /** Why its figures do not count (answers that failed verification, say): exit 1. */
  failed?: (r: R) => string | undefined;
  /** Runs after `run`, whatever happened (stops what it started). */
  after?: () => Promise<void>;
}

const unverified = (errors: number) =>
  errors > 0 ? `${errors} answers failed verification` : undefined;

/** The phases `--only-<name>` runs, by name. */
const ONLY: Record<string, (o: PhaseOptions) => Promise<number>> = {
  replicas: (o) =>
    onlyPhase(o, {
      name: "replicas",
      title: "replicas",
      run: replicasPhase,
      note: replicasNote,
      rows: replicasRows,
      failed: (r) =>
        unverified(r.default.errors + r.replicas.errors)?.concat(
          ` (first: ${r.default.firstError ?? r.replicas.firstError})`,
        ),
    }),
  protections: (o) =>
    onlyPhase(o, {
      name: "protections",
      title: "protections",
      run: protectionsPhase,
      note: protectionsNote,
      rows: protectionsRows,
    }),
  prewarm: (o) =>
    onlyPhase(o, {
      name: "prewarm",
      title: "prewarm",
      run: prewarmPhase,
      note: prewarmNote,
      rows: prewarmRows,
    }),
  restart: (o) =>
    onlyPhase(o, {
      name: "restart",
      title: "restart",
      run: restartPhase,
      note: restartNote,
      rows: restartRows,
      failed: (r) =>
        r.coldStarts === 0 ? undefined : `${r.coldStarts} cold starts after the restart`,
    }),
  owner: (o) =>
    onlyPhase(o, {
      name: "owner",
      title: "owner's CPU",
      run: ownerPhase,
      note: ownerNote,
      rows: ownerRows,
      failed: (r) => unverified(r.errors),
    }),
  usage: (o) =>
    onlyPhase(o, {
      name: "usage",
      title: "cost of usage",
      run: usagePhase,
      note: usageNote,
      rows: usageRows,
      failed: (r) => unverified(r.errors),
    }),
};

async function onlyPhase<R>(o: PhaseOptions, p: OnlyPhase<R>): Promise<number> {
  let r: R;
  try {
    r = await p.run(o);
  } finally {
    await p.after?.();
  }
  const md = markdown({
    title: `meca-executor ${p.title} (${target}, ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC)`,
    machine: await machine(),
    notes: [p.note(r)],
    rows: p.rows(r),
  });
  console.log(`\n${md}`);
  mkdirSync(args.out!, { recursive: true });
  writeFileSync(join(args.out!, `${p.name}.json`), `${JSON.stringify(r, null, 2)}\n`);
  const failed = p.failed?.(r);
  if (failed) log(`${failed}: the figures do not count`);
  return failed ? 1 : 0;
}

function coldNote(c: ColdResult): string {
  return `Cold starts: a new task key each time (cpu ${c.cpu}, distinct mem), median of ${c.executor.samples.length} per side, interleaved; raw with a network = create an internal network + create on it (same body as the executor's) + start + log follow to the mark + inspect for the address + first answer at it (median split: network ${c.rawIsolated.steps.network.toFixed(0)}, create ${c.rawIsolated.steps.create.toFixed(0)}, start ${c.rawIsolated.steps.start.toFixed(0)}, mark ${c.rawIsolated.steps.mark.toFixed(0)}, inspect ${c.rawIsolated.steps.inspect.toFixed(1)}, answer ${c.rawIsolated.steps.answer.toFixed(1)} ms); raw without = the same on the default bridge, published on 127.0.0.1. The executor takes a network kept ready ahead of demand, with its namespace held where the engine can (x86-64, runc).`;
}

function restartNote(r: RestartResult): string {
  return `Restart: ${r.rounds} rounds of an executor warming ${r.keys} keys (meca-test/echo:1, cpu 0.2, mem 161-166), kill -9, and a start of the same instance (exec → healthy: ${r.adoptSamples.map((v) => v.toFixed(0)).join(", ")} ms; it serves once the leftovers are adopted); then each key's first request, and 200 warm requests over the keys.`;
}

function prewarmNote(r: PrewarmResult): string {
  return `Prewarm: ${r.starts} starts of an executor with one prewarm entry (meca-test/echo:1, cpu 0.5, mem 141); each: exec until GET /tasks shows the replica ready, its first request (${r.firstSamples.map((v) => v.toFixed(2)).join(", ")} ms), a cold start of a new key, then 200 warm requests of the prewarmed key.`;
}

function protectionsNote(r: ProtectionsResult): string {
  return `Protections: two executors side by side, "on" with the defaults (task_disk_mb 1024 held by ${r.on.diskHeldBy}, a check each 0.5 s; min_free_disk_mb 2048; host firewall ${r.on.hostFirewall}) and "off" (${r.off.config}); warm: ${r.on.warmSamples} sequential requests per side in interleaved blocks; cold: a new key each time, ${r.on.coldSamples.length} per side, interleaved (on: ${r.on.coldSamples.map((v) => v.toFixed(0)).join(", ")} ms; off: ${r.off.coldSamples.map((v) => v.toFixed(0)).join(", ")} ms).`;
}

function replicasNote(r: ReplicasResult): string {
  return `Replicas: ${CPU_IMAGE} (${r.spinMs} ms of CPU per request, then echo), intent cpu ${r.intent.cpu} mem ${r.intent.mem}, capacity ${r.capacityCores} cores, ${r.clients} clients; two executors side by side (task_concurrency 0 and 1), ${r.rounds} rotating slices of ${r.sliceMs / 1000} s each after a 1 s warm-up; every answer checked. Load average (1 min) ${r.loadAverage[0].toFixed(1)} before, ${r.loadAverage[1].toFixed(1)} after${Math.max(...r.loadAverage) > cpus().length ? ": above the core count, so other work shared the cores" : ""}.`;
}

async function startupOnce(start: () => Promise<ExecutorProcess>): Promise<number> {
  const p = await start();
  await p.stop();
  return p.startMs;
}

async function startupSeries(config: string, bin: string, reps: number) {
  const samples: number[] = [];
  for (let i = 0; i < reps; i++)
    samples.push(
      await startupOnce(() =>
        ExecutorProcess.start({ target: "bin", root: ROOT, config, file: bin }),
      ),
    );
  return { samples, median: median(samples) };
}

function notes(r: Results): string[] {
  const w = r.warm;
  return [
    `Executor run as: ${r.target === "source" ? "node --import tsx src/main.ts" : r.target === "bundle" ? `${r.nodeRun.version} (the build the binary is made from) .bench/executor.mjs (esbuild bundle)` : "the packaged binary"}, with ${r.nodeRun.execArgv.join(" ") || "no node flags"}; the empty Node process and the reference forwarder: ${r.nodeRun.version}, same flags; task: ${IMAGE} (static C echo server), cpu ${WARM_INTENT.resource.cpu}, mem ${WARM_INTENT.resource.mem} MB.`,
    `Warm latency: ${w.sequential.executor.count} sequential requests per side in ${r.plan.blocks} interleaved blocks of ${r.plan.blockSize} (the order of the sides rotates); throughput: ${r.plan.concurrency} clients, ${r.plan.rounds} rotating slices of ${r.plan.sliceMs / 1000} s per side. Client: undici Pool, keep-alive, same for both sides; every answer checked against its unique input (${w.requests} warm-path answers verified).`,
    coldNote(r.cold),
    replicasNote(r.replicas),
    protectionsNote(r.protections),
    prewarmNote(r.prewarm),
    restartNote(r.restart),
    usageNote(r.usage),
    ownerNote(r.owner),
    `Client, executor, task and Docker's port proxy share the machine's ${r.machine.cores} cores; run took ${r.durationS.toFixed(0)} s.`,
  ];
}

function nodeVersionOf(node: string): string {
  return execFileSync(node, ["--version"], { encoding: "utf8" }).trim();
}

async function machine(): Promise<Machine> {
  const v = await engine.version();
  return {
    cpu: cpus()[0]?.model.trim() ?? "unknown",
    cores: cpus().length,
    memMB: Math.round(totalmem() / 2 ** 20),
    kernel: release(),
    docker: v.Version,
    node: process.version,
  };
}

/** Removes what an earlier, interrupted run left: raw containers and networks, and the bench instance's task containers and networks. */
async function sweep(): Promise<void> {
  const ids = [
    ...(await engine.listByLabel(BENCH_LABEL, "1")),
    ...(await engine.listByLabel("meca.executor.instance", INSTANCE)),
    ...rawIds,
  ];
  await Promise.all([...new Set(ids)].map((id) => engine.remove(id).catch(() => {})));
  rawIds.clear();
  // Networks after their containers: the raw side's own, and the bench instance's task networks.
  const nets = [
    ...(await engine.networksByLabel(BENCH_LABEL, "1")),
    ...(await engine.networksByLabel("meca.executor.instance", INSTANCE)),
    ...rawNetworks,
  ];
  await Promise.all([...new Set(nets)].map((id) => engine.removeNetwork(id).catch(() => {})));
  rawNetworks.clear();
}

function takeLock(): void {
  if (existsSync(lock)) {
    const pid = Number(readFileSync(lock, "utf8"));
    if (pid && pid !== process.pid && alive(pid))
      throw new Error(`Another benchmark (pid ${pid}) is running; it owns ${lock}`);
  }
  writeFileSync(lock, String(process.pid));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function cleanUp(): Promise<void> {
  if (exec) await exec.stop(10_000).catch(() => exec?.kill());
  exec = undefined;
  await sweep().catch((e) => log(`clean-up: ${(e as Error).message}`));
  await engine.close().catch(() => {});
  if (existsSync(lock) && readFileSync(lock, "utf8") === String(process.pid)) rmSync(lock);
}

let finishing = false;
async function finish(code: number): Promise<never> {
  if (!finishing) {
    finishing = true;
    await cleanUp();
  }
  process.exit(code);
}

for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => void finish(130));
setTimeout(() => {
  log(`stopped after ${DEADLINE_MS / 60_000} minutes`);
  void finish(2);
}, DEADLINE_MS).unref();

main().then(
  (code) => finish(code),
  (e) => {
    log(`failed: ${(e as Error).stack ?? e}`);
    if (exec) log(`executor output:\n${exec.output}`);
    return finish(1);
  },
);
