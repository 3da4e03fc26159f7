import { z } from "zod";
import { parse as parseYaml } from "yaml";
import type { EngineSettings, PrewarmEntry, SettingsUpdate } from "./engine/settings.ts";
import type { DockerTaskSettings } from "./platform/docker/task-settings.ts";
import { TASK_SUBNET_BITS } from "./platform/docker/labels.ts";
import { parseCidr } from "./platform/docker/subnets.ts";
import { isWholeTenths, toIntent } from "./engine/task-spec.ts";

/**
 * Configuration: the YAML file (snake_case, every key optional) and the
 * body of POST /update-config. See docs/configuration.md. Loading takes its environment as
 * an argument so tests pass plain objects.
 */

const oneDecimal = (what: string) =>
  z
    .number({ invalid_type_error: `${what} must be a number` })
    .positive(`${what} must be greater than 0`)
    .refine(isWholeTenths, {
      message: `${what} must have at most one decimal (steps of 0.1 core)`,
    });

const positiveInt = (what: string) =>
  z
    .number({ invalid_type_error: `${what} must be a number` })
    .int(`${what} must be a whole number`)
    .positive(`${what} must be greater than 0`);

/** `has_gpu`: a boolean, or 0/1 as the original executor's clients send it. */
const gpuFlag = z.union(
  [z.boolean(), z.literal(0).transform(() => false), z.literal(1).transform(() => true)],
  {
    errorMap: () => ({ message: "has_gpu must be true, false, 0 or 1" }),
  },
);

/** `type`: the engine kind; only Docker is supported, and anything else is refused, not ignored. */
const engineType = z.literal("docker", {
  errorMap: () => ({ message: 'only "docker" is supported' }),
});

/** An IPv4 block that holds at least one task network. */
const subnetPool = z.string().superRefine((v, ctx) => {
  const c = parseCidr(v);
  if ("error" in c) ctx.addIssue({ code: "custom", message: `task_subnet_pool ${c.error}` });
  else if (c.bits > TASK_SUBNET_BITS)
    ctx.addIssue({
      code: "custom",
      message: `task_subnet_pool must hold at least one /${TASK_SUBNET_BITS}`,
    });
});

const wholeMB = (what: string) =>
  z
    .number({ invalid_type_error: `${what} must be a whole number of MB` })
    .int(`${what} must be a whole number of MB`)
    .min(0, `${what} must be 0 or more`);

/** The longest wait any key may set: a week, well inside what a timer can hold (2^31 - 1 ms, 24.8 days). */
export const MAX_SECONDS = 7 * 24 * 3600;

const seconds = (what: string) =>
  z
    .number({ invalid_type_error: `${what} must be a number of seconds` })
    .positive(`${what} must be greater than 0`)
    .max(MAX_SECONDS, `${what} must be at most ${MAX_SECONDS} seconds (a week)`);

/**
 * One task to keep warm: the execute request's own fields (`id`, `resource`, `runtime`,
 * `use_sgx`; the same rules and the same task key), and `count` replicas. Unknown keys are refused.
 */
const prewarmEntry = z
  .object({
    id: z
      .string({
        required_error: "id is required (an image reference)",
        invalid_type_error: "id must be a string (an image reference)",
      })
      .min(1, "id must not be empty"),
    resource: z
      .object({
        cpu: z
          .number({ invalid_type_error: "cpu must be a number" })
          .positive("cpu must be greater than 0")
          .refine(isWholeTenths, "cpu must be in steps of 0.1 core")
          .optional(),
        mem: positiveInt("mem").optional(),
        use_gpu: z.boolean({ invalid_type_error: "use_gpu must be true or false" }).optional(),
        gpu_count: z
          .number({ invalid_type_error: "gpu_count must be a whole number" })
          .int("gpu_count must be a whole number")
          .min(0, "gpu_count must be 0 or more")
          .optional(),
      })
      .strict()
      .optional(),
    runtime: z
      .enum(["", "container", "microVM"], {
        errorMap: () => ({ message: 'runtime must be "", "container" or "microVM"' }),
      })
      .optional(),
    use_sgx: z.boolean({ invalid_type_error: "use_sgx must be true or false" }).optional(),
    count: positiveInt("count").default(1),
  })
  .strict();

