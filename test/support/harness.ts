/**
 * An executor in this process over the real Docker engine, for integration
 * tests: the app served by the runtime's real listener (Node's http server
 * under Node, Deno.serve under Deno) on a free loopback port, every request
 * over a real connection, logs kept in memory.
 */
import { fileSchema, type Config } from "../../src/config.ts";
import { LABELS } from "../../src/platform/docker/labels.ts";
import { honoApp } from "../../src/http/app.ts";
import { createHttp, type Serve } from "../../src/http/pipeline.ts";
import type { Listening } from "../../src/http/node-listen.ts";
import { createExecutor } from "../../src/main.ts";
import { memoryLogger } from "../fakes/fake-logger.ts";
import { until } from "./until.ts";

export { until };

export type Harness = Awaited<ReturnType<typeof startExecutor>>;

let counter = 0;

/** Starts an executor with `overrides` on top of the defaults and a unique instance label. */
export async function startExecutor(
  overrides: Partial<Config> = {},
  env: Record<string, string | undefined> = process.env,
) {
  // failure_status "http" unless a test asks otherwise: most tests check whose fault a failure is by
  // its status; the default ("ok") has tests of its own, as MECA's clients read answers.
  const config = fileSchema.parse({
    instance: `test-${process.pid}-${++counter}`,
    failure_status: "http",
    ...overrides,
  });
  const instance = config.instance;
  const logger = memoryLogger();
  const { executor, backend, client, firewall, cpu } = await createExecutor(config, env, logger);
  let stopped = false;
  const { serve } = createHttp({
    executor,
    logger,
    adminToken: config.admin_token || undefined,
    maxBodyBytes: config.max_body_bytes,
    failureStatus: config.failure_status,
    hostFirewall: () => firewall.status(),
    cpuPriority: () => cpu.status,
    onStop: () => {
      stopped = true;
    },
  });
  const listening = await listen(serve);
  const base = `http://127.0.0.1:${listening.port}`;
  await until(() => executor.engineStatus().reachable, "engine reachable");

  /** POST / with a JSON body over the listening server; returns status, parsed body and headers. */
  const execute = async (body: unknown, init: RequestInit = {}) => {
    const res = await fetch(`${base}/`, {
      method: "POST",
      body: typeof body === "string" ? body : JSON.stringify(body),
      ...init,
    });
    return {
      status: res.status,
      body: (await res.json()) as { success: boolean; msg: string; error?: string },
      headers: res.headers,
    };
  };
  const call = async (
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    const type: Record<string, string> =
      body === undefined ? {} : { "content-type": "application/json" };
    const res = await fetch(base + path, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: { ...type, ...headers },
    });
    const text = await res.text();
    return { status: res.status, body: parse(text), text, headers: res.headers };
  };
  /** Containers of this executor instance, as the engine sees them. */
  const containers = () => backend.list({ [LABELS.managed]: "1", [LABELS.instance]: instance });

  return {
    serve,
    base,
    executor,
    backend,
    logger,
    instance,
    firewall,
    cpu,
    execute,
    call,
    containers,
    get stopped() {
      return stopped;
    },
    /** Shuts the executor down and returns what of this instance is still on the engine: containers, then networks. */
    async close() {
      await executor.shutdown();
      await firewall.remove();
      await cpu.remove();
      await listening.close();
      const left: unknown[] = await containers();
      left.push(
        ...(await backend.listNetworks({ [LABELS.managed]: "1", [LABELS.instance]: instance })).map(
          (n) => ({ network: n.name }),
        ),
      );
      await client.close();
      await backend.close();
      return left;
    },
  };
}

/** The runtime's own listener, on a free port of 127.0.0.1. */
async function listen(serve: Serve): Promise<Listening> {
  const at = { port: 0, hostname: "127.0.0.1" };
  if ("Deno" in globalThis)
    return (await import("../../src/http/deno-listen.ts")).listenDeno(honoApp(serve), at);
  return (await import("../../src/http/node-listen.ts")).listenNode(serve, at);
}

function parse(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
