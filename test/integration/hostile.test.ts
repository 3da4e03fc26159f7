/**
 * Hostile tasks cannot hurt the executor. Each fixture of test/fixtures/hostile.c
 * runs against the executor as a process on the real engine. For each, while the
 * hostile request runs: the executor's RSS stays within a bound, /health answers
 * within a deadline, and another task's request is served; then the answer has
 * its expected status and code, and nothing leaks: no container, network or
 * reservation once the executor is paused.
 */
import { readFileSync, statSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { LABELS } from "../../src/platform/docker/labels.ts";
import { docker } from "../support/docker-env.ts";
import { ECHO_IMAGE, HOSTILE } from "../support/fixtures.ts";
import { until } from "../support/harness.ts";
import { spawnExecutor, type ExecutorProcess } from "../support/process.ts";
import { scratchDir } from "../support/scratch.ts";

const small = { cpu: 0.1, mem: 32 };
const instance = `hostile-${process.pid}`;
/** The executor may grow by this much over its warm baseline, whatever a task sends (16 MiB answers at most). */
const RSS_HEADROOM = 192 * 1024 * 1024;
/** Every /health probe must answer within this, while a hostile task runs. */
const HEALTH_DEADLINE_MS = 5_000;
const LOG_MAX_SIZE = 1024 * 1024;
const LOG_MAX_FILE = 2;

let ex: ExecutorProcess;
let baselineRss = 0;

function rss(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb) * 1024;
}

async function execute(
  id: string,
  input: string,
): Promise<{ status: number; body: { success: boolean; msg: string; error?: string } }> {
  return ex.post("/", { id, resource: small, input });
}

/**
 * Runs `hostile` while it lasts, sampling the executor's RSS, probing /health
 * back to back and sending one request to the warm echo task; returns the
 * hostile answer and what was seen meanwhile.
 */
async function during<T>(hostile: () => Promise<T>) {
  let running = true;
  let peak = rss(ex.child.pid!);
  const sampler = setInterval(() => (peak = Math.max(peak, rss(ex.child.pid!))), 20);
  const healthFailures: string[] = [];
  let probes = 0;
  const prober = (async () => {
    while (running) {
      try {
        const res = await fetch(`${ex.base}/health`, {
          signal: AbortSignal.timeout(HEALTH_DEADLINE_MS),
        });
        if (res.status !== 200) healthFailures.push(`status ${res.status}`);
        await res.arrayBuffer();
        probes++;
      } catch (e) {
        healthFailures.push((e as Error).message);
      }
    }
  })();
  const task = hostile();
  const other = await execute(ECHO_IMAGE, "other task");
  const answer = await task;
  running = false;
  await prober;
  clearInterval(sampler);
  peak = Math.max(peak, rss(ex.child.pid!));
  return { answer, other, peak, healthFailures, probes };
}

function containers(): string[] {
  return docker(["ps", "-aq", "--filter", `label=${LABELS.instance}=${instance}`])
    .split("\n")
    .filter(Boolean);
}

function networks(): string[] {
  return docker(["network", "ls", "-q", "--filter", `label=${LABELS.instance}=${instance}`])
    .split("\n")
    .filter(Boolean);
}

/** Task networks the executor keeps ready ahead of demand (its default). */
const SPARE_NETWORKS = 2;

/**
 * Pause removes every task: then no container or reservation may be left, and no network but the
 * spares kept ready for the next tasks, empty but for their holders; unpause for the next case.
 */
async function expectNoLeaks(): Promise<void> {
  await until(
    async () =>
      (await ex.get("/tasks")).body.tasks.every((t: { in_flight: number }) => t.in_flight === 0),
    "no request in flight",
    30_000,
  );
  expect((await ex.post("/pause")).status).toBe(200);
  const stats = (await ex.get("/stats")).body;
  expect(stats).toMatchObject({ task_used_cpu: 0, task_used_mem: 0 });
  expect((await ex.get("/tasks")).body.tasks).toEqual([]);
  await until(() => containers().length === 0, "no container left", 30_000);
  const left = networks();
  expect(left.length).toBeLessThanOrEqual(SPARE_NETWORKS);
  // A spare holds nothing but its namespace's holder (docs/architecture.md, "Spare networks and their holders").
  for (const n of left) {
    const [net] = JSON.parse(docker(["network", "inspect", n]));
    const on = Object.values(net.Containers ?? {}) as { Name: string }[];
    expect(on.map((c) => c.Name)).toEqual(on.length === 0 ? [] : [`${net.Name}-holder`]);
  }
  expect((await ex.post("/unpause")).status).toBe(200);
}