export type PrewarmConfig = z.infer<typeof prewarmEntry>;

/** The config's prewarm entries as the engine's: each one's intent, as a request with the same fields gives it. */
export function prewarmEntries(list: readonly PrewarmConfig[]): PrewarmEntry[] {
  return list.map((e) => ({ intent: toIntent(e).intent, count: e.count }));
}

/**
 * Where main.ts placed the tasks, which some settings depend on: each task on a network of its own
 * (`isolated`), all on one named network, or published on 127.0.0.1; and whether the executor runs
 * in a container of its own.
 */
export interface Wiring {
  mode: "isolated" | "network" | "publish";
  network?: string;
  inContainer: boolean;
}

/** What the config file sets: the engine's settings and the Docker task runtime's. */
export type Settings = EngineSettings & DockerTaskSettings;

/**
 * One key of the config file: its rule (with its default), the engine settings it sets, and
 * whether POST /update-config may change it (then `field` is the engine setting it sets, and
 * `shown` how the answer shows that setting's value).
 */
interface Setting<S extends z.ZodTypeAny> {
  schema: S;
  engine?: (v: z.output<S>, w: Wiring) => Partial<Settings>;
  update?: { field: keyof Settings; shown?: (v: never) => unknown };
}

/** A key the engine does not see (the listener's, the log's, the platform's). */
function key<S extends z.ZodTypeAny>(schema: S): Setting<S> {
  return { schema };
}

/** A key that sets one engine setting, as it is or through `to`. */
function field<S extends z.ZodTypeAny, F extends keyof Settings>(
  schema: S,
  name: F,
  o: {
    to?: (v: z.output<S>, w: Wiring) => Settings[F];
    updatable?: boolean;
    shown?: (v: Settings[F]) => unknown;
  } = {},
): Setting<S> {
  return {
    schema,
    engine: (v, w) => ({ [name]: o.to ? o.to(v, w) : v }) as Partial<Settings>,
    update: o.updatable ? { field: name, shown: o.shown as (v: never) => unknown } : undefined,
  };
}

const ms = (seconds: number) => seconds * 1000;

/** Drain default: 30 s on a host; 5 s in a container, so that shutdown fits `docker stop`'s 10 s grace. */
export const DRAIN_SECONDS = { host: 30, container: 5 };

/**
 * Every key of the config file, once (docs/configuration.md). The file's schema, the engine's
 * settings, the body of POST /update-config and its answer are derived from this table.
 */
