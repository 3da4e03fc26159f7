/**
 * meca-executor's entry: the one place that knows every layer. Loads the
 * config, builds the platform parts, hands them to the engine, mounts the
 * routes and listens.
 */
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import pkg from "../package.json" with { type: "json" };
import { ConfigError, engineSettings, loadConfig, type Config } from "./config.ts";
import { BadRequestError } from "./engine/errors.ts";
import { Executor } from "./engine/executor.ts";
import type { Logger, TaskClient } from "./engine/ports.ts";
import { createHttp, type Serve } from "./http/pipeline.ts";
import type { Listening } from "./http/node-listen.ts";
import { createLogger } from "./logger.ts";
import { systemClock } from "./platform/clock.ts";
import { createDockerBackend } from "./platform/docker/create-backend.ts";
import { registryAuth } from "./platform/docker/registry-auth.ts";
import { detectPlacement, type Placement } from "./platform/docker/placement.ts";
import type { StorageInfo } from "./platform/docker/storage.ts";
import { DockerDisk, visibleDataRoot } from "./platform/docker/task-disk.ts";
import { DockerTasks } from "./platform/docker/docker-tasks.ts";
import { setupTaskParent, type CpuPriorityStatus } from "./platform/docker/cpu-priority.ts";
import { firewallPlace, HostFirewall, type FirewallStatus } from "./platform/host-firewall.ts";
import { hostRoutes, poolConflict } from "./platform/docker/subnet-pool.ts";
import { SystemHostProbe } from "./platform/host.ts";
import { FetchTaskClient } from "./platform/fetch-task-client.ts";
import { loadNvml } from "./platform/nvml.ts";
import { startIdleGc } from "./platform/idle-gc.ts";
import { createTaskClient } from "./platform/task-client.ts";
import { probeConnect } from "./platform/connect-probe.ts";

const HELP = `meca-executor ${pkg.version}: runs MECA task images as warm Docker containers

Usage:
  meca-executor [serve] [flags]     run the executor (default)
  meca-executor doctor [flags]      report what this host can do
  meca-executor health [flags]      exit 0 when the executor on this host answers GET /health (for HEALTHCHECK)
  meca-executor --version | --help

Flags:
  --config FILE        YAML config (also -config FILE); default: $MECA_EXECUTOR_CONFIG, else the first
                       of /app/meca_executor.yaml and /app/mecanywhere_executor.yaml that exists, else built-in defaults
  --port N             listen port (default 2591, or "port" in the config)
  --host ADDR          listen address (default "host" in the config; unset: 127.0.0.1, or every
                       address in a container with a network of its own)
  --log-format FORMAT  json | text (default: text on a terminal, json otherwise)
  --log-level LEVEL    debug | info | warn | error (default info)
  --json               doctor: print the report as JSON
`;

type Env = Record<string, string | undefined>;

export async function main(argv: string[], env: Env): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv.map(goFlag),
      allowPositionals: true,
      options: {
        config: { type: "string" },
        port: { type: "string" },
        host: { type: "string" },
        "log-format": { type: "string" },
        "log-level": { type: "string" },
        json: { type: "boolean" },
        version: { type: "boolean", short: "v" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values: flags, positionals } = args;
  if (flags.version) {
    console.log(pkg.version);
    return 0;
  }
  if (flags.help) {
    console.log(HELP);
    return 0;
  }
  const command = positionals[0] ?? "serve";
  if (command !== "serve" && command !== "doctor" && command !== "health") {
    console.error(`Unknown command "${command}"\n\n${HELP}`);
    return 2;
  }

  let config: Config;
  let configFile: string | undefined;
  try {
    ({ config, path: configFile } = loadConfig({
      flag: flags.config,
      env,
      readFile: (p) => readFileSync(p, "utf8"),
      exists: existsSync,
    }));
    if (flags.port !== undefined) config.port = parsePort(flags.port);
    if (flags.host !== undefined) config.host = flags.host;
    if (flags["log-format"] !== undefined)
      config.log_format = oneOf(flags["log-format"], ["json", "text", "auto"], "--log-format");
    if (flags["log-level"] !== undefined)
      config.log_level = oneOf(
        flags["log-level"],
        ["debug", "info", "warn", "error"],
        "--log-level",
      );
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      return 2;
    }
    throw e;
  }
  const format =
    config.log_format === "auto" ? (process.stderr.isTTY ? "text" : "json") : config.log_format;
  const logger = createLogger({ format, level: config.log_level });

  if (command === "doctor") {
    const { runDoctor } = await import("./doctor.ts");
    return runDoctor({ config, configFile, env, json: flags.json === true });
  }
  if (command === "health") {
    const { checkHealth } = await import("./health.ts");
    return checkHealth({ host: config.host, port: config.port });
  }
  return serve(config, configFile, env, logger);
}

