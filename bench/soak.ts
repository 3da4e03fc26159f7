/**
 * The soak: hours (or minutes) of mixed load on the real engine while faults are injected at
 * random, with the executor's invariants checked the whole time.
 *
 *   npm run soak -- --minutes N [--target bin|source] [--seed S] [--clients C]
 *
 * Load: warm requests of three keys, cold starts of many distinct keys, replicas on
 * (task_concurrency 2), a new connection per request as the host actor makes them, `--clients`
 * concurrent clients, hostile fixtures (a huge answer, no answer, an exit after the mark),
 * clients that hang up, and a hostile client: 2 MiB ids that are no image reference (each a 400,
 * and GET /requests stays under 100 KB) and bursts of 600 connections that send nothing, held
 * while /health must still answer. Faults, one every 1 to 4 s: a task container killed (under a request or
 * between requests), a task network disconnected, pause / update-config / unpause, the capacity
 * shrunk below what is reserved and grown again, the engine's event stream cut (through an engine
 * front). Invariants: every request gets exactly one answer with a valid envelope and the status
 * its code implies under failure_status "ok" (the default); a successful answer is the task's answer to that request's own input; the
 * ledger's reservations equal the sum over live replicas (GET /tasks, one read); once settled, the
 * engine's containers of the instance are those of /tasks; after the stop nothing of the instance
 * is left; RSS and descriptors do not keep growing. The same seed replays the same choices.
 * The last line is one JSON summary; the exit code is 0 only when it says `"ok": true`.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startEngineFront } from "../test/support/engine-front.ts";
import { ensureDocker } from "../test/support/docker-env.ts";
import { ECHO_IMAGE, HOSTILE } from "../test/support/fixtures.ts";
import { ExecutorProcess, sleep, type Target } from "./lib/executor-process.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const BIN = join(ROOT, "dist/meca-executor");

const { values: args } = parseArgs({
  options: {
    minutes: { type: "string", default: "2" },
    target: { type: "string", default: "bin" },
    seed: { type: "string" },
    clients: { type: "string", default: "4" },
  },
});
const minutes = Number(args.minutes);
const target = args.target as Target;
const seed = args.seed !== undefined ? Number(args.seed) : Math.floor(Math.random() * 2 ** 31);
const clients = Number(args.clients);
if (
  !(minutes > 0) ||
  !["bin", "source"].includes(target) ||
  !Number.isInteger(seed) ||
  !(clients >= 1)
) {
  console.error(
    "Usage: npm run soak -- --minutes N [--target bin|source] [--seed S] [--clients C]",
  );
  process.exit(2);
}

/** The documented status of each error code under failure_status "http" (docs/api.md, "Errors"). */
const CODE_STATUS: Record<string, number> = {
  BAD_REQUEST: 400,
  INVALID_JSON: 400,
  INVALID_BODY: 400,
  INVALID_IMAGE: 400,
  CONFLICTING_FIELDS: 400,
  EXCEEDS_CAPACITY: 400,
  IMAGE_NOT_FOUND: 400,
  MICROVM_UNAVAILABLE: 400,
  SGX_UNAVAILABLE: 400,
  GPU_UNAVAILABLE: 400,
  ENGINE_REJECTED: 400,
  UNAUTHORIZED: 401,
  IMAGE_NOT_ALLOWED: 403,
  ORIGIN_REFUSED: 403,
  HOST_REFUSED: 403,
  NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  CLIENT_CLOSED: 499,
  TASK_EXITED: 502,
  TASK_NOT_READY: 502,
  TASK_START_FAILED: 502,
  TASK_FAILED: 502,
  TASK_UNREACHABLE: 502,
  TASK_ANSWER_TOO_LARGE: 502,
  PAUSED: 503,
  NO_CAPACITY: 503,
  ENGINE_UNAVAILABLE: 503,
  OVERLOADED: 503,
  DISK_LOW: 503,
  TASK_TIMEOUT: 504,
  TASK_DISK_EXCEEDED: 507,
  INTERNAL: 500,
};

/**
 * Under failure_status "ok" (the default, which the soak runs) an execution that the executor
 * understood but could not serve answers 200 with the envelope; a malformed request stays a 400.
 */
