/** Read-only views of the executor for /stats and /tasks. */
import type { Ledger } from "./ledger.ts";
import type { EngineStatus } from "./engine-watch.ts";
import type { KeyGauges, MetricsSnapshot } from "./metrics.ts";
import type { GpuDevice, Placement } from "./ports.ts";
import type { Task } from "./task.ts";
import { keyHash } from "./task-spec.ts";

/** GET /stats: the original eleven fields keep their meaning; more follow. */
export interface Stats {
  total_cpu: number;
  total_mem: number;
  used_cpu: number;
  used_mem: number;
  task_cpu: number;
  task_mem: number;
  task_used_cpu: number;
  task_used_mem: number;
  gpu_model: string;
  task_gpu: number;
  task_used_gpu: number;
  paused: boolean;
  tasks: number;
  queued: number;
  engine: "reachable" | "unreachable";
}

export function snapshotStats(o: {
  host: { cores: number; memoryMB: number };
  usage: { cpuPercent: number; memPercent: number };
  ledger: Ledger;
  gpuModel: string;
  paused: boolean;
  tasks: number;
  queued: number;
  engine: EngineStatus;
}): Stats {
  const cap = o.ledger.capacity;
  const used = o.ledger.used();
  return {
    total_cpu: o.host.cores,
    total_mem: o.host.memoryMB,
    used_cpu: round1(o.usage.cpuPercent),
    used_mem: round1(o.usage.memPercent),
    task_cpu: cap.cpuTenths / 10,
    task_mem: cap.memMB,
    task_used_cpu: percent(used.cpuTenths, cap.cpuTenths),
    task_used_mem: percent(used.memMB, cap.memMB),
    gpu_model: o.gpuModel,
    task_gpu: cap.gpus.length,
    task_used_gpu: used.gpus.length,
    paused: o.paused,
    tasks: o.tasks,
    queued: o.queued,
    engine: o.engine.reachable ? "reachable" : "unreachable",
  };
}

export interface TaskInfo {
  key: string;
  name: string;
  image: string;
  runtime: string;
  cpu: number;
  mem: number;
  gpus: number[];
  sgx: boolean;
  state: string;
  /** The key's hash: the replicas of one key share it (the container label meca.executor.key). */
  key_hash: string;
  /** What the task holds in the ledger; null while it waits for admission. */
  reservation: { cpu: number; mem: number; gpus: number[] } | null;
  in_flight: number;
  served: number;
  last_used: string;
  container_id: string | null;
  /** Where the task is reached, as the runtime says it (TaskRuntime.placement, StartedTask.placement). */
  network: { name: string; isolated: boolean } & Record<string, string | boolean>;
  /** MB its writable layer held at the executor's last disk check; null where the executor does not measure it. */
  disk_mb: number | null;
  /** Held warm by a `prewarm` entry (exempt from the idle timeout, evicted like any idle one under a shortage). */
  prewarmed: boolean;
}

export function snapshotTasks(
  tasks: readonly Task[],
  o: {
    networkOf: (t: Task) => Placement;
    diskMB?: (t: Task) => number | undefined;
    prewarmed?: (t: Task) => boolean;
  },
): TaskInfo[] {
  return tasks.map((t) => ({
    key: t.key,
    name: t.name,
    image: t.spec.image,
    runtime: t.spec.runtime ?? "default",
    cpu: t.spec.cpuTenths / 10,
    mem: t.spec.memMB,
    gpus: [...(t.reservation?.gpus ?? [])],
    sgx: t.spec.sgx,
    state: t.state.kind,
    key_hash: keyHash(t.key),
    reservation: t.reservation
      ? {
          cpu: t.reservation.cpuTenths / 10,
          mem: t.reservation.memMB,
          gpus: [...t.reservation.gpus],
        }
      : null,
    in_flight: t.inFlight,
    served: t.served,
    last_used: new Date(t.lastUsed).toISOString(),
    container_id: t.containerId ?? null,
    network: shownPlacement(o.networkOf(t)),
    disk_mb: o.diskMB?.(t) ?? null,
    prewarmed: o.prewarmed?.(t) ?? false,
    // Where its usage figures come from ("cgroup v1", "cgroup v2", "engine stats"); null: none.
    usage_source: t.meter?.source ?? null,
  }));
}

/** GET /metrics: the gauges, from the same sources as /stats and /tasks. */
export function snapshotMetrics(o: {
  tasks: readonly Task[];
  removing: number;
  ledger: Ledger;
  paused: boolean;
  engine: EngineStatus;
  host: { cores: number; memoryMB: number };
  queueLength: number;
  inFlight: number;
  gpus: readonly GpuDevice[];
  /** Requests waiting in line, by key. */
  queuedByKey: ReadonlyMap<string, number>;
}): MetricsSnapshot {
  const tasks = { starting: 0, ready: 0, removing: o.removing };
  let busyTasks = 0;
  for (const t of o.tasks) {
    if (t.state.kind === "starting") tasks.starting++;
    else if (t.state.kind === "ready") {
      tasks.ready++;
      if (t.inFlight > 0) busyTasks++;
    }
  }
  // Per key: only keys with a replica or a request in line, so the series go with the last replica.
  const keys = new Map<string, KeyGauges>();
  const gauge = (key: string, image: string) => {
    let g = keys.get(key);
    if (!g) keys.set(key, (g = { key: keyHash(key), image, replicas: 0, busy: 0, queued: 0 }));
    return g;
  };
  for (const t of o.tasks) {
    const g = gauge(t.key, t.spec.image);
    g.replicas++;
    if (t.inFlight > 0) g.busy++;
  }
  for (const [key, n] of o.queuedByKey) gauge(key, key.split("|")[0]!).queued = n;
  const capacity = o.ledger.capacity;
  const reserved = o.ledger.used();
  const free = new Set(o.ledger.freeGpus());
  return {
    paused: o.paused,
    engineReachable: o.engine.reachable,
    host: { ...o.host },
    queueLength: o.queueLength,
    inFlight: o.inFlight,
    tasks,
    busyTasks,
    ledger: {
      capacity,
      reserved,
      reservations: o.ledger.reservations,
      busyGpus: capacity.gpus.filter((g) => !free.has(g) && !reserved.gpus.includes(g)),
    },
    gpus: o.gpus,
    keys: [...keys.values()],
  };
}

function percent(part: number, whole: number): number {
  return whole === 0 ? 0 : round1((part / whole) * 100);
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

/** A placement as GET /tasks shows it: its name, the runtime's details, whether it is the task's own. */
function shownPlacement(p: Placement): TaskInfo["network"] {
  return { name: p.name, ...p.details, isolated: p.isolated };
}
