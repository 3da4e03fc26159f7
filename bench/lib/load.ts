/**
 * Load generators with verified answers. A side is one way to get an input
 * echoed back (through the executor, or straight to the task's port); both
 * sides use an undici Pool with keep-alive, so the client costs the same.
 * An answer that is not exactly the input sent is an error and never counts.
 */
import { request as httpRequest } from "node:http";
import { Pool } from "undici";

export interface Side {
  readonly name: string;
  /** Sends input number `n` and resolves once the verified answer is in; rejects on any mismatch. */
  send(n: number): Promise<void>;
  close(): Promise<void>;
}

const PAD = "x".repeat(64);
/** A unique, JSON-looking input (so the executor has quotes to escape, like a real client's). */
export function inputFor(n: number): string {
  return `{"seq":${n},"pad":"${PAD}"}`;
}

export class VerifyError extends Error {}

export function pool(origin: string, connections: number): Pool {
  return new Pool(origin, {
    connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
}

/** POST / on the executor with a MECA request body; the answer's `msg` must equal the input. */
export function executorSide(
  origin: string,
  intent: Record<string, unknown>,
  connections = 32,
): Side {
  const p = pool(origin, connections);
  return { name: "executor", send: (n) => execute(p, intent, n), close: () => p.close() };
}

/** One verified execute of input `n` with `intent` (`id`, `resource`, ...). */
export async function execute(p: Pool, intent: Record<string, unknown>, n: number): Promise<void> {
  const input = inputFor(n);
  const res = await p.request({
    method: "POST",
    path: "/",
    body: JSON.stringify({ ...intent, input }),
    headers: { "content-type": "application/json" },
  });
  const text = await res.body.text();
  if (res.statusCode !== 200)
    throw new VerifyError(`executor answered ${res.statusCode}: ${text.slice(0, 300)}`);
  const j = JSON.parse(text) as { success?: unknown; msg?: unknown };
  if (j.success !== true || j.msg !== input)
    throw new VerifyError(`executor answered ${text.slice(0, 200)} for ${input}`);
}

/** POST / straight to the task container's published port; the body must equal the input. */
export function directSide(origin: string, connections = 32): Side {
  const p = pool(origin, connections);
  return { name: "direct", send: (n) => echo(p, n), close: () => p.close() };
}

/** One verified echo of input `n` by a task container. */
export async function echo(p: Pool, n: number): Promise<void> {
  const input = inputFor(n);
  const res = await p.request({
    method: "POST",
    path: "/",
    body: input,
    headers: { "content-type": "application/json" },
  });
  const text = await res.body.text();
  if (res.statusCode !== 200 || text !== input)
    throw new VerifyError(`task answered ${res.statusCode} ${text.slice(0, 200)} for ${input}`);
}

let counter = 0;
export const nextSeq = (): number => ++counter;

/** `count` requests one after another; the latency of each, in ms. */
export async function sequential(side: Side, count: number): Promise<number[]> {
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await side.send(nextSeq());
    out[i] = performance.now() - t0;
  }
  return out;
}

export interface Saturation {
  side: string;
  completed: number;
  errors: number;
  firstError?: string;
  elapsedMs: number;
  rps: number;
  latencies: number[];
}

/** `concurrency` clients, each sending its next request as soon as the last was verified, for `durationMs`. */
export async function saturate(
  side: Side,
  o: { concurrency: number; durationMs: number },
): Promise<Saturation> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const deadline = t0 + o.durationMs;
  const worker = async () => {
    while (performance.now() < deadline) {
      const s = performance.now();
      try {
        await side.send(nextSeq());
        latencies.push(performance.now() - s);
      } catch (e) {
        errors++;
        firstError ??= (e as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  const elapsedMs = performance.now() - t0;
  return {
    side: side.name,
    completed: latencies.length,
    errors,
    firstError,
    elapsedMs,
    rps: (latencies.length / elapsedMs) * 1000,
    latencies,
  };
}

/**
 * The MECA host actor's way: Python `requests` without a Session, so a new TCP connection for
 * every request, closed after the answer. node:http with `agent: false` does the same; both
 * sides use it, so the client costs the same.
 */
export function freshConnectionSide(
  name: "executor" | "direct",
  origin: string,
  intent: Record<string, unknown>,
): Side {
  const url = new URL(origin);
  const send = async (n: number) => {
    const input = inputFor(n);
    const body = name === "executor" ? JSON.stringify({ ...intent, input }) : input;
    const { status, text } = await postOnce(url, body);
    if (name === "direct") {
      if (status !== 200 || text !== input)
        throw new VerifyError(`task answered ${status} ${text.slice(0, 200)} for ${input}`);
      return;
    }
    const j = status === 200 ? (JSON.parse(text) as { success?: unknown; msg?: unknown }) : {};
    if (j.success !== true || j.msg !== input)
      throw new VerifyError(`executor answered ${status} ${text.slice(0, 200)} for ${input}`);
  };
  return { name: `${name}, new connection`, send, close: async () => {} };
}

function postOnce(url: URL, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method: "POST",
        path: "/",
        agent: false,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }),
        );
        res.on("error", reject);
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error("No answer within 30 s")));
    req.on("error", reject);
    req.end(body);
  });
}