export const SETTINGS = {
  type: key(engineType.default("docker")),
  timeout: field(
    z
      .number({ invalid_type_error: "timeout must be a number of minutes" })
      .positive("timeout must be greater than 0")
      .max(MAX_SECONDS / 60, `timeout must be at most ${MAX_SECONDS / 60} minutes (a week)`)
      .default(1),
    "idleTimeoutMinutes",
    { updatable: true },
  ),
  cpu: field(oneDecimal("cpu").default(4), "cpu", { updatable: true }),
  mem: field(positiveInt("mem").default(4096), "memMB", { updatable: true }),
  has_gpu: field(gpuFlag.default(false), "hasGpu", { updatable: true }),
  microVM_runtime: field(z.string().default(""), "microVMRuntime", { updatable: true }),
  sgx: field(
    z
      .object({
        enable: z.boolean().default(false),
        sgx_device: z.string().min(1).default("/dev/sgx/enclave"),
        aesmd_path: z.string().min(1).default("/var/run/aesmd"),
      })
      .strict()
      .default({}),
    "sgx",
    { to: (v) => ({ enable: v.enable, device: v.sgx_device, aesmdPath: v.aesmd_path }) },
  ),
  nvml_library: key(z.string().min(1).default("libnvidia-ml.so.1")),
  gpu_idle_percent: field(z.number().min(0).max(100).default(10), "gpuIdlePercent"),
  gpu_sample_interval: field(seconds("gpu_sample_interval").default(2), "gpuSampleIntervalMs", {
    to: ms,
  }),
  /** "auto" (find out where the executor runs), "publish", or a Docker network's name. */
  network: {
    // "" was the earlier spelling of "publish".
    schema: z
      .string()
      .transform((v) => (v === "" ? "publish" : v))
      .default("auto"),
    // What it resolved to (main.ts): a network of each task's own, a shared one, or none.
    engine: (_v: string, w: Wiring) => ({
      network: w.mode === "network" ? w.network! : "",
      isolate: w.mode === "isolated",
    }),
  },
  /** Each task's own network takes a /28 of this block (see docs/isolation.md). */
  task_subnet_pool: field(subnetPool.default("10.201.0.0/16"), "taskSubnetPool"),
  /** Task networks kept created ahead of demand, so that a cold start creates none on its path. */
  task_network_spares: field(
    z
      .number({ invalid_type_error: "task_network_spares must be a whole number" })
      .int("task_network_spares must be a whole number")
      .min(0, "task_network_spares must be 0 or more")
      .max(64, "task_network_spares must be at most 64")
      .default(2),
    "taskNetworkSpares",
  ),
  /** Give each task's network a route out (still none to other tasks). */
  task_egress: field(z.boolean().default(false), "taskEgress"),
  /** Linux capabilities taken from every task container, on top of Docker's defaults. */
  task_cap_drop: field(
    z
      .array(
        z.string().regex(/^[A-Z_]+$/, "task_cap_drop entries are capability names such as NET_RAW"),
      )
      .default(["NET_RAW"]),
    "capDrop",
  ),
  /** Open-files limit (soft and hard) of every task container. */
  task_nofile: field(positiveInt("task_nofile").default(4096), "nofile"),
  /** Most MB a task may write to its own filesystem; 0: unbounded (weaker). See docs/isolation.md, "Threat model". */
  task_disk_mb: field(wholeMB("task_disk_mb").default(1024), "taskDiskMB"),
  /**
   * Where the executor holds task_disk_mb itself: how often it measures each task's layer. A task
   * writing at disk speed gets about interval x its write rate past the bound (docs/isolation.md, "Threat model").
   */
  task_disk_check_interval: field(
    seconds("task_disk_check_interval").default(0.5),
    "diskCheckIntervalMs",
    { to: ms },
  ),
  /** No new task starts while the engine's data root has less free space; 0: no guard. */
  min_free_disk_mb: field(wholeMB("min_free_disk_mb").default(2048), "minFreeDiskMB"),
  /** No task starts, and idle tasks go, while the host's available memory is below this; 0: no guard. */
  min_free_host_mem_mb: field(wholeMB("min_free_host_mem_mb").default(512), "minFreeHostMemMB"),
  /** Drop new connections from task networks to the host's own addresses: auto (where possible), on (or refuse to start), off. */
  task_host_firewall: key(
    z
      .enum(["auto", "on", "off"], {
        errorMap: () => ({ message: 'task_host_firewall must be "auto", "on" or "off"' }),
      })
      .default("auto"),
  ),
  /** What each request used, from the task's cgroup: the Meca-Usage header, GET /requests, GET /usage; see docs/usage.md. */
  usage: field(
    z.boolean({ invalid_type_error: "usage must be true or false" }).default(true),
    "usage",
  ),
  /** Tasks under a parent cgroup of the lowest CPU weight (idle) or at the default weight (normal); see docs/isolation.md. */
  task_cpu_priority: key(
    z
      .enum(["idle", "normal"], {
        errorMap: () => ({ message: 'task_cpu_priority must be "idle" or "normal"' }),
      })
      .default("idle"),
  ),
  admin_token: key(z.string().default("")),
  instance: field(
    z
      .string()
      .regex(/^[a-zA-Z0-9_.-]+$/, "instance must be letters, digits, '_', '.' or '-'")
      .default("default"),
    "instance",
  ),
  ready_timeout: field(seconds("ready_timeout").default(60), "readyTimeoutMs", { to: ms }),
  request_timeout: field(seconds("request_timeout").default(300), "requestTimeoutMs", { to: ms }),
  queue_timeout: field(seconds("queue_timeout").default(30), "queueTimeoutMs", { to: ms }),
  /** Unset: 30 s on a host, 5 s in a container (inside `docker stop`'s 10 s grace). */
  drain_timeout: field(seconds("drain_timeout").optional(), "drainTimeoutMs", {
    to: (v, w) => ms(v ?? (w.inContainer ? DRAIN_SECONDS.container : DRAIN_SECONDS.host)),
  }),
  max_body_bytes: key(positiveInt("max_body_bytes").default(10 * 1024 * 1024)),
  pids_limit: field(positiveInt("pids_limit").default(1024), "pidsLimit"),
  task_concurrency: field(
    z
      .number()
      .int("task_concurrency must be a whole number")
      .min(0, "task_concurrency must be 0 or more")
      .default(0),
    "taskConcurrency",
  ),
  max_replicas: field(
    z
      .number()
      .int("max_replicas must be a whole number")
      .min(0, "max_replicas must be 0 or more")
      .default(0),
    "maxReplicas",
  ),
  no_new_privileges: field(z.boolean().default(true), "noNewPrivileges"),
  allowed_images: field(z.array(z.string().min(1)).default([]), "allowedImages"),
  /** Unset: 127.0.0.1, or every address in a container with a network of its own (main.ts). */
  host: key(z.string().min(1).optional()),
  port: key(z.number().int().min(0).max(65535).default(2591)),
  log_format: key(z.enum(["json", "text", "auto"]).default("auto")),
  log_level: key(z.enum(["debug", "info", "warn", "error"]).default("info")),
  /** How POST / answers a request it understood but could not serve; see docs/api.md, "Statuses". */
  failure_status: key(
    z
      .enum(["ok", "http"], {
        errorMap: () => ({ message: 'failure_status must be "ok" or "http"' }),
      })
      .default("ok"),
  ),
  // Bounds on what clients and tasks may send; see docs/configuration.md, "Limits".
  max_answer_bytes: key(positiveInt("max_answer_bytes").default(16 * 1024 * 1024)),
  max_admin_body_bytes: key(positiveInt("max_admin_body_bytes").default(64 * 1024)),
  max_buffered_input_bytes: key(positiveInt("max_buffered_input_bytes").default(256 * 1024 * 1024)),
  max_connections: key(positiveInt("max_connections").default(512)),
  headers_timeout: key(seconds("headers_timeout").default(30)),
  /** Time a client has to send a whole request, headers and body; past it, 408 and the connection closes (Node). */
  request_read_timeout: key(seconds("request_read_timeout").default(60)),
  idle_timeout: key(seconds("idle_timeout").default(5)),
  task_log_max_size: key(
    z
      .string()
      .regex(/^[1-9][0-9]*[kmg]?$/, 'task_log_max_size must be a size such as "10m" (k, m or g)')
      .default("10m"),
  ),
  task_log_max_file: key(positiveInt("task_log_max_file").default(3)),
  allowed_origins: key(z.array(z.string().min(1)).default([])),
  /** When to pull a task's image; see docs/configuration.md, "Images". */
  pull_policy: field(
    z
      .enum(["missing", "never", "always"], {
        errorMap: () => ({ message: 'pull_policy must be "missing", "never" or "always"' }),
      })
      .default("missing"),
    "pullPolicy",
  ),
  /** A pull's bounds: seconds in all, and seconds without any progress. */
  pull_timeout: field(seconds("pull_timeout").default(3600), "pullTimeoutMs", { to: ms }),
  pull_stall_timeout: field(seconds("pull_stall_timeout").default(120), "pullStallTimeoutMs", {
    to: ms,
  }),
  /** A stop leaves ready tasks for the next start of the same instance to adopt; see docs/configuration.md, "Restarts". */
  keep_tasks_on_stop: field(
    z.boolean({ invalid_type_error: "keep_tasks_on_stop must be true or false" }).default(false),
    "keepTasksOnStop",
  ),
  /** Tasks kept warm from start-up; see docs/configuration.md, "Prewarm". */
  prewarm: field(
    z.array(prewarmEntry, { invalid_type_error: "prewarm must be a list of tasks" }).default([]),
    "prewarm",
    // The answer of update-config says the list by its length: its entries are what was sent.
    { to: prewarmEntries, updatable: true, shown: (v) => v.length },
  ),
};

