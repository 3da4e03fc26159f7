/** Read-only views of the executor for /stats and /tasks. */
import type { Ledger } from "./ledger.ts";
import type { EngineStatus } from "./engine-watch.ts";
import type { MetricsSnapshot } from "./metrics.ts";
import type { GpuDevice } from "./ports.ts";
import type { Task } from "./task.ts";

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
  /** What the task holds in the ledger; null while it waits for admission. */
  reservation: { cpu: number; mem: number; gpus: number[] } | null;
  in_flight: number;
  served: number;
  last_used: string;
  container_id: string | null;
}

export function snapshotTasks(tasks: readonly Task[]): TaskInfo[] {
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
    reservation: t.reservation ? { cpu: t.reservation.cpuTenths / 10, mem: t.reservation.memMB, gpus: [...t.reservation.gpus] } : null,
    in_flight: t.inFlight,
    served: t.served,
    last_used: new Date(t.lastUsed).toISOString(),
    container_id: t.containerId ?? null,
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
  };
}

function percent(part: number, whole: number): number {
  return whole === 0 ? 0 : round1((part / whole) * 100);
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