beforeAll(async () => {
  const dir = scratchDir("meca-hostile-");
  const config = join(dir, "c.yaml");
  writeFileSync(
    config,
    [
      `instance: ${instance}`,
      // The statuses that say whose fault each failure is.
      "failure_status: http",
      "request_timeout: 5",
      "ready_timeout: 30",
      "pids_limit: 100",
      `task_log_max_size: "${LOG_MAX_SIZE / 1024}k"`,
      `task_log_max_file: ${LOG_MAX_FILE}`,
    ].join("\n"),
  );
  ex = await spawnExecutor(["--config", config]);
  // Warm: the echo task others use, and a few requests so that the baseline holds what a warm executor holds.
  for (let i = 0; i < 20; i++) expect((await execute(ECHO_IMAGE, `warm ${i}`)).status).toBe(200);
  baselineRss = rss(ex.child.pid!);
}, 120_000);

afterAll(async () => {
  if (!ex) return;
  ex.child.kill("SIGTERM");
  await ex.exited;
  expect(containers()).toEqual([]);
  expect(networks()).toEqual([]);
});

type Expected = { status: number; error?: string; msg?: RegExp };

const cases: [string, string, Expected][] = [
  [
    "streams gigabytes with a Content-Length",
    HOSTILE.stream,
    { status: 502, error: "TASK_ANSWER_TOO_LARGE" },
  ],
  [
    "streams gigabytes chunked, announcing no length",
    HOSTILE.streamChunked,
    { status: 502, error: "TASK_ANSWER_TOO_LARGE" },
  ],
  ["never finishes its answer", HOSTILE.neverFinish, { status: 504, error: "TASK_TIMEOUT" }],
  ["never sends answer headers", HOSTILE.noHeaders, { status: 504, error: "TASK_TIMEOUT" }],
  ["answers invalid HTTP", HOSTILE.invalidHttp, { status: 502, error: "TASK_FAILED" }],
  ["prints the ready mark 10000 times", HOSTILE.markStorm, { status: 200, msg: /^ok$/ }],
  ["forks to the pids limit", HOSTILE.forkBomb, { status: 200, msg: /^forked \d+$/ }],
  ["exits right after the mark", HOSTILE.exitAfterMark, { status: 502 }],
];

describe("hostile tasks", () => {
  it.each(cases)(
    "a task that %s: bounded RSS, /health answers, other tasks served, a clear answer, no leaks",
    async (_what, image, want) => {
      await ex.post("/unpause"); // whatever an earlier case left
      onTestFailed(() => console.log(`the executor's last output:\n${ex.output().slice(-8000)}`));
      const seen = await during(() => execute(image, "x"));
      expect(seen.answer.status).toBe(want.status);
      if (want.error) expect(seen.answer.body.error).toBe(want.error);
      if (want.msg) expect(seen.answer.body.msg).toMatch(want.msg);
      expect(seen.other).toMatchObject({ status: 200, body: { msg: "other task" } });
      expect(seen.healthFailures).toEqual([]);
      expect(seen.probes).toBeGreaterThan(0);
      expect(seen.peak - baselineRss).toBeLessThan(RSS_HEADROOM);
      await expectNoLeaks();
    },
  );

  it("a task that floods its log: its log on disk is rotated within task_log_max_size × task_log_max_file", async () => {
    const seen = await during(() => execute(HOSTILE.logFlood, "x"));
    expect(seen.answer).toMatchObject({ status: 200, body: { msg: "ok" } });
    expect(seen.healthFailures).toEqual([]);
    const info = JSON.parse(docker(["inspect", ...containers()])).find(
      (c: { Config: { Image: string } }) => c.Config.Image === HOSTILE.logFlood,
    );
    expect(info.HostConfig.LogConfig).toEqual({
      Type: "json-file",
      Config: { "max-size": "1024k", "max-file": String(LOG_MAX_FILE) },
    });
    const logPath: string = info.LogPath;
    // The flood has filled the first file once a rotated one exists.
    await until(() => existsSync(`${logPath}.1`), "the task's log rotated", 60_000);
    // The flood goes on: a file may rotate away between the listing and its stat (it then counts 0).
    const files = [
      logPath,
      ...Array.from({ length: LOG_MAX_FILE }, (_, i) => `${logPath}.${i + 1}`),
    ];
    const total = files.reduce(
      (sum, f) => sum + (statSync(f, { throwIfNoEntry: false })?.size ?? 0),
      0,
    );
    // Each file may pass max-size by the one entry that crossed it (a 64 KiB line, JSON-wrapped).
    expect(total).toBeLessThan(LOG_MAX_FILE * (LOG_MAX_SIZE + 256 * 1024));
    expect(seen.peak - baselineRss).toBeLessThan(RSS_HEADROOM);
    await expectNoLeaks();
  });
});