type Table = typeof SETTINGS;

/** A row of the table, whatever its schema (`engine` is called with that schema's output). */
interface AnySetting {
  schema: z.ZodTypeAny;
  engine?: (v: never, w: Wiring) => Partial<Settings>;
  update?: { field: keyof Settings; shown?: (v: never) => unknown };
}
const ROWS = Object.entries(SETTINGS) as [keyof Table, AnySetting][];
const engineOf = (r: AnySetting) =>
  r.engine as ((v: unknown, w: Wiring) => Partial<Settings>) | undefined;

function schemas<T extends Record<string, { schema: z.ZodTypeAny }>>(
  t: T,
): { [K in keyof T]: T[K]["schema"] } {
  return Object.fromEntries(Object.entries(t).map(([k, r]) => [k, r.schema])) as {
    [K in keyof T]: T[K]["schema"];
  };
}

export const fileSchema = z.object(schemas(SETTINGS)).strict();

export type Config = z.infer<typeof fileSchema>;

/** Body of POST /update-config: the original keys, any subset; `type` as the seed's README sends it. */
/** The keys POST /update-config may change. */
const UPDATABLE = ROWS.flatMap(([k, r]) =>
  r.update ? [{ key: k, row: r, update: r.update }] : [],
);

/** Body of POST /update-config: any subset of the keys the table marks updatable; `type` as the seed's README sends it. */
export const updateSchema = z
  .object({
    type: engineType.optional(),
    ...Object.fromEntries(
      UPDATABLE.map(({ key: k, row: r }) => [
        k,
        (r.schema instanceof z.ZodDefault ? r.schema.removeDefault() : r.schema).optional(),
      ]),
    ),
  })
  .strict();