const MALFORMED = new Set([
  "BAD_REQUEST",
  "INVALID_JSON",
  "INVALID_BODY",
  "INVALID_IMAGE",
  "CONFLICTING_FIELDS",
]);
function expectedStatus(code: string): number | undefined {
  const status = CODE_STATUS[code];
  if (status === undefined) return undefined;
  const unserved =
    status === 502 ||
    status === 503 ||
    status === 504 ||
    status === 507 ||
    (status === 400 && !MALFORMED.has(code));
  return unserved ? 200 : status;
}
/** Codes that say: come back later. */
const RETRY_LATER = new Set([
  "PAUSED",
  "NO_CAPACITY",
  "OVERLOADED",
  "ENGINE_UNAVAILABLE",
  "DISK_LOW",
]);

/** mulberry32: a small seeded PRNG, so that a seed replays the same choices. */
function prng(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
/** One stream of choices per client and one for the faults: a seed replays each stream exactly. */
type Rand = () => number;
const faultRand = prng(seed);
const pick = <T>(xs: readonly T[], r: Rand = faultRand): T => xs[Math.floor(r() * xs.length)]!;

interface Violation {
  at_s: number;
  what: string;
  detail: string;
}
const t0 = Date.now();
const since = () => Math.round((Date.now() - t0) / 100) / 10;
const violations: Violation[] = [];
const violate = (what: string, detail: string) => {
  violations.push({ at_s: since(), what, detail: detail.slice(0, 300) });
  if (violations.length <= 20)
    console.error(`[soak] violation at ${since()} s: ${what}: ${detail.slice(0, 300)}`);
};

const counts = {
  requests: 0,
  answered: 0,
  unanswered: 0,
  aborted: 0,
  bad_envelopes: 0,
  wrong_answers: 0,
  faults: 0,
  ledger_checks: 0,
  ledger_mismatches: 0,
  hostile_ids: 0,
  idle_bursts: 0,
};
const faultsByKind: Record<string, number> = {};
const outcomes: Record<string, number> = {};

const log = (line: string) => console.error(`[soak] ${line}`);

function docker(argv: string[]): string {
  try {
    return execFileSync("docker", argv, {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    }).trim();
  } catch {
    return ""; // gone already, or racing the executor: a fault that found nothing to do
  }
}

/** POST / over a connection of its own (the host actor's way); undefined when the client hung up first. */
function post(
  origin: string,
  body: string,
  opts: { abortAfterMs?: number; timeoutMs: number },
): Promise<{ status: number; text: string } | "aborted" | "timeout"> {
  return new Promise((resolve) => {
    const url = new URL(origin);
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: "/",
        method: "POST",
        agent: false,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          clearTimeout(timer);
          clearTimeout(abort);
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") });
        });
        res.on("error", () => resolve("aborted"));
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      resolve("timeout");
    }, opts.timeoutMs);
    const abort =
      opts.abortAfterMs === undefined
        ? undefined
        : setTimeout(() => {
            clearTimeout(timer);
            req.destroy();
            resolve("aborted");
          }, opts.abortAfterMs);
    req.on("error", () => {
      clearTimeout(timer);
      clearTimeout(abort);
      resolve("aborted");
    });
    req.end(body);
  });
}

