/**
 * Where a process's resident memory goes: Linux's split (pages mapped from
 * files, i.e. the executable's own code and read-only data, against anonymous
 * memory) and, for a Node process started with mem-probe.cjs preloaded, V8's
 * and Node's own figures. Everything in MB.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { sleep } from "./executor-process.ts";

/** The preload, for NODE_OPTIONS="--require <this>". */
export const MEM_PROBE = fileURLToPath(new URL("./mem-probe.cjs", import.meta.url));

export interface MemoryBreakdown {
  rss: number;
  /** Resident pages mapped from files: the node binary's code and read-only data, shared libraries. */
  fileBacked: number;
  anonymous: number;
  /** V8's heap, committed and resident (all spaces). */
  v8Heap: number;
  /** Of the heap, what live and not yet collected objects use. */
  v8HeapUsed: number;
  /** Of the heap, JIT and bytecode handler code (code spaces). */
  v8Code: number;
  /** Memory V8 accounts to JS objects but outside its heap: Buffers, ArrayBuffers. */
  external: number;
  /** Anonymous memory that is neither the heap nor external: malloc by Node, V8 and libuv, thread stacks, WebAssembly (undici's llhttp). */
  rest: number;
}

const MB = 2 ** 20;

/** Linux's split only (any process). */
export function rssSplit(pid: number): { rss: number; fileBacked: number; anonymous: number } {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const kb = (k: string) =>
    Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN) / 1024;
  const rss = kb("Rss");
  const anonymous = kb("Anonymous");
  return { rss, fileBacked: rss - anonymous, anonymous };
}

/** Asks the probe in `pid` for V8's figures (SIGUSR2) and puts them beside Linux's. */
export async function memoryBreakdown(
  pid: number,
  dir: string,
): Promise<MemoryBreakdown | undefined> {
  const file = `${dir}/mem-${pid}.json`;
  rmSync(file, { force: true });
  process.kill(pid, "SIGUSR2");
  for (let i = 0; i < 200 && !existsSync(file); i++) await sleep(10);
  if (!existsSync(file)) return undefined;
  const split = rssSplit(pid);
  const j = JSON.parse(readFileSync(file, "utf8")) as {
    memoryUsage: NodeJS.MemoryUsage;
    heap: { total_physical_size: number; used_heap_size: number };
    spaces: { name: string; physical: number }[];
  };
  const v8Heap = j.heap.total_physical_size / MB;
  const external = j.memoryUsage.external / MB;
  const v8Code =
    j.spaces.filter((s) => s.name.startsWith("code")).reduce((a, s) => a + s.physical, 0) / MB;
  return {
    ...split,
    v8Heap,
    v8HeapUsed: j.heap.used_heap_size / MB,
    v8Code,
    external,
    rest: split.anonymous - v8Heap - external,
  };
}

/** The environment that loads the probe into a Node child (on top of the caller's NODE_OPTIONS). */
export function probeEnv(dir: string, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return {
    ...env,
    MECA_BENCH_MEM_DIR: dir,
    NODE_OPTIONS: `${env.NODE_OPTIONS ?? ""} --require ${MEM_PROBE}`.trim(),
  };
}
