/**
 * Requests as real MECA traffic sends them, where the executor has had no
 * time to warm up: the first minute after start-up (the warm requests that
 * follow the first cold start), and a new connection per request.
 * Executor and direct requests alternate one by one, so both sides see the
 * same moment of the machine.
 */
import { sequential, type Side } from "./load.ts";
import { percentile } from "./stats.ts";

export interface PairedLatency {
  count: number;
  executor: { p50: number; p99: number };
  direct: { p50: number; p99: number };
}

/** `count` requests per side, alternating executor, direct, executor, ... */
export async function alternating(ex: Side, di: Side, count: number): Promise<PairedLatency> {
  const e: number[] = [];
  const d: number[] = [];
  for (let i = 0; i < count; i++) {
    e.push(...(await sequential(ex, 1)));
    d.push(...(await sequential(di, 1)));
  }
  const stat = (xs: number[]) => ({ p50: percentile(xs, 50), p99: percentile(xs, 99) });
  return { count, executor: stat(e), direct: stat(d) };
}