async function admin(origin: string, path: string, body?: unknown): Promise<number> {
  try {
    const res = await fetch(origin + path, {
      method: "POST",
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    await res.text();
    return res.status;
  } catch {
    return 0;
  }
}

interface TasksBody {
  reserved: { cpu: number; mem: number; reservations: number };
  tasks: {
    container_id: string;
    state: string;
    reservation: { cpu: number; mem: number } | null;
  }[];
}
async function readTasks(origin: string): Promise<TasksBody | undefined> {
  try {
    const res = await fetch(`${origin}/tasks`, { signal: AbortSignal.timeout(10_000) });
    // Refused by the connection cap during an idle burst: no reading this time.
    if (res.status !== 200) return void (await res.text());
    return (await res.json()) as TasksBody;
  } catch {
    return undefined;
  }
}

type Kind = "warm" | "cold" | "abort" | "stream" | "silent" | "exit";
const KINDS: [Kind, number][] = [
  ["warm", 50],
  ["cold", 15],
  ["abort", 10],
  ["stream", 8],
  ["silent", 7],
  ["exit", 10],
];
function pickKind(rand: Rand): Kind {
  let r = rand() * 100;
  for (const [k, w] of KINDS) if ((r -= w) < 0) return k;
  return "warm";
}

let serial = 0;
/** One request of `kind`, checked. */
async function one(origin: string, kind: Kind, rand: Rand): Promise<void> {
  const n = ++serial;
  const input = `soak-${seed}-${n}-${Math.floor(rand() * 1e9).toString(36)}`;
  const image =
    kind === "stream"
      ? HOSTILE.stream
      : kind === "silent"
        ? HOSTILE.noHeaders
        : kind === "exit"
          ? HOSTILE.exitAfterMark
          : ECHO_IMAGE;
  const resource =
    kind === "cold"
      ? { cpu: 0.1, mem: 50 + Math.floor(rand() * 300) }
      : kind === "warm" || kind === "abort"
        ? { cpu: 0.2, mem: pick([41, 42, 43], rand) }
        : { cpu: 0.1, mem: 33 };
  const abortAfterMs = kind === "abort" ? 1 + Math.floor(rand() * 80) : undefined;
  counts.requests++;
  const r = await post(origin, JSON.stringify({ id: image, resource, input }), {
    abortAfterMs,
    timeoutMs: 90_000,
  });
  if (r === "aborted") {
    // Only a client that hung up on purpose may go without an answer.
    if (kind === "abort") counts.aborted++;
    else {
      counts.unanswered++;
      violate(
        "no answer",
        `request ${n} (${kind}, ${image}): the connection closed without an answer`,
      );
    }
    return;
  }
  if (r === "timeout") {
    counts.unanswered++;
    violate("no answer", `request ${n} (${kind}, ${image}): no answer within 90 s`);
    return;
  }
  counts.answered++;
  let body: { success?: unknown; msg?: unknown; error?: unknown };
  try {
    body = JSON.parse(r.text) as typeof body;
  } catch {
    counts.bad_envelopes++;
    return violate(
      "bad envelope",
      `request ${n}: status ${r.status}, not JSON: ${r.text.slice(0, 100)}`,
    );
  }
  if (typeof body.success !== "boolean" || typeof body.msg !== "string") {
    counts.bad_envelopes++;
    return violate("bad envelope", `request ${n}: status ${r.status}: ${r.text.slice(0, 100)}`);
  }
  const outcome = body.success ? "ok" : String(body.error);
  outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
  if (body.success) {
    if (r.status !== 200) violate("status", `request ${n}: success with status ${r.status}`);
    if (image === ECHO_IMAGE && body.msg !== input) {
      counts.wrong_answers++;
      violate("wrong answer", `request ${n}: asked "${input}", got "${body.msg.slice(0, 80)}"`);
    }
    if (image !== ECHO_IMAGE)
      violate("status", `request ${n}: a success from ${image}, which never answers one`);
    return;
  }
  // A refusal says when to come back; a client that asks again at once only measures the refusal.
  if (RETRY_LATER.has(String(body.error))) await sleep(50 + rand() * 200);
  if (body.error === "INTERNAL")
    violate(
      "defect",
      `request ${n} (${kind}, ${image}): 500 INTERNAL (the executor's log has the details)`,
    );
  const expected = expectedStatus(String(body.error));
  // OVERLOADED also comes from the connection cap before a request is read (503 whatever failure_status says).
  const capRefusal = body.error === "OVERLOADED" && r.status === 503;
  if (capRefusal) return;
  if (expected === undefined) {
    counts.bad_envelopes++;
    violate(
      "bad envelope",
      `request ${n}: unknown code ${String(body.error)} (status ${r.status})`,
    );
  } else if (expected !== r.status)
    violate(
      "status",
      `request ${n}: code ${String(body.error)} with status ${r.status}, documented ${expected}`,
    );
}

/**
 * The hostile client: an id of 2 MiB that is no image reference must be a 400 INVALID_IMAGE and
 * leave GET /requests small; 600 connections that send nothing (past max_connections, 512) must
 * not keep /health from answering while they are held.
 */
async function hostileClient(origin: string, rand: Rand): Promise<void> {
  if (rand() < 0.5) {
    counts.hostile_ids++;
    const r = await post(
      origin,
      JSON.stringify({
        id: "b".repeat(2 * 1024 * 1024),
        resource: { cpu: 0.1, mem: 33 },
        input: "x",
      }),
      { timeoutMs: 30_000 },
    );
    if (typeof r === "string") return violate("hostile", `a 2 MiB id got no answer (${r})`);
    // Paused (a fault), the executor refuses before it reads the id.
    const refused =
      (r.status === 400 && r.text.includes('"INVALID_IMAGE"')) || r.text.includes('"PAUSED"');
    if (!refused) violate("hostile", `a 2 MiB id got ${r.status}: ${r.text.slice(0, 100)}`);
    try {
      const text = await (
        await fetch(`${origin}/requests`, { signal: AbortSignal.timeout(10_000) })
      ).text();
      if (text.length >= 100 * 1024)
        violate("hostile", `GET /requests answered ${text.length} bytes`);
    } catch (e) {
      violate("hostile", `GET /requests failed: ${(e as Error).message}`);
    }
    return;
  }
  counts.idle_bursts++;
  const url = new URL(origin);
  const idle = await Promise.all(
    Array.from(
      { length: 600 },
      () =>
        new Promise<Socket>((resolve) => {
          const s = connect(Number(url.port), url.hostname);
          s.on("error", () => {});
          s.once("connect", () => resolve(s));
          s.once("close", () => resolve(s));
        }),
    ),
  );
  try {
    // On a connection of its own: a kept-alive one of this process, idle meanwhile, may be the one
    // displaced. Refused (503) while the idle ones are younger than a second; answered within 5 s.
    const once = () =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          { host: url.hostname, port: url.port, path: "/health", agent: false, timeout: 10_000 },
          (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode ?? 0));
          },
        );
        req.on("timeout", () => req.destroy(new Error("no answer within 10 s")));
        req.on("error", reject);
        req.end();
      });
    let status = await once();
    for (const deadline = Date.now() + 5_000; status !== 200 && Date.now() < deadline;) {
      await sleep(100);
      status = await once();
    }
    if (status !== 200)
      violate("hostile", `/health answered ${status} while 600 idle connections were held`);
  } catch (e) {
    violate(
      "hostile",
      `/health did not answer while 600 idle connections were held: ${(e as Error).message}`,
    );
  } finally {
    for (const s of idle) s.destroy();
  }
}

