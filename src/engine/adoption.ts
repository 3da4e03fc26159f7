/**
 * Adoption (see docs/architecture.md, "Adoption"): which of an earlier run's containers this run
 * takes back as ready replicas, with their reservations, and which it refuses (the pool removes
 * those). The rules are the engine's: the config now decides, as a request for the same task would.
 */
import type { Ledger, Reservation } from "./ledger.ts";
import type {
  Clock,
  ConnectProbe,
  ContainerBackend,
  ContainerSummary,
  Logger,
  NetworkSummary,
} from "./ports.ts";
import { LABELS, READY_MARK, type EngineSettings } from "./settings.ts";
import { Task } from "./task.ts";
import { keyHash, resolveSpec, taskKey, type SpecLimits, type TaskSpec } from "./task-spec.ts";
import { parseSpecLabel } from "./container-spec.ts";
import type { TaskNet, TaskNetworks } from "./task-networks.ts";

export interface AdoptionDeps {
  backend: ContainerBackend;
  clock: Clock;
  logger: Logger;
  ledger: Ledger;
  settings: () => EngineSettings;
  /** Each task's own network, when tasks get one. */
  networks?: TaskNetworks;
  /** The executor's own container, which joins each task's network; undefined on a host. */
  selfContainer?: string;
  /** What the config lets a task ask for now; without it (or `probe`), nothing is adopted. */
  specLimits?: () => SpecLimits;
  /** The check that a leftover still listens. */
  probe?: ConnectProbe;
  /** NVML indexes of GPU UUIDs; undefined when one is not a GPU this executor may use. */
  gpuIndexes?: (uuids: readonly string[]) => number[] | undefined;
  /** The pool's one way in: registers an adopted, ready replica. */
  register: (task: Task, containerId: string, net: TaskNet | undefined) => void;
}

/** A leftover read back: its key, its limits checked, its network; ready to be given a reservation. */
interface Leftover {
  id: string;
  name: string;
  key: string;
  spec: TaskSpec;
  gpus?: number[];
  net?: NetworkSummary;
  startedAt: number;
}

const MB = 1024 * 1024;
const PROBE_TIMEOUT_MS = 2_000;

/**
 * Takes an earlier run's ready tasks back, with their reservations: running, their spec label
 * giving back their key, their limits that spec's, allowed by the config now, on their own
 * network, their mark in their output, and accepting a connection. Most recently started first
 * while the capacity has room. Resolves with the ids adopted; the rest are the caller's to remove.
 */
