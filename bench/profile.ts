/**
 * npm run bench:profile: where the executor's time goes on the warm path.
 * Bundles src/main.ts with esbuild (source map), runs it under --cpu-prof,
 * drives sequential and 32-client load at one warm echo task (every answer
 * verified), stops it, and summarises the profile by function and by area.
 * Writes .bench/prof/*.cpuprofile (open it in Chrome DevTools or speedscope)
 * and bench/results/profile.md.
 *
 *   tsx bench/profile.ts [--seconds 8] [--sequential 3000] [--interval 200] [--nodeflag=--max-semi-space-size=16]
 *                        [--root DIR]   (profile another checkout, e.g. a scratch copy with a change to try)
 *                        [--set KEY=VALUE ...]   (a config key of the profiled executor, e.g. --set usage=false)
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { bundleExecutor } from "./lib/bundle.ts";
import { pinnedNode } from "./lib/node-build.ts";
import { summarize, type ProfileSummary } from "./lib/cpu-profile.ts";
import { ExecutorProcess } from "./lib/executor-process.ts";
import { executorSide, saturate, sequential } from "./lib/load.ts";
import { BENCH_LABEL, RawEngine } from "./lib/raw-engine.ts";

const HERE = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values: args } = parseArgs({
  options: {
    root: { type: "string", default: HERE },
    seconds: { type: "string", default: "8" },
    sequential: { type: "string", default: "3000" },
    interval: { type: "string", default: "200" },
    nodeflag: { type: "string", multiple: true, default: [] },
    set: { type: "string", multiple: true, default: [] },
    out: { type: "string", default: join(HERE, "bench/results/profile.md") },
  },
});
const ROOT = resolve(args.root!);

const log = (line: string) => console.error(`[profile] ${line}`);
const work = join(ROOT, ".bench");
const here = join(HERE, ".bench");
const profDir = join(here, "prof");

async function main(): Promise<void> {
  rmSync(profDir, { recursive: true, force: true });
  mkdirSync(profDir, { recursive: true });
  mkdirSync(work, { recursive: true });
  const config = join(work, "profile-config.yaml");
  const keys = args.set!.map((kv) => `${kv.replace("=", ": ")}\n`).join("");
  writeFileSync(
    config,
    `instance: bench-profile\ntimeout: 30\ncpu: ${cpus().length}\nmem: 4096\n${keys}`,
  );
  const { file, execArgv } = await bundleExecutor(ROOT);
  const nodeFlags = [
    ...execArgv,
    "--cpu-prof",
    `--cpu-prof-dir=${profDir}`,
    `--cpu-prof-interval=${args.interval}`,
    ...args.nodeflag!,
  ];
  const exec = await ExecutorProcess.start({
    target: "bundle",
    root: ROOT,
    config,
    file,
    nodeFlags,
    node: pinnedNode(ROOT),
  });
  const side = executorSide(exec.origin, {
    id: "meca-test/echo:1",
    resource: { cpu: 1, mem: 126 },
    runtime: "",
  });
  let served = 0;
  try {
    await side.send(0);
    const n = Number(args.sequential);
    const t0 = performance.now();
    await sequential(side, n);
    log(`${n} sequential: ${(((performance.now() - t0) / n) * 1000).toFixed(0)} µs each`);
    const s = await saturate(side, {
      concurrency: Number(args.seconds) > 0 ? 32 : 0,
      durationMs: Number(args.seconds) * 1000,
    });
    log(`32 clients: ${s.rps.toFixed(0)} req/s, ${s.errors} errors`);
    if (s.errors > 0) throw new Error(`Answers failed verification: ${s.firstError}`);
    served = 1 + n + s.completed;
  } finally {
    await side.close();
    await exec.stop();
    const engine = new RawEngine();
    for (const id of await engine.listByLabel("meca.executor.instance", "bench-profile"))
      await engine.remove(id);
    for (const id of await engine.listByLabel(BENCH_LABEL, "1")) await engine.remove(id);
    await engine.close();
  }
  const prof = readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"));
  if (!prof) throw new Error(`No .cpuprofile in ${profDir}`);
  const sum = summarize(join(profDir, prof), { root: ROOT, top: 40 });
  const md = render(sum, served, join(".bench/prof", prof));
  console.log(md);
  writeFileSync(args.out!, md);
  log(`wrote ${args.out}`);
}

function render(s: ProfileSummary, served: number, file: string): string {
  const f = (v: number) => v.toFixed(1);
  return [
    `### Executor CPU profile on the warm path`,
    "",
    `${served} verified requests (sequential, then 32 clients); ${s.samples} samples; busy ${f(s.busyMs)} ms of ${f(s.totalMs)} ms profiled ` +
      `(${((s.busyMs / served) * 1000).toFixed(0)} µs of executor CPU per request, profiler included). Profile: \`${file}\`.`,
    "",
    "#### By area (% of busy time; inclusive = the area anywhere on the stack)",
    "",
    "| area | self % | inclusive % |",
    "| --- | ---: | ---: |",
    ...s.areas.map((a) => `| ${a.area} | ${f(a.selfPct)} | ${f(a.inclusivePct)} |`),
    "",
    "#### Top functions by self time",
    "",
    "| function | where | area | self % |",
    "| --- | --- | --- | ---: |",
    ...s.functions.map((x) => `| ${x.name} | ${x.where} | ${x.area} | ${f(x.selfPct)} |`),
    "",
    "#### Top functions by inclusive time",
    "",
    "| function | where | inclusive % |",
    "| --- | --- | ---: |",
    ...s.inclusive.map((x) => `| ${x.name} | ${x.where} | ${f(x.pct)} |`),
    "",
    "#### Who calls the busiest native functions (6 frames up)",
    "",
    ...s.callers.flatMap((c) => [
      `- **${c.name}** ${f(c.pct)} %`,
      ...c.paths.map((p) => `  - ${f(p.pct)} % ← ${p.path}`),
    ]),
    "",
  ].join("\n");
}

main().then(
  () => process.exit(0),
  (e) => {
    log(`failed: ${(e as Error).stack ?? e}`);
    process.exit(1);
  },
);