export type ConfigUpdate = { [K in keyof Table]?: z.output<Table[K]["schema"]> } & {
  type?: "docker";
};

/** The config file's keys as the engine's and the runtime's settings, given where main.ts placed the tasks. */
export function engineSettings(c: Config, w: Wiring): Settings {
  const out: Partial<Settings> = {};
  for (const [k, r] of ROWS) Object.assign(out, engineOf(r)?.(c[k], w));
  return out as Settings;
}

/** An update-config body as the engine's settings update (updatable keys need no wiring). */
export function settingsUpdate(u: ConfigUpdate): SettingsUpdate {
  const out: Partial<EngineSettings> = {};
  for (const { key: k, row: r } of UPDATABLE) {
    const v = u[k];
    if (v !== undefined)
      Object.assign(out, engineOf(r)!(v, { mode: "publish", inContainer: false }));
  }
  return out;
}

/**
 * The answer of update-config in the file's terms: every updatable key's value now, and what
 * changed (`changed` is keyed by engine setting, as Executor.updateConfig gives it).
 */
export function updateAnswer(
  s: EngineSettings,
  changed: Partial<Record<keyof EngineSettings, { from: unknown; to: unknown }>>,
): { config: Record<string, unknown>; changed: Record<string, { from: unknown; to: unknown }> } {
  const config: Record<string, unknown> = {};
  const diff: Record<string, { from: unknown; to: unknown }> = {};
  for (const { key: k, update: u } of UPDATABLE) {
    const shown = (v: unknown) => (u.shown ? u.shown(v as never) : v);
    // An updatable key sets an engine setting (the runtime's are fixed at start).
    const f = u.field as keyof EngineSettings;
    config[k] = shown(s[f]);
    const c = changed[f];
    if (c) diff[k] = { from: shown(c.from), to: shown(c.to) };
  }
  return { config, changed: diff };
}

