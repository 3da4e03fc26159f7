/**
 * `npm run bench:hostile`: what a task that streams gigabytes costs everyone
 * else. The executor from source, a warm echo task, then for a fixed time
 * `GET /health` and a warm `POST /` probed back to back, first while nothing
 * else runs, then while `meca-test/hostile-stream-chunked:1` answers
 * gigabytes over and over (each cut at `max_answer_bytes`). Prints the probes'
 * latency (p50 / p99 / max), the executor's peak RSS and how many bytes the
 * hostile answers cost; the integration test checks only bounds and deadlines.
 *
 * Flags: --seconds N (per phase, default 10), --max-answer-mib N (default 16).
 * Needs the fixture images (npm run fixtures). Its containers carry the instance
 * label `bench-hostile` and are removed at the end (POST /stop).
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { ExecutorProcess } from "./lib/executor-process.ts";
import { percentile, round } from "./lib/stats.ts";

const ROOT = resolve(import.meta.dirname, "..");
const ECHO = "meca-test/echo:1";
const HOSTILE = "meca-test/hostile-stream-chunked:1";
const resource = { cpu: 0.1, mem: 64 };

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    "max-answer-mib": { type: "string", default: "16" },
  },
});
const phaseMs = Number(args.seconds) * 1000;
const maxAnswer = Number(args["max-answer-mib"]) * 1024 * 1024;

const work = mkdtempSync(join(tmpdir(), "meca-bench-hostile-"));
const config = join(work, "config.yaml");
writeFileSync(
  config,
  `instance: bench-hostile\nmax_answer_bytes: ${maxAnswer}\nrequest_timeout: 60\n`,
);
const exec = await ExecutorProcess.start({ target: "source", root: ROOT, config });
const probe = new Pool(exec.origin, { connections: 2 });
const attacker = new Pool(exec.origin, { connections: 1 });

async function post(
  pool: Pool,
  id: string,
  input: string,
): Promise<{ status: number; text: string }> {
  const res = await pool.request({
    method: "POST",
    path: "/",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ id, resource, input }),
  });
  return { status: res.statusCode, text: await res.body.text() };
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Probes /health and a warm POST / back to back for `phaseMs`; samples RSS every 25 ms. */
async function phase(name: string, hostile: boolean) {
  const health: number[] = [];
  const warm: number[] = [];
  let peakMB = exec.rssMB();
  let hostileAnswers = 0;
  const codes = new Map<string, number>();
  const sampler = setInterval(() => (peakMB = Math.max(peakMB, exec.rssMB())), 25);
  const end = performance.now() + phaseMs;
  const attack = (async () => {
    while (hostile && performance.now() < end) {
      const r = await post(attacker, HOSTILE, "x");
      hostileAnswers++;
      const code = `${r.status} ${(JSON.parse(r.text) as { error?: string }).error ?? "ok"}`;
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
  })();
  while (performance.now() < end) {
    health.push(
      await timed(async () =>
        (await probe.request({ method: "GET", path: "/health" })).body.text(),
      ),
    );
    warm.push(
      await timed(async () => {
        const r = await post(probe, ECHO, "probe");
        if (r.status !== 200) throw new Error(`Warm request failed with ${r.status}: ${r.text}`);
      }),
    );
  }
  await attack;
  clearInterval(sampler);
  const row = (what: string, s: number[]) =>
    `| ${name} | ${what} | ${s.length} | ${round(percentile(s, 50))} | ${round(percentile(s, 99))} | ${round(Math.max(...s))} | ${round(peakMB)} |`;
  console.log(row("GET /health", health));
  console.log(row("warm POST /", warm));
  if (hostile)
    console.log(
      `|  | hostile answers: ${hostileAnswers} (${[...codes].map(([c, n]) => `${n}× ${c}`).join(", ")}), each cut at ${maxAnswer} bytes | | | | | |`,
    );
}

try {
  for (let i = 0; i < 20; i++) await post(probe, ECHO, "warm");
  const first = await post(attacker, HOSTILE, "x");
  if (first.status !== 502)
    throw new Error(
      `The hostile task answered ${first.status}, expected 502: ${first.text.slice(0, 200)}`,
    );
  console.log(
    `Executor from source; ${phaseMs / 1000} s per phase; RSS after warm-up ${round(exec.rssMB())} MB.\n`,
  );
  console.log("| phase | probe | count | p50 (ms) | p99 (ms) | max (ms) | peak RSS (MB) |");
  console.log("| --- | --- | --- | --- | --- | --- | --- |");
  await phase("quiet", false);
  await phase("task streaming gigabytes", true);
} finally {
  await probe.close();
  await attacker.close();
  await exec.stop();
}
