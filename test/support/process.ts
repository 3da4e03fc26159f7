/** The executor as a child process, run from source with tsx, for tests of the CLI and signals. */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { until } from "./harness.ts";

export interface ExecutorProcess {
  child: ChildProcess;
  port: number;
  base: string;
  output(): string;
  exited: Promise<number | null>;
  post(
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: any; headers: Headers }>;
  get(path: string): Promise<{ status: number; body: any }>;
}

/**
 * The executor from source in this very process tree: node with tsx's loader, not the tsx CLI,
 * which would run it in a child of its own where a signal to the wrapper would not reach it.
 */
const NODE = process.execPath;
/** As the executable runs it: with `gc` for the collection once requests stop (src/platform/idle-gc.ts). */
const FROM_SOURCE = ["--expose-gc", "--import", "tsx", "src/main.ts"];

/** Runs the CLI to completion and returns its exit code and output. */
export function runCli(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(NODE, [...FROM_SOURCE, ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("exit", (code) => resolve({ code, out }));
  });
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.once("error", reject);
  });
}

/** Starts `meca-executor serve` on a free port and waits until it listens. */
export async function spawnExecutor(
  args: string[] = [],
  env: Record<string, string | undefined> = {},
): Promise<ExecutorProcess> {
  const port = await freePort();
  const child = spawn(
    NODE,
    [
      ...FROM_SOURCE,
      "--port",
      String(port),
      "--host",
      "127.0.0.1",
      "--log-format",
      "json",
      ...args,
    ],
    {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const base = `http://127.0.0.1:${port}`;
  const p: ExecutorProcess = {
    child,
    port,
    base,
    output: () => out,
    exited,
    async post(path, body, headers = {}) {
      const type: Record<string, string> =
        body === undefined ? {} : { "content-type": "application/json" };
      const res = await fetch(base + path, {
        method: "POST",
        body: body === undefined ? undefined : JSON.stringify(body),
        headers: { ...type, ...headers },
      });
      return { status: res.status, body: await res.json(), headers: res.headers };
    },
    async get(path) {
      const res = await fetch(base + path);
      return { status: res.status, body: await res.json() };
    },
  };
  let gone = false;
  void exited.then(() => (gone = true));
  const answers = () =>
    fetch(`${base}/health`).then(
      () => true,
      () => false,
    );
  await until(async () => gone || (await answers()), "executor listening", 30_000);
  if (gone) throw new Error(`Executor exited at start-up:\n${out}`);
  return p;
}