/** The original executor's Go-style `-config FILE` is `--config FILE` here. */
function goFlag(arg: string): string {
  return arg === "-config" || arg.startsWith("-config=") ? `-${arg}` : arg;
}

async function serve(
  config: Config,
  configFile: string | undefined,
  env: Env,
  logger: Logger,
): Promise<number> {
  const log = logger.child({ component: "main" });
  log.info("Starting meca-executor", {
    version: pkg.version,
    config: configFile ?? "(built-in defaults)",
  });
  const { executor, backend, client, placement, storage, disk, firewall, cpu } =
    await createExecutor(config, env, logger);
  log.info("Task network", {
    mode: placement.mode,
    network: placement.network,
    reason: placement.reason,
  });
  logFirewall(log, firewall.status());
  logCpuPriority(log, cpu.status);
  await logDisk(log, { config, storage, disk, heldBy: executor.diskStatus().held_by });
  const hosts = listenAddresses(config.host, placement);
  const http = createHttp({
    executor,
    logger,
    adminToken: config.admin_token || undefined,
    maxBodyBytes: config.max_body_bytes,
    maxAdminBodyBytes: config.max_admin_body_bytes,
    maxBufferedInputBytes: config.max_buffered_input_bytes,
    allowedOrigins: config.allowed_origins,
    // Where any listener is beyond loopback the Host is not checked (see the origin guard).
    listenHost: hosts.find((h) => !isLoopback(h)) ?? hosts[0],
    accessLog: config.log_level === "debug",
    failureStatus: config.failure_status,
    onStop: () => void stop("POST /stop"),
    placement: { mode: placement.mode, network: placement.network, reason: placement.reason },
    hostFirewall: () => firewall.status(),
    cpuPriority: () => cpu.status,
  });
  if (!config.admin_token && !hosts.every(isLoopback)) {
    log.warn(
      "No admin_token is set and the executor listens beyond loopback: anyone who reaches it can pause or stop it",
      { hosts },
    );
  }
  const listening: Listening = await listenAll(http.serve, {
    hosts,
    port: config.port,
    config,
    logger: logger.child({ component: "http" }),
  });
  log.info("Listening", { hosts, port: listening.port });
  if (config.prewarm.length > 0) void warmOwnPath(client, ownOrigin(hosts[0]!, listening.port));
  // Every answered request counts, not only those a task served: a burst of refused 9 MiB bodies
  // leaves as much behind as a burst of answered ones.
  const stopIdleGc = startIdleGc({ served: () => executor.metrics.executed.value });

  let stopping: Promise<void> | undefined;
  const stop = (why: string) =>
    (stopping ??= (async () => {
      log.info(
        config.keep_tasks_on_stop
          ? "Stopping: draining, keeping ready tasks for the next start"
          : "Stopping: removing every task container",
        { reason: why },
      );
      stopIdleGc();
      const kept = await executor.shutdown();
      // Tasks kept for the next start stay behind the host firewall rule; that start takes it over.
      if (kept === 0) {
        await firewall.remove();
        await cpu.remove();
      }
      await listening.close();
      await client.close();
      await backend.close();
      log.info("Stopped");
      process.exit(0);
    })());
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => void stop(sig));
  return new Promise<number>(() => {}); // runs until stopped
}

/**
 * With prewarm entries, the first request of a prewarmed key should cost what a warm one does: the
 * executor reads its own /health once through the tasks' HTTP client (its connection set-up and
 * response parser are then compiled and warm). Nothing reaches a task.
 */
async function warmOwnPath(client: TaskClient, origin: string): Promise<void> {
  try {
    await client.send({
      method: "GET",
      endpoint: origin,
      path: "/health",
      signal: AbortSignal.timeout(2_000),
    });
  } catch {
    // a warm-up only
  } finally {
    client.forget(origin);
  }
}

/** Where this process reaches its own first listener. */
export function ownOrigin(host: string, port: number): string {
  if (host === "0.0.0.0" || host === "::") return `http://127.0.0.1:${port}`;
  return host.includes(":") ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}