/** The instance's task containers, as the engine has them. */
const engineContainers = (instance: string) =>
  docker(["ps", "-aq", "--no-trunc", "--filter", `label=meca.executor.instance=${instance}`])
    .split("\n")
    .filter(Boolean);
/** The holders of the instance's spare and task networks' namespaces (docs/architecture.md). */
const engineHolders = (instance: string) =>
  docker(["ps", "-aq", "--no-trunc", "--filter", `label=meca.executor.holder-of=${instance}`])
    .split("\n")
    .filter(Boolean);
const engineNetworks = (instance: string) =>
  docker(["network", "ls", "-q", "--filter", `label=meca.executor.instance=${instance}`])
    .split("\n")
    .filter(Boolean);

async function fault(
  origin: string,
  instance: string,
  front: Awaited<ReturnType<typeof startEngineFront>>,
  timers: Set<NodeJS.Timeout>,
): Promise<void> {
  const kind = pick(["kill", "kill", "disconnect", "pause", "shrink", "events"] as const);
  counts.faults++;
  faultsByKind[kind] = (faultsByKind[kind] ?? 0) + 1;
  const running = docker([
    "ps",
    "-q",
    "--no-trunc",
    "--filter",
    `label=meca.executor.instance=${instance}`,
  ])
    .split("\n")
    .filter(Boolean);
  switch (kind) {
    case "kill":
      if (running.length > 0) docker(["kill", pick(running)]);
      break;
    case "disconnect": {
      if (running.length === 0) break;
      const id = pick(running);
      const nets = docker([
        "inspect",
        "-f",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
        id,
      ])
        .split(" ")
        .filter(Boolean);
      if (nets.length > 0) docker(["network", "disconnect", "-f", pick(nets), id]);
      break;
    }
    case "pause":
      await admin(origin, "/pause");
      await admin(origin, "/update-config", { timeout: pick([0.1, 0.2]) });
      await admin(origin, "/unpause");
      break;
    case "shrink": {
      await admin(origin, "/update-config", { cpu: 0.3, mem: 256 });
      const t = setTimeout(
        () => {
          timers.delete(t);
          void admin(origin, "/update-config", { cpu: 2, mem: 1536 });
        },
        1_000 + faultRand() * 2_000,
      );
      timers.add(t);
      break;
    }
    case "events":
      front.endStreams();
      break;
  }
}