export async function adopt(d: AdoptionDeps, leftovers: ContainerSummary[]): Promise<Set<string>> {
  const log = d.logger.child({ component: "pool" });
  const adopted = new Set<string>();
  const limits = d.specLimits?.();
  const probe = d.probe;
  const networks = d.networks;
  const running = leftovers.filter((c) => c.state === "running");
  if (!limits || !probe || running.length === 0) return adopted;
  const refused = (c: { id: string; name: string }, why: string) =>
    log.info("Not adopting a container left by an earlier run; removing it", {
      container: c.name || c.id.slice(0, 12),
      reason: why,
    });
  for (const c of leftovers)
    if (c.state !== "running") refused(c, `it is not running (${c.state})`);
  const nets = networks ? await networks.list() : [];
  const read = await Promise.all(
    running.map((c) =>
      readLeftover(d, c.id, limits, nets).catch((e: unknown) => {
        refused(c, (e as Error).message);
        return undefined;
      }),
    ),
  );
  const candidates = read
    .filter((c): c is Leftover => c !== undefined)
    .sort((a, b) => b.startedAt - a.startedAt);
  const booked: { c: Leftover; r: Reservation; net?: TaskNet }[] = [];
  for (const c of candidates) {
    const net = c.net ? networks!.adopt(c.net) : undefined;
    if (c.net && !net) {
      refused(c, `its network "${c.net.name}" is not a free block of task_subnet_pool`);
      continue;
    }
    const r = d.ledger.tryReserve(
      { cpuTenths: c.spec.cpuTenths, memMB: c.spec.memMB, gpuCount: c.spec.gpuCount },
      c.gpus,
    );
    if (!r) {
      if (net) networks!.unhold(net);
      refused(
        c,
        "the capacity has no room for it (tasks started more recently were adopted first)",
      );
      continue;
    }
    booked.push({ c, r, net });
  }
  const s = d.settings();
  const names: string[] = [];
  await Promise.all(
    booked.map(async ({ c, r, net }) => {
      try {
        if (net && networks!.joins) await d.backend.connectNetwork(net.id, d.selfContainer!);
        const endpoint = await d.backend.endpoint(
          c.id,
          net
            ? { network: net.name, byAddress: !networks!.joins }
            : { network: s.network || undefined },
        );
        if (!(await probe(endpoint, AbortSignal.timeout(PROBE_TIMEOUT_MS))))
          throw new Error(`nothing accepts a connection at ${endpoint}`);
        const now = d.clock.now();
        const task = new Task({ id: c.name, key: c.key, spec: c.spec, reservation: r, now });
        task.apply({ type: "created", containerId: c.id });
        task.apply({ type: "ready", endpoint, at: now });
        d.register(task, c.id, net);
        adopted.add(c.id);
        names.push(task.id);
      } catch (e) {
        d.ledger.release(r);
        if (net) {
          if (networks!.joins)
            await d.backend.disconnectNetwork(net.id, d.selfContainer!).catch(() => {});
          networks!.unhold(net);
        }
        refused(c, (e as Error).message);
      }
    }),
  );
  if (adopted.size > 0)
    log.info("Adopted tasks left by an earlier run", { count: adopted.size, tasks: names });
  return adopted;
}

/** A leftover's spec from its labels, checked against its container and the config now; rejects with why not. */
async function readLeftover(
  d: AdoptionDeps,
  id: string,
  limits: SpecLimits,
  nets: NetworkSummary[],
): Promise<Leftover> {
  const st = await d.backend.inspect(id);
  if (!st?.running) throw new Error("it is not running");
  const labels = st.labels ?? {};
  const intent = parseSpecLabel(labels[LABELS.spec]);
  if (!intent) throw new Error(`it has no readable ${LABELS.spec} label`);
  // The config now decides: an image no longer allowed, a runtime no longer configured, a size
  // past the capacity are refused here as a request for them would be.
  const spec = resolveSpec(intent, limits);
  const key = taskKey(spec);
  if (keyHash(key) !== labels[LABELS.key])
    throw new Error(
      "its labels do not give back its task key (the microVM runtime or the image's name changed)",
    );
  if (st.nanoCpus !== spec.cpuTenths * 100_000_000 || st.memoryBytes !== spec.memMB * MB)
    throw new Error("its CPU or memory limit is not its spec's");
  const runtime = st.runtime ?? "";
  if (
    spec.runtime !== undefined
      ? runtime !== spec.runtime
      : runtime !== "" && runtime === limits.microVMRuntime
  )
    throw new Error(`its runtime "${runtime}" is not its spec's`);
  let gpus: number[] | undefined;
  if (spec.gpuCount > 0 || (st.gpuIds ?? []).length > 0) {
    gpus = d.gpuIndexes?.(st.gpuIds ?? []);
    if (!gpus || gpus.length !== spec.gpuCount)
      throw new Error("its GPUs are not GPUs this executor may use now");
  }
  const s = d.settings();
  const attached = st.networks ?? [];
  let net: NetworkSummary | undefined;
  if (d.networks) {
    net = nets.find((n) => attached.length === 1 && n.name === attached[0]);
    if (!net) throw new Error("it is not on a task network of its own");
  } else if (s.network && !attached.includes(s.network))
    throw new Error(`it is not on the network "${s.network}"`);
  if (!(await d.backend.hasMark(id, READY_MARK)))
    throw new Error(`the earlier run never saw it ready (no ${READY_MARK} in its output)`);
  return { id, name: st.name ?? id, key, spec, gpus, net, startedAt: st.startedAt ?? 0 };
}