/** What `Authorization: Bearer <token>` can carry (RFC 6750 b64token), as the admin guard matches it. */
export const BEARER_TOKEN = /^[A-Za-z0-9._~+/-]+=*$/;

export class ConfigError extends Error {
  readonly code = "CONFIG_INVALID";
}

/** Formats zod issues as `key.path: reason`, one per line. */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const path = i.path.join(".");
      if (i.code === "unrecognized_keys") {
        return i.keys.map((k) => `${path ? `${path}.` : ""}${k}: unknown key`).join("; ");
      }
      return `${path || "(root)"}: ${i.message}`;
    })
    .join("; ");
}

export interface ConfigSource {
  /** The --config flag, if given. */
  flag?: string;
  env: Record<string, string | undefined>;
  readFile(path: string): string;
  exists(path: string): boolean;
}

/** The seed's path, then the desktop app's: the first present one is read. */
export const DEFAULT_CONFIG_PATHS = [
  "/app/meca_executor.yaml",
  "/app/mecanywhere_executor.yaml",
] as const;

/**
 * Where the config comes from: --config, else MECA_EXECUTOR_CONFIG, else the first of
 * /app/meca_executor.yaml and /app/mecanywhere_executor.yaml that is present, else none.
 */
export function configPath(src: ConfigSource): string | undefined {
  if (src.flag) return src.flag;
  if (src.env.MECA_EXECUTOR_CONFIG) return src.env.MECA_EXECUTOR_CONFIG;
  return DEFAULT_CONFIG_PATHS.find((p) => src.exists(p));
}

/** Loads and validates the config; throws ConfigError naming the file, the key and the reason. */
export function loadConfig(src: ConfigSource): { config: Config; path?: string } {
  const path = configPath(src);
  let raw: unknown = {};
  if (path !== undefined) {
    let text: string;
    try {
      text = src.readFile(path);
    } catch (cause) {
      throw new ConfigError(`Cannot read config "${path}": ${(cause as Error).message}`, { cause });
    }
    try {
      raw = parseYaml(text) ?? {};
    } catch (cause) {
      throw new ConfigError(`Cannot parse config "${path}": ${(cause as Error).message}`, {
        cause,
      });
    }
    if (typeof raw !== "object" || Array.isArray(raw)) {
      throw new ConfigError(`Invalid config "${path}": the file must hold a mapping of keys`);
    }
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      `Invalid config "${path ?? "(defaults)"}": ${formatIssues(parsed.error)}`,
    );
  }
  const config = parsed.data;
  if (src.env.MECA_ADMIN_TOKEN) config.admin_token = src.env.MECA_ADMIN_TOKEN;
  if (config.admin_token !== "" && !BEARER_TOKEN.test(config.admin_token)) {
    throw new ConfigError(
      `Invalid admin_token${src.env.MECA_ADMIN_TOKEN ? " (from MECA_ADMIN_TOKEN)" : ""}: a bearer token may hold only letters, digits and - . _ ~ + /, with = at the end`,
    );
  }
  if (src.env.MECA_NVML_LIBRARY) config.nvml_library = src.env.MECA_NVML_LIBRARY;
  return { config, path };
}
