/** The reference forwarder (floor-forwarder.mjs) as a child process, on the node build the executor runs on. */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { freePort } from "./executor-process.ts";
import { probeEnv } from "./memory.ts";
import { cpuMs, rssMB } from "./proc.ts";

export class FloorProcess {
  readonly origin: string;
  #child: ChildProcess;

  private constructor(child: ChildProcess, port: number) {
    this.#child = child;
    this.origin = `http://127.0.0.1:${port}`;
  }

  /** `node` runs it (with the executable's flags, `nodeFlags`); the memory probe writes to `memDir`. */
  static async start(
    taskOrigin: string,
    node = process.execPath,
    memDir?: string,
    nodeFlags: readonly string[] = [],
  ): Promise<FloorProcess> {
    const port = await freePort();
    const script = fileURLToPath(new URL("./floor-forwarder.mjs", import.meta.url));
    // undici resolves from this checkout's node_modules, wherever `node` lives.
    const env = memDir ? probeEnv(memDir) : process.env;
    const child = spawn(node, [...nodeFlags, script, String(port), taskOrigin], {
      stdio: ["ignore", "pipe", "inherit"],
      env,
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error("The reference forwarder did not listen within 10 s")),
        10_000,
      );
      child.once("exit", (code) =>
        reject(new Error(`The reference forwarder exited with ${code}`)),
      );
      child.stdout!.once("data", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    return new FloorProcess(child, port);
  }

  get pid(): number {
    return this.#child.pid!;
  }

  rssMB(): number {
    return rssMB(this.pid);
  }

  cpuMs(): number {
    return cpuMs(this.pid);
  }

  stop(): void {
    if (this.#child.exitCode === null) this.#child.kill("SIGTERM");
  }
}