/** The platform parts for this runtime, handed to the engine. */
export async function createExecutor(config: Config, env: Env, logger: Logger) {
  const backend = await createDockerBackend(env, {
    taskLog: { maxSize: config.task_log_max_size, maxFile: config.task_log_max_file },
    // Pulls carry the credentials of the Docker client's own config, as `docker pull` would.
    registryAuth: registryAuth({ env, logger }),
  });
  const placement = await detectPlacement({
    setting: config.network,
    inspect: (ref) => backend.inspectJson(ref),
  });
  if (placement.mode === "isolated") {
    // Without an engine yet, the routes are checked now and the engine checks each create.
    const networks = await backend.listNetworks({}).catch(() => []);
    const conflict = poolConflict(config.task_subnet_pool, networks, hostRoutes());
    if (conflict) throw new ConfigError(`Cannot use task_subnet_pool: ${conflict}`);
  }
  // Under Deno the task client is its own fetch, not undici pools (docs/architecture.md).
  const maxAnswerBytes = config.max_answer_bytes;
  const client =
    "Deno" in globalThis
      ? new FetchTaskClient({ maxAnswerBytes })
      : // Undici's own waits are a backstop behind the engine's request timer, never a race with it:
        // at the same length either could fire first, and a 504 would name the wrong bound.
        createTaskClient({ maxAnswerBytes, answerTimeout: config.request_timeout * 1000 + 5_000 });
  const firewall = await HostFirewall.install({
    setting: config.task_host_firewall,
    instance: config.instance,
    place: firewallPlace(placement, env, config.task_egress),
    logger,
  });
  const storage = await backend
    .probeStorage()
    .catch((e: unknown) => ({ error: (e as Error).message }));
  const disk = new DockerDisk(backend, {
    dataRoot: "error" in storage ? undefined : visibleDataRoot(storage.dataRoot),
  });
  const cgroups = await backend.cgroups().catch(() => ({ driver: "cgroupfs", version: "1" }));
  const cpu = await setupTaskParent({
    priority: config.task_cpu_priority,
    instance: config.instance,
    driver: cgroups.driver,
    version: cgroups.version,
    inContainer: placement.self !== undefined,
    logger,
  });
  const settings = {
    ...engineSettings(config, {
      mode: placement.mode,
      network: placement.network,
      inContainer: placement.self !== undefined,
    }),
    cgroupParent: cpu.status.parent,
    cgroupDriver: cgroups.driver,
    cgroupVersion: cgroups.version,
  };
  const runtime = new DockerTasks({
    backend,
    clock: systemClock,
    logger,
    settings,
    // Joins each task's network to call it by name; with host networking it calls addresses instead.
    selfContainer:
      placement.mode === "isolated" && placement.ownNetwork ? placement.self?.id : undefined,
  });
  const executor = await Executor.create({
    runtime,
    client,
    host: new SystemHostProbe(),
    clock: systemClock,
    logger,
    settings,
    loadGpu: () => loadNvml({ library: config.nvml_library, logger }),
    disk,
    probe: probeConnect,
  }).catch(async (e: unknown) => {
    await firewall.remove();
    await cpu.remove();
    // A prewarm entry that can never be served is the config's fault, named as such.
    if (e instanceof BadRequestError && e.field?.startsWith("prewarm"))
      throw new ConfigError(`Invalid config: ${e.message}`);
    throw e;
  });
  return { executor, backend, client, placement, storage, disk, firewall, cpu };
}

/** One start-up line on the tasks' CPU priority, with the operator's command where the executor could not set it. */
function logCpuPriority(log: Logger, s: CpuPriorityStatus): void {
  const fields = { ...s };
  if (s.state === "set" || s.state === "normal") log.info("Task CPU priority", fields);
  else
    log.warn(
      "Task CPU priority: the tasks' parent cgroup does not have the lowest weight; run the command once as root on the host",
      fields,
    );
}

/** One start-up line on whether the host's addresses are closed to tasks, with the operator's command where they are not. */
function logFirewall(log: Logger, s: FirewallStatus): void {
  const fields = {
    task_host_firewall: s.task_host_firewall,
    state: s.state,
    detail: s.detail,
    ...(s.command ? { command: s.command } : {}),
  };
  if (s.state === "closed")
    log.info("Host firewall: the host's addresses are closed to tasks", fields);
  else if (s.task_host_firewall === "off")
    log.warn("Host firewall: off: tasks can connect to the host's services", fields);
  else
    log.warn(
      "Host firewall: the host's addresses are not closed to tasks by this executor; run the command once as root on the host",
      fields,
    );
}

