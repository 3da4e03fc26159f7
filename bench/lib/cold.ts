/**
 * Cold starts, both sides: the executor given a fresh task key (so it must
 * create, start and wait for a container), and the same container made by
 * hand with raw Engine API calls (with isolation, a network of its own first;
 * create with the executor's own create body, start, follow the log to the
 * mark, find its address, answer the first request).
 * Each timing ends with a verified answer.
 */
import { Pool } from "undici";
import type { ContainerSpec } from "../../src/platform/docker/backend.ts";
import { toCreateBody } from "../../src/platform/docker/container-json.ts";
import { echo, execute, nextSeq } from "./load.ts";
import { BENCH_LABEL, type RawEngine } from "./raw-engine.ts";

export const READY_MARK = "meca-init-done";

export interface Limits {
  cpu: number;
  mem: number;
}

/** What a MECA client sends for `limits`: one task key per distinct (cpu, mem). */
export function intentFor(image: string, l: Limits): Record<string, unknown> {
  return { id: image, resource: { cpu: l.cpu, mem: l.mem }, runtime: "" };
}

/** Milliseconds from sending an execute for a new key to its verified answer. */
export async function executorCold(p: Pool, image: string, l: Limits): Promise<number> {
  const t0 = performance.now();
  await execute(p, intentFor(image, l), nextSeq());
  return performance.now() - t0;
}

/**
 * The create body the executor sends for these limits (its defaults: pids
 * limit 1024, no-new-privileges, 8080 published on 127.0.0.1), with the
 * benchmark's label instead of the executor's.
 */
export function rawCreateBody(name: string, image: string, l: Limits): Record<string, unknown> {
  const spec: ContainerSpec = {
    name,
    image,
    labels: { [BENCH_LABEL]: "1" },
    nanoCpus: Math.round(l.cpu * 10) * 100_000_000,
    memoryBytes: l.mem * 1024 * 1024,
    pidsLimit: 1024,
    securityOpt: ["no-new-privileges:true"],
    privileged: false,
  };
  return toCreateBody(spec);
}

export interface RawColdResult {
  ms: number;
  /** Split of `ms`: network (with isolation), create, start, mark seen, address known, first answer. */
  steps: {
    network: number;
    create: number;
    start: number;
    mark: number;
    inspect: number;
    answer: number;
  };
  id: string;
  /** The network made for it (with isolation); the caller removes it after the container. */
  networkId?: string;
}

let subnetSerial = 0;

/** A /28 of 10.215.0.0/16 (outside the executor's pool) for the next raw isolated start. */
function nextBenchSubnet(): string {
  const n = subnetSerial++ % 4096;
  return `10.215.${Math.floor(n / 16)}.${(n % 16) * 16}/28`;
}

/**
 * Creates (with `isolated`: a network of its own first, as the executor does per task), starts and
 * waits for the container, then times its first verified answer at its direct address; the caller
 * removes the container, then the network.
 */
export async function rawCold(
  engine: RawEngine,
  name: string,
  image: string,
  l: Limits,
  onId: (id: string, networkId?: string) => void,
  opts: { isolated?: boolean } = {},
): Promise<RawColdResult> {
  const t0 = performance.now();
  const body = rawCreateBody(name, image, l);
  let networkId: string | undefined;
  if (opts.isolated) {
    networkId = await engine.createNetwork(`${name}-net`, nextBenchSubnet());
    const hc = body.HostConfig as Record<string, unknown>;
    hc.NetworkMode = `${name}-net`;
    delete hc.PortBindings;
  }
  const tn = performance.now();
  const id = await engine.create(name, body);
  onId(id, networkId);
  const t1 = performance.now();
  await engine.start(id);
  const t2 = performance.now();
  await engine.waitForMark(id, READY_MARK);
  const t3 = performance.now();
  const origin = await engine.taskEndpoint(id);
  const t4 = performance.now();
  const p = new Pool(origin, { connections: 1 });
  try {
    await echo(p, nextSeq());
  } finally {
    void p.destroy();
  }
  const t5 = performance.now();
  return {
    ms: t5 - t0,
    id,
    networkId,
    steps: {
      network: tn - t0,
      create: t1 - tn,
      start: t2 - t1,
      mark: t3 - t2,
      inspect: t4 - t3,
      answer: t5 - t4,
    },
  };
}
