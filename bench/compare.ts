/**
 * npm run bench:compare -- DIR[:NODEFLAG,...] ... bin=FILE ...: A/B the warm path of
 * several checkouts (e.g. HEAD and a scratch copy with one change) and packaged
 * binaries in one run. Each checkout is bundled and run on the node build its
 * binary is made from, with the binary's flags (plus NODEFLAGs); each is its
 * own executor (own instance label, own task key),
 * then every round measures each of them and a direct call to a task, in
 * rotating order: sequential p50/p99, throughput at 32 clients, executor CPU
 * per request, max RSS. Every answer is verified.
 *
 *   tsx bench/compare.ts . /tmp/meca-proto /tmp/meca-proto:--max-semi-space-size=4 [--rounds 8]
 *   tsx bench/compare.ts . bin=dist/meca-executor      # the bundle against the binary made from it
 *   tsx bench/compare.ts . here=.                      # the pinned node build against the node running this
 *   tsx bench/compare.ts . .@/path/to/node             # ... against another node build
 *   tsx bench/compare.ts . .+usage=false .             # one config key changed (+KEY=VALUE, repeatable), with an A/A
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { bundleExecutor } from "./lib/bundle.ts";
import { ExecutorProcess } from "./lib/executor-process.ts";
import { pinnedNode } from "./lib/node-build.ts";
import { directSide, executorSide, saturate, sequential, type Side } from "./lib/load.ts";
import { RawEngine } from "./lib/raw-engine.ts";
import { median, percentile } from "./lib/stats.ts";

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: "string", default: "8" },
    sequential: { type: "string", default: "400" },
    "slice-ms": { type: "string", default: "1000" },
  },
});
if (positionals.length === 0)
  throw new Error("Name at least one checkout: tsx bench/compare.ts DIR[:NODEFLAG,...] ...");

const engine = new RawEngine();
const kids: ExecutorProcess[] = [];
const instance = (i: number) => `bench-cmp-${i}`;

interface Variant {
  name: string;
  side: Side;
  exec?: ExecutorProcess;
  lat: number[];
  rps: number[];
  cpuSeq: number;
  cpuLoad: number;
  nLoad: number;
  rssMax: number;
}

async function main(): Promise<void> {
  const variants: Variant[] = [];
  for (let i = 1; i <= positionals.length; i++) {
    for (const id of await engine.listByLabel("meca.executor.instance", instance(i)))
      await engine.remove(id);
    // +KEY=VALUE suffixes: config keys of this variant's executor (the rest as every variant's).
    const [head, ...extra] = positionals[i - 1]!.split("+");
    const spec = head!;
    const bin = spec.startsWith("bin=") ? resolve(spec.slice(4)) : undefined;
    const here = spec.startsWith("here=");
    const [body, otherNode] = spec.slice(here ? 5 : 0).split("@");
    const [dir, flags] = bin ? [".", undefined] : body!.split(":");
    const root = resolve(dir!);
    const work = join(root, ".bench");
    mkdirSync(work, { recursive: true });
    const config = join(work, `compare-${i}.yaml`);
    const keys = extra.map((kv) => `${kv.replace("=", ": ")}\n`).join("");
    writeFileSync(config, `instance: ${instance(i)}\ntimeout: 30\ncpu: 2\nmem: 4096\n${keys}`);
    let exec: ExecutorProcess;
    if (bin) {
      exec = await ExecutorProcess.start({ target: "bin", root, config, file: bin });
    } else {
      const { file, execArgv } = await bundleExecutor(root, join(work, `compare-${i}.mjs`));
      exec = await ExecutorProcess.start({
        target: "bundle",
        root,
        config,
        file,
        node: otherNode ? resolve(otherNode) : here ? process.execPath : pinnedNode(root),
        nodeFlags: [...execArgv, ...(flags ? flags.split(",") : [])],
      });
    }
    kids.push(exec);
    // A distinct task key per variant: container names carry the key's hash, not the instance.
    const side = {
      ...executorSide(exec.origin, {
        id: "meca-test/echo:1",
        resource: { cpu: 1, mem: 110 + i },
        runtime: "",
      }),
      name: `${i}: ${positionals[i - 1]}`,
    };
    await side.send(0);
    variants.push({
      name: side.name,
      side,
      exec,
      lat: [],
      rps: [],
      cpuSeq: 0,
      cpuLoad: 0,
      nLoad: 0,
      rssMax: 0,
    });
  }
  const tasks = (await (await fetch(`${variants[0]!.exec!.origin}/tasks`)).json()) as {
    tasks: { container_id: string }[];
  };
  const direct = directSide(await engine.taskEndpoint(tasks.tasks[0]!.container_id));
  variants.push({
    name: "direct",
    side: direct,
    lat: [],
    rps: [],
    cpuSeq: 0,
    cpuLoad: 0,
    nLoad: 0,
    rssMax: 0,
  });

  for (const v of variants) {
    await sequential(v.side, 500);
    await saturate(v.side, { concurrency: 32, durationMs: 300 });
  }
  const rounds = Number(args.rounds);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < variants.length; k++) {
      const v = variants[(k + r) % variants.length]!;
      let c0 = v.exec?.cpuMs() ?? 0;
      v.lat.push(...(await sequential(v.side, Number(args.sequential))));
      v.cpuSeq += (v.exec?.cpuMs() ?? 0) - c0;
      c0 = v.exec?.cpuMs() ?? 0;
      const t = await saturate(v.side, { concurrency: 32, durationMs: Number(args["slice-ms"]) });
      v.cpuLoad += (v.exec?.cpuMs() ?? 0) - c0;
      v.nLoad += t.completed;
      v.rps.push(t.rps);
      v.rssMax = Math.max(v.rssMax, v.exec?.rssMB() ?? 0);
      if (t.errors > 0)
        throw new Error(`${v.name}: ${t.errors} answers failed verification: ${t.firstError}`);
    }
    process.stderr.write(`[compare] round ${r + 1}/${rounds}\n`);
  }
  const d = variants.at(-1)!;
  const dp50 = percentile(d.lat, 50);
  const drps = median(d.rps);
  console.log(
    "| variant | p50 ms | Δp50 ms | p99 ms | req/s (median slice) | ÷ direct | CPU µs/req seq | CPU µs/req load | max RSS MB |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const v of variants) {
    const p50 = percentile(v.lat, 50);
    const cpu = (t: number, n: number) => (v.exec ? ((t * 1000) / n).toFixed(0) : "");
    console.log(
      `| ${v.name} | ${p50.toFixed(3)} | ${(p50 - dp50).toFixed(3)} | ${percentile(v.lat, 99).toFixed(2)} | ${median(v.rps).toFixed(0)} | ${(median(v.rps) / drps).toFixed(2)} | ${cpu(v.cpuSeq, v.lat.length)} | ${cpu(v.cpuLoad, v.nLoad)} | ${v.exec ? v.rssMax.toFixed(0) : ""} |`,
    );
  }
  for (const v of variants) await v.side.close();
}

main()
  .catch((e) => {
    console.error(`[compare] failed: ${(e as Error).stack ?? e}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const k of kids) await k.stop().catch(() => k.kill());
    await engine.close();
  });