/** The ledger's reservations equal the sum over live replicas, in one read of GET /tasks. */
async function checkLedger(origin: string): Promise<void> {
  const t = await readTasks(origin);
  if (!t) return;
  counts.ledger_checks++;
  const held = t.tasks.filter((x) => x.reservation !== null);
  const cpu = Math.round(held.reduce((s, x) => s + x.reservation!.cpu * 10, 0));
  const mem = held.reduce((s, x) => s + x.reservation!.mem, 0);
  if (
    cpu !== Math.round(t.reserved.cpu * 10) ||
    mem !== t.reserved.mem ||
    held.length !== t.reserved.reservations
  ) {
    counts.ledger_mismatches++;
    violate(
      "ledger",
      `reserved ${t.reserved.cpu} cores, ${t.reserved.mem} MB in ${t.reserved.reservations} reservations; the replicas hold ${cpu / 10} cores, ${mem} MB in ${held.length}`,
    );
  }
}

function fds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

async function main(): Promise<number> {
  await ensureDocker();
  const work = mkdtempSync(join(tmpdir(), "meca-soak-"));
  try {
    return await soak(work);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function soak(work: string): Promise<number> {
  const instance = `soak-${seed}`;
  const config = join(work, "soak.yaml");
  writeFileSync(
    config,
    [
      `instance: ${instance}`,
      "timeout: 0.1",
      "cpu: 2",
      "mem: 1536",
      "task_concurrency: 2",
      "max_replicas: 2",
      "request_timeout: 3",
      "queue_timeout: 5",
      "ready_timeout: 20",
      "drain_timeout: 3",
      `max_answer_bytes: ${1024 * 1024}`,
      "",
    ].join("\n"),
  );
  const front = await startEngineFront(work);
  const env = { ...process.env, DOCKER_HOST: `unix://${front.socketPath}` };
  log(`seed ${seed}, ${minutes} min, ${clients} clients, target ${target}`);
  const logFile = join(tmpdir(), `meca-soak-${seed}.log`);
  writeFileSync(logFile, "");
  const exec = await ExecutorProcess.start({
    target,
    root: ROOT,
    config,
    file: BIN,
    env,
    logLevel: "warn",
    logFile,
  });
  const origin = exec.origin;
  const timers = new Set<NodeJS.Timeout>();
  const end = Date.now() + minutes * 60_000;
  let rssStart = NaN;
  let fdsStart = NaN;
  const samples: { rss: number; fds: number }[] = [];
  let stop = false;

  const loads = Array.from({ length: clients }, async (_, i) => {
    const rand = prng(seed + 1 + i);
    while (!stop && Date.now() < end) await one(origin, pickKind(rand), rand);
  });
  const hostile = (async () => {
    const rand = prng(seed + 1000);
    await sleep(5_000);
    while (!stop && Date.now() < end - 5_000) {
      await hostileClient(origin, rand);
      await sleep(2_000 + rand() * 4_000);
    }
  })();
  const faults = (async () => {
    await sleep(3_000);
    while (!stop && Date.now() < end - 5_000) {
      await fault(origin, instance, front, timers);
      await sleep(1_000 + faultRand() * 3_000);
    }
  })();
  const watch = (async () => {
    let nextProgress = Date.now() + 10_000;
    while (!stop && Date.now() < end) {
      await checkLedger(origin);
      const s = { rss: exec.rssMB(), fds: fds(exec.pid) };
      samples.push(s);
      if (Number.isNaN(rssStart) && Date.now() - t0 > 15_000) {
        rssStart = s.rss;
        fdsStart = s.fds;
      }
      if (Date.now() >= nextProgress) {
        nextProgress += 10_000;
        log(
          `${since().toFixed(0)} s: ${counts.requests} requests, ${counts.answered} answered, ${counts.aborted} aborted by the client, ${counts.faults} faults, ${violations.length} violations, RSS ${s.rss.toFixed(0)} MB, ${s.fds} fds`,
        );
      }
      await sleep(1_000);
    }
  })();
  await Promise.all([...loads, faults, watch, hostile]);
  stop = true;
  for (const t of timers) clearTimeout(t);

  // Settle: the capacity back, nothing paused; then the engine's containers are those of /tasks.
  await admin(origin, "/update-config", { cpu: 2, mem: 1536 });
  await admin(origin, "/unpause");
  await checkLedger(origin);
  const rssEnd = exec.rssMB();
  const fdsEnd = fds(exec.pid);
  const deadline = Date.now() + 30_000;
  let differ = "";
  for (;;) {
    const t = await readTasks(origin);
    const listed = new Set(
      (t?.tasks ?? [])
        .filter((x) => x.state === "ready" || x.state === "starting")
        .map((x) => x.container_id)
        .filter(Boolean),
    );
    const onEngine = new Set(engineContainers(instance));
    const extra = [...onEngine].filter((id) => !listed.has(id));
    const missing = [...listed].filter((id) => !onEngine.has(id));
    differ =
      extra.length + missing.length === 0
        ? ""
        : `on the engine only: ${extra.length}, in /tasks only: ${missing.length}`;
    if (!differ || Date.now() > deadline) break;
    await sleep(500);
  }
  if (differ)
    violate(
      "settled",
      `the engine's containers of the instance are not those of /tasks after 30 s: ${differ}`,
    );

  const code = await exec.stop(30_000);
  if (code !== 0) violate("stop", `the executor exited with ${code}`);
  await sleep(500);
  // Task containers and the holders of their networks' namespaces alike.
  const leakedContainers = [...engineContainers(instance), ...engineHolders(instance)];
  const leakedNetworks = engineNetworks(instance);
  if (leakedContainers.length > 0)
    violate("leak", `${leakedContainers.length} containers of the instance left after the stop`);
  if (leakedNetworks.length > 0)
    violate("leak", `${leakedNetworks.length} networks of the instance left after the stop`);
  for (const id of leakedContainers) docker(["rm", "-f", id]);
  for (const id of leakedNetworks) docker(["network", "rm", id]);
  await front.close();
  // The executor's log is kept only when it has something to explain.
  if (violations.length === 0) rmSync(logFile, { force: true });
  else log(`the executor's log: ${logFile}`);

  // Growth: the end against the start (after 15 s of warm-up), with room for caches filling once.
  if (Number.isNaN(rssStart)) {
    rssStart = samples[0]?.rss ?? rssEnd;
    fdsStart = samples[0]?.fds ?? fdsEnd;
  }
  const rssGrew = rssEnd > rssStart * 1.5 + 30;
  const fdsGrew = fdsEnd > fdsStart + 64;
  if (rssGrew) violate("rss", `RSS grew from ${rssStart.toFixed(0)} to ${rssEnd.toFixed(0)} MB`);
  if (fdsGrew) violate("fds", `descriptors grew from ${fdsStart} to ${fdsEnd}`);

  const summary = {
    ok: violations.length === 0,
    seed,
    minutes,
    target,
    clients,
    requests: counts.requests,
    answered: counts.answered,
    unanswered: counts.unanswered,
    aborted_by_client: counts.aborted,
    bad_envelopes: counts.bad_envelopes,
    wrong_answers: counts.wrong_answers,
    faults: counts.faults,
    faults_by_kind: faultsByKind,
    hostile_ids: counts.hostile_ids,
    idle_bursts: counts.idle_bursts,
    outcomes,
    ledger_checks: counts.ledger_checks,
    ledger_mismatches: counts.ledger_mismatches,
    leaked_containers: leakedContainers.length,
    leaked_networks: leakedNetworks.length,
    rss_mb_start: Math.round(rssStart * 10) / 10,
    rss_mb_end: Math.round(rssEnd * 10) / 10,
    fds_start: fdsStart,
    fds_end: fdsEnd,
    violations: violations.slice(0, 50),
    duration_s: since(),
  };
  console.log(JSON.stringify(summary));
  return summary.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`[soak] failed: ${(e as Error).stack ?? e}`);
    console.log(JSON.stringify({ ok: false, seed, error: (e as Error).message }));
    process.exit(1);
  },
);
