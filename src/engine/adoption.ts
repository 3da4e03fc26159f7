/**
 * Adoption (see docs/architecture.md, "Adoption"): which of an earlier run's containers this run
 * takes back as ready replicas, with their reservations, and which it refuses (the pool removes
 * those). The rules are the engine's: the config now decides, as a request for the same task would.
 */
import type { Ledger, Reservation } from "./ledger.ts";
import type { Clock, ConnectProbe, LeftoverTask, Logger, Placement, TaskRuntime } from "./ports.ts";
import { READY_MARK } from "./settings.ts";
import { Task } from "./task.ts";
import {
  keyHash,
  parseSpecLabel,
  resolveSpec,
  taskKey,
  type SpecLimits,
  type TaskSpec,
} from "./task-spec.ts";

export interface AdoptionDeps {
  runtime: TaskRuntime;
  clock: Clock;
  logger: Logger;
  ledger: Ledger;
  /** What the config lets a task ask for now; without it (or `probe`), nothing is adopted. */
  specLimits?: () => SpecLimits;
  /** The check that a leftover still listens. */
  probe?: ConnectProbe;
  /** NVML indexes of GPU UUIDs; undefined when one is not a GPU this executor may use. */
  gpuIndexes?: (uuids: readonly string[]) => number[] | undefined;
  /** The pool's one way in: registers an adopted, ready replica. */
  register: (task: Task, containerId: string, placement: Placement) => void;
}

/** A leftover judged adoptable: its key, its limits checked; ready to be given a reservation. */
interface Candidate {
  id: string;
  name: string;
  key: string;
  spec: TaskSpec;
  gpus?: number[];
  startedAt: number;
}

const MB = 1024 * 1024;
const PROBE_TIMEOUT_MS = 2_000;

/**
 * Takes an earlier run's ready tasks back, with their reservations: running, their spec label
 * giving back their key, their limits that spec's, allowed by the config now, reachable by the
 * runtime, their mark in their output, and accepting a connection. Most recently started first
 * while the capacity has room. Resolves with the ids adopted; the rest are the caller's to remove.
 */
export async function adopt(d: AdoptionDeps, leftovers: LeftoverTask[]): Promise<Set<string>> {
  const log = d.logger.child({ component: "pool" });
  const adopted = new Set<string>();
  const limits = d.specLimits?.();
  const probe = d.probe;
  const running = leftovers.filter((c) => c.running);
  if (!limits || !probe || running.length === 0) return adopted;
  const refused = (c: { id: string; name: string }, why: string) =>
    log.info("Not adopting a container left by an earlier run; removing it", {
      container: c.name || c.id.slice(0, 12),
      reason: why,
    });
  for (const c of leftovers) if (!c.running) refused(c, `it is not running (${c.status})`);
  const candidates: Candidate[] = [];
  for (const c of running) {
    try {
      candidates.push(judge(d, c, limits));
    } catch (e) {
      refused(c, (e as Error).message);
    }
  }
  candidates.sort((a, b) => b.startedAt - a.startedAt);
  const booked: { c: Candidate; r: Reservation }[] = [];
  for (const c of candidates) {
    const r = d.ledger.tryReserve(
      { cpuTenths: c.spec.cpuTenths, memMB: c.spec.memMB, gpuCount: c.spec.gpuCount },
      c.gpus,
    );
    if (!r) {
      refused(
        c,
        "the capacity has no room for it (tasks started more recently were adopted first)",
      );
      continue;
    }
    booked.push({ c, r });
  }
  const names: string[] = [];
  await Promise.all(
    booked.map(async ({ c, r }) => {
      try {
        const back = await d.runtime.adopt(c.id);
        if (!(await probe(back.endpoint, AbortSignal.timeout(PROBE_TIMEOUT_MS))))
          throw new Error(`nothing accepts a connection at ${back.endpoint}`);
        const now = d.clock.now();
        const task = new Task({ id: c.name, key: c.key, spec: c.spec, reservation: r, now });
        task.apply({ type: "created", containerId: c.id });
        task.apply({ type: "ready", endpoint: back.endpoint, at: now });
        task.meter = back.meter;
        d.register(task, c.id, back.placement);
        adopted.add(c.id);
        names.push(task.id);
      } catch (e) {
        d.ledger.release(r);
        refused(c, (e as Error).message);
      }
    }),
  );
  if (adopted.size > 0)
    log.info("Adopted tasks left by an earlier run", { count: adopted.size, tasks: names });
  return adopted;
}

/** A leftover's spec from what its launch kept, checked against its facts and the config now; throws why not. */
function judge(d: AdoptionDeps, c: LeftoverTask, limits: SpecLimits): Candidate {
  const intent = parseSpecLabel(c.specLabel);
  if (!intent) throw new Error("it has no readable spec label");
  // The config now decides: an image no longer allowed, a runtime no longer configured, a size
  // past the capacity are refused here as a request for them would be.
  const spec = resolveSpec(intent, limits);
  const key = taskKey(spec);
  if (keyHash(key) !== c.keyHash)
    throw new Error(
      "its labels do not give back its task key (the microVM runtime or the image's name changed)",
    );
  if (c.nanoCpus !== spec.cpuTenths * 100_000_000 || c.memoryBytes !== spec.memMB * MB)
    throw new Error("its CPU or memory limit is not its spec's");
  const runtime = c.runtime ?? "";
  if (
    spec.runtime !== undefined
      ? runtime !== spec.runtime
      : runtime !== "" && runtime === limits.microVMRuntime
  )
    throw new Error(`its runtime "${runtime}" is not its spec's`);
  let gpus: number[] | undefined;
  if (spec.gpuCount > 0 || (c.gpus ?? []).length > 0) {
    gpus = d.gpuIndexes?.(c.gpus ?? []);
    if (!gpus || gpus.length !== spec.gpuCount)
      throw new Error("its GPUs are not GPUs this executor may use now");
  }
  if (c.unreachable) throw new Error(c.unreachable);
  if (!c.ready)
    throw new Error(`the earlier run never saw it ready (no ${READY_MARK} in its output)`);
  return { id: c.id, name: c.name, key, spec, gpus, startedAt: c.startedAt };
}