/** One start-up line on the task disk bound (who holds it, and why) and one on the data root's free space. */
async function logDisk(
  log: Logger,
  o: { config: Config; storage: StorageInfo | { error: string }; disk: DockerDisk; heldBy: string },
): Promise<void> {
  const { config: c, storage } = o;
  const why =
    "error" in storage
      ? `cannot read the storage driver (${storage.error}); the executor measures each task's layer`
      : storage.reason;
  const fields = {
    task_disk_mb: c.task_disk_mb,
    held_by: o.heldBy,
    reason: why,
    check_interval_s: c.task_disk_check_interval,
  };
  if (c.task_disk_mb === 0)
    log.warn("Task disk: unbounded (task_disk_mb: 0): a task can fill the engine's disk", fields);
  else log.info("Task disk", fields);
  const free = await o.disk.freeMB();
  if (free === undefined) {
    const root = "error" in storage ? "(unknown)" : storage.dataRoot;
    log.warn(
      "Cannot see the free space of the engine's data root from here: min_free_disk_mb is not enforced",
      { data_root: root },
    );
  } else if (c.min_free_disk_mb > 0 && free < c.min_free_disk_mb) {
    log.warn(
      "The engine's data root is short of free space: no task starts until it has min_free_disk_mb",
      { free_mb: free, min_free_disk_mb: c.min_free_disk_mb },
    );
  } else log.info("Engine disk", { free_mb: free, min_free_disk_mb: c.min_free_disk_mb });
}

/**
 * Where the API listens. An explicit `host` (or --host) wins. Else, in a container with a network
 * of its own: loopback and the container's address on each network it was started on, never
 * 0.0.0.0, so that nothing on a task's network (which the executor joins later) can connect;
 * else loopback alone (bare host, host networking). See docs/architecture.md, "Isolation".
 */
export function listenAddresses(
  host: string | undefined,
  placement: Pick<Placement, "ownNetwork" | "self">,
): string[] {
  if (host !== undefined) return [host];
  if (!placement.ownNetwork || placement.self === undefined) return ["127.0.0.1"];
  return ["127.0.0.1", ...placement.self.networks.map((n) => n.ip).filter((ip) => ip !== "")];
}

/** One listener per address, all on one port (the first listener's, when `port` is 0). */
async function listenAll(
  serve: Serve,
  at: { hosts: string[]; port: number; config: Config; logger: Logger },
): Promise<Listening> {
  const c = at.config;
  const bounds = {
    maxConnections: c.max_connections,
    headersTimeoutMs: c.headers_timeout * 1000,
    idleTimeoutMs: c.idle_timeout * 1000,
    requestReadTimeoutMs: c.request_read_timeout * 1000,
    logger: at.logger,
  };
  const one = (hostname: string, port: number): Promise<Listening> =>
    "Deno" in globalThis
      ? Promise.all([import("./http/deno-listen.ts"), import("./http/app.ts")]).then(([m, a]) =>
          m.listenDeno(a.honoApp(serve), { port, hostname }),
        )
      : import("./http/node-listen.ts").then((m) =>
          m.listenNode(serve, { port, hostname, ...bounds }),
        );
  const listeners: Listening[] = [];
  try {
    for (const host of at.hosts) listeners.push(await one(host, listeners[0]?.port ?? at.port));
  } catch (e) {
    await Promise.all(listeners.map((l) => l.close()));
    throw e;
  }
  return {
    port: listeners[0]!.port,
    close: async () => void (await Promise.all(listeners.map((l) => l.close()))),
  };
}

function parsePort(s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new ConfigError(`Invalid --port "${s}": must be a whole number from 0 to 65535`);
  return n;
}

function oneOf<T extends string>(s: string, allowed: readonly T[], flag: string): T {
  if (!(allowed as readonly string[]).includes(s))
    throw new ConfigError(`Invalid ${flag} "${s}": must be one of ${allowed.join(", ")}`);
  return s as T;
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host.startsWith("127.") || host === "::1";
}

if (import.meta.main ?? import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2), process.env).then(
    (code) => process.exit(code),
    (e) => {
      console.error(`meca-executor failed: ${(e as Error).message}`);
      process.exit(1);
    },
  );
}
