/**
 * An executor in this process over the real Docker engine, for integration
 * tests: HTTP through `app.request()`, logs kept in memory.
 */
import { fileSchema, type Config } from "../../src/config.ts";
import { LABELS } from "../../src/engine/settings.ts";
import { createApp } from "../../src/http/app.ts";
import { createExecutor } from "../../src/main.ts";
import { memoryLogger } from "../fakes/fake-logger.ts";

export type Harness = Awaited<ReturnType<typeof startExecutor>>;

let counter = 0;

/** Starts an executor with `overrides` on top of the defaults and a unique instance label. */
export async function startExecutor(overrides: Partial<Config> = {}, env: Record<string, string | undefined> = process.env) {
  const config = fileSchema.parse({ instance: `test-${process.pid}-${++counter}`, ...overrides });
  const instance = config.instance;
  const logger = memoryLogger();
  const { executor, backend, client } = await createExecutor(config, env, logger);
  let stopped = false;
  const app = createApp({
    executor,
    logger,
    adminToken: config.admin_token || undefined,
    maxBodyBytes: config.max_body_bytes,
    onStop: () => {
      stopped = true;
    },
  });
  await until(() => executor.engineStatus().reachable, "engine reachable");

  /** POST / with a JSON body; returns status, parsed body and headers. */
  const execute = async (body: unknown, init: RequestInit = {}) => {
    const res = await app.request("/", { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body), ...init });
    return { status: res.status, body: (await res.json()) as { success: boolean; msg: string; error?: string }, headers: res.headers };
  };
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const type: Record<string, string> = body === undefined ? {} : { "content-type": "application/json" };
    const res = await app.request(path, { method, body: body === undefined ? undefined : JSON.stringify(body), headers: { ...type, ...headers } });
    return { status: res.status, body: (await res.json()) as any, headers: res.headers };
  };
  /** Containers of this executor instance, as the engine sees them. */
  const containers = () => backend.list({ [LABELS.managed]: "1", [LABELS.instance]: instance });

  return {
    app,
    executor,
    backend,
    logger,
    instance,
    execute,
    call,
    containers,
    get stopped() {
      return stopped;
    },
    /** Shuts the executor down and returns the containers of this instance still on the engine. */
    async close() {
      await executor.shutdown();
      const left = await containers();
      await client.close();
      await backend.close();
      return left;
    },
  };
}

/** Polls `cond` every 50 ms until it holds, failing after `timeoutMs`. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
