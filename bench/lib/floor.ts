/** The reference forwarder (floor-forwarder.mjs) as a child process on the node running the benchmark. */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { freePort } from "./executor-process.ts";
import { cpuMs, rssMB } from "./proc.ts";

export class FloorProcess {
  readonly origin: string;
  #child: ChildProcess;

  private constructor(child: ChildProcess, port: number) {
    this.#child = child;
    this.origin = `http://127.0.0.1:${port}`;
  }

  static async start(taskOrigin: string): Promise<FloorProcess> {
    const port = await freePort();
    const script = fileURLToPath(new URL("./floor-forwarder.mjs", import.meta.url));
    const child = spawn(process.execPath, [script, String(port), taskOrigin], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("The reference forwarder did not listen within 10 s")), 10_000);
      child.once("exit", (code) => reject(new Error(`The reference forwarder exited with ${code}`)));
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
