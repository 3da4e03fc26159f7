/**
 * The executor under test, as a child process: from source (node --import
 * tsx), from an esbuild bundle, or the packaged binary. Knows its pid (for
 * VmRSS), how long it took from exec to a healthy /health, and how to stop it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { appendFileSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { Pool } from "undici";
import { cpuMs, rssMB } from "./proc.ts";

export type Target = "source" | "bundle" | "bin";

/** What every phase of `npm run bench` that starts executors of its own is given. */
export interface PhaseOptions {
  target: Target;
  /** The checkout whose executor runs. */
  root: string;
  /** The bundle or binary to run (target bundle or bin). */
  file?: string;
  /** Where the phase writes its configs. */
  work: string;
  quick: boolean;
  log: (l: string) => void;
}

export interface ExecutorProcessOptions {
  target: Target;
  root: string;
  config: string;
  /** The bundle (target "bundle") or the binary (target "bin"). */
  file?: string;
  /** Extra node flags (e.g. --cpu-prof); ignored for the binary. */
  nodeFlags?: string[];
  /** The node that runs the source or the bundle (default: the one running the benchmark). */
  node?: string;
  /** The child's environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  logLevel?: string;
  /** Every line it prints goes to this file as well (the soak's record). */
  logFile?: string;
}

export class ExecutorProcess {
  readonly port: number;
  readonly origin: string;
  /** Milliseconds from spawn to the first `{"status":"ok"}` from /health. */
  readonly startMs: number;
  #child: ChildProcess;
  #stderr: string[];
  #exited: Promise<number | null>;

  private constructor(
    child: ChildProcess,
    port: number,
    startMs: number,
    stderr: string[],
    exited: Promise<number | null>,
  ) {
    this.#child = child;
    this.port = port;
    this.origin = `http://127.0.0.1:${port}`;
    this.startMs = startMs;
    this.#stderr = stderr;
    this.#exited = exited;
  }

  static async start(o: ExecutorProcessOptions): Promise<ExecutorProcess> {
    const port = await freePort();
    const args = [
      "--config",
      o.config,
      "--port",
      String(port),
      "--host",
      "127.0.0.1",
      "--log-level",
      o.logLevel ?? "warn",
      "--log-format",
      "json",
    ];
    const [cmd, argv] = command(o, args);
    const t0 = performance.now();
    const child = spawn(cmd, argv, {
      cwd: o.root,
      stdio: ["ignore", "pipe", "pipe"],
      env: o.env ?? process.env,
    });
    const stderr: string[] = [];
    const keep = (d: Buffer) => {
      if (o.logFile) appendFileSync(o.logFile, d);
      stderr.push(d.toString());
      if (stderr.length > 50) stderr.shift();
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    const exited = new Promise<number | null>((resolve) =>
      child.once("exit", (code) => resolve(code)),
    );
    let dead = false;
    void exited.then(() => (dead = true));
    const health = new Pool(`http://127.0.0.1:${port}`, { connections: 1 });
    try {
      for (;;) {
        if (dead) throw new Error(`The executor exited before it was healthy:\n${stderr.join("")}`);
        if (performance.now() - t0 > 30_000)
          throw new Error(`The executor was not healthy within 30 s:\n${stderr.join("")}`);
        try {
          const r = await health.request({ method: "GET", path: "/health" });
          const body = await r.body.text();
          if (r.statusCode === 200 && body.includes('"ok"')) break;
        } catch {
          // not listening yet
        }
        await sleep(2);
      }
    } catch (e) {
      child.kill("SIGKILL");
      throw e;
    } finally {
      await health.destroy();
    }
    return new ExecutorProcess(child, port, performance.now() - t0, stderr, exited);
  }

  get pid(): number {
    return this.#child.pid!;
  }

  /** VmRSS of the executor process in MB. */
  rssMB(): number {
    return rssMB(this.pid);
  }

  /** CPU time (user + system) the executor process has used so far, in ms (10 ms resolution). */
  cpuMs(): number {
    return cpuMs(this.pid);
  }

  /** What it printed last (warn and error logs), for a failure report. */
  get output(): string {
    return this.#stderr.join("");
  }

  /** POST /stop (removes its task containers, exits 0); SIGTERM, then SIGKILL, when it does not go. */
  async stop(timeoutMs = 20_000): Promise<number | null> {
    if (this.#child.exitCode !== null) return this.#child.exitCode;
    const admin = new Pool(this.origin, { connections: 1 });
    try {
      const r = await admin.request({ method: "POST", path: "/stop" });
      await r.body.text();
    } catch {
      this.#child.kill("SIGTERM");
    } finally {
      await admin.destroy();
    }
    const code = await Promise.race([
      this.#exited,
      sleep(timeoutMs).then(() => "timeout" as const),
    ]);
    if (code !== "timeout") return code;
    this.#child.kill("SIGKILL");
    return this.#exited;
  }

  kill(): void {
    if (this.#child.exitCode === null) this.#child.kill("SIGKILL");
  }

  /** kill -9, and its exit. */
  async kill9(): Promise<void> {
    this.kill();
    await this.#exited;
  }
}

function command(o: ExecutorProcessOptions, args: string[]): [string, string[]] {
  const flags = o.nodeFlags ?? [];
  switch (o.target) {
    case "source":
      return [
        o.node ?? process.execPath,
        [...flags, "--import", "tsx", join(o.root, "src/main.ts"), ...args],
      ];
    case "bundle":
      return [o.node ?? process.execPath, [...flags, o.file!, ...args]];
    case "bin":
      if (!o.file || !existsSync(o.file)) throw new Error(`No executor binary at "${o.file}"`);
      return [o.file, args];
  }
}

/** A free TCP port on 127.0.0.1 (bound and released; the executor binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
