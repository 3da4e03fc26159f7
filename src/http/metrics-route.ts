/**
 * GET /metrics: the engine's counters and gauges and the HTTP request
 * numbers in Prometheus text format. Read from the same sources as /stats
 * and /tasks, so the numbers agree.
 */
import type { EngineMetrics, MetricsSnapshot } from "../engine/metrics.ts";
import type { ImageUse } from "../engine/usage.ts";
import type { AppOptions } from "./app-env.ts";
import { PROMETHEUS_CONTENT_TYPE, PromText } from "./prometheus.ts";
import type { RequestMetrics } from "./request-metrics.ts";
import type { Read } from "./status-routes.ts";

const MB = 1024 * 1024;

/** GET /metrics, as plain parts (status-routes.ts mounts it; the Node route serves it too). */
export function metricsRead(o: Pick<AppOptions, "executor">, requests: RequestMetrics): Read {
  return () => {
    const p = new PromText();
    renderRequests(p, requests);
    renderEngine(p, o.executor.metrics);
    renderGauges(p, o.executor.metricsSnapshot());
    renderUsage(p, o.executor.usageByImage());
    return {
      answer: {
        status: 200,
        body: p.toString(),
        headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
      },
    };
  };
}

/** What tasks used, by image (docs/usage.md): CPU and GPU seconds, and the requests' peak memory. */
function renderUsage(p: PromText, images: ReadonlyMap<string, ImageUse>): void {
  if (images.size === 0) return;
  p.family(
    "meca_task_cpu_seconds_total",
    "counter",
    "CPU time tasks used serving requests, by image",
  );
  for (const [image, u] of images) p.sample("meca_task_cpu_seconds_total", u.cpuSeconds, { image });
  p.family("meca_task_gpu_seconds_total", "counter", "GPUs held x time serving requests, by image");
  for (const [image, u] of images) p.sample("meca_task_gpu_seconds_total", u.gpuSeconds, { image });
  p.family(
    "meca_task_memory_peak_megabytes",
    "histogram",
    "Peak memory of a task's container per request (MB), by image",
  );
  for (const [image, u] of images)
    p.histogram("meca_task_memory_peak_megabytes", u.memPeakMB, { image });
}

function renderRequests(p: PromText, requests: RequestMetrics): void {
  const routes = requests.all();
  p.family(
    "meca_http_requests_total",
    "counter",
    "HTTP requests answered, by method, route, status and outcome (ok or the error code)",
  );
  for (const r of routes) {
    for (const [status, byOutcome] of r.outcomes) {
      for (const [outcome, n] of byOutcome)
        p.sample("meca_http_requests_total", n.value, {
          method: r.method,
          route: r.route,
          status,
          outcome,
        });
    }
  }
  p.family(
    "meca_http_request_duration_seconds",
    "histogram",
    "Time from receiving a request to its answer, by method and route",
  );
  for (const r of routes)
    p.histogram("meca_http_request_duration_seconds", r.duration, {
      method: r.method,
      route: r.route,
    });
}

function renderEngine(p: PromText, m: EngineMetrics): void {
  p.family(
    "meca_task_cold_start_duration_seconds",
    "histogram",
    "Time from launching a task (image pull included) to its ready mark",
  );
  p.histogram("meca_task_cold_start_duration_seconds", m.coldStarts);
  p.single(
    "meca_task_start_failures_total",
    "counter",
    "Tasks that failed to start",
    m.startFailures.value,
  );
  p.single(
    "meca_image_pulls_total",
    "counter",
    "Images pulled because they were absent",
    m.pulls.value,
  );
  p.single(
    "meca_task_requests_total",
    "counter",
    "Requests answered by a task (any status)",
    m.served.value,
  );
  p.single(
    "meca_task_retries_total",
    "counter",
    "Requests retried on a fresh container because the first was gone",
    m.retries.value,
  );
  p.single(
    "meca_task_evictions_total",
    "counter",
    "Idle tasks removed to make room for another",
    m.evictions.value,
  );
  p.single(
    "meca_prewarm_starts_total",
    "counter",
    "Replicas started by prewarm",
    m.prewarmStarts.value,
  );
  p.single(
    "meca_prewarm_hits_total",
    "counter",
    "Requests served by a prewarmed replica that was ready when they came",
    m.prewarmHits.value,
  );
  p.single(
    "meca_task_disk_exceeded_total",
    "counter",
    "Tasks removed because they wrote more than task_disk_mb to their disk",
    m.diskExceeded.value,
  );
  p.single(
    "meca_start_disk_low_total",
    "counter",
    "Starts refused because the engine's data root had less free space than min_free_disk_mb",
    m.diskLow.value,
  );
  p.single(
    "meca_task_idle_removals_total",
    "counter",
    "Tasks removed after the idle timeout",
    m.idleRemovals.value,
  );
  p.single(
    "meca_queue_waits_total",
    "counter",
    "Task starts that waited in the queue for capacity",
    m.queued.value,
  );
  p.single(
    "meca_queue_timeouts_total",
    "counter",
    "Queued task starts refused after the queue timeout",
    m.queueTimeouts.value,
  );
}

function renderGauges(p: PromText, s: MetricsSnapshot): void {
  p.single("meca_paused", "gauge", "1 while the executor is paused", s.paused ? 1 : 0);
  p.single(
    "meca_engine_reachable",
    "gauge",
    "1 while the Docker engine answers",
    s.engineReachable ? 1 : 0,
  );
  p.single("meca_host_cpu_cores", "gauge", "Logical CPU cores of the host", s.host.cores);
  p.single("meca_host_memory_bytes", "gauge", "Memory of the host", s.host.memoryMB * MB);
  p.single(
    "meca_queue_length",
    "gauge",
    "Requests waiting for capacity or a free replica slot now",
    s.queueLength,
  );
  p.single(
    "meca_requests_in_flight",
    "gauge",
    "Requests being forwarded to a task now",
    s.inFlight,
  );
  p.family("meca_tasks", "gauge", "Warm tasks by state");
  for (const [state, n] of Object.entries(s.tasks)) p.sample("meca_tasks", n, { state });
  p.single("meca_tasks_busy", "gauge", "Ready tasks with a request in flight", s.busyTasks);
  if (s.keys.length > 0) {
    p.family(
      "meca_key_replicas",
      "gauge",
      "Replicas (starting or ready) per task key; a key's series go with its last replica",
    );
    for (const k of s.keys)
      p.sample("meca_key_replicas", k.replicas, { key: k.key, image: k.image });
    p.family("meca_key_replicas_busy", "gauge", "Replicas with a request in flight, per task key");
    for (const k of s.keys)
      p.sample("meca_key_replicas_busy", k.busy, { key: k.key, image: k.image });
    p.family("meca_key_queued", "gauge", "Requests waiting in line, per task key");
    for (const k of s.keys) p.sample("meca_key_queued", k.queued, { key: k.key, image: k.image });
  }

  const { capacity, reserved } = s.ledger;
  p.single(
    "meca_ledger_capacity_cpu_cores",
    "gauge",
    "Cores tasks may use (task_cpu in /stats)",
    capacity.cpuTenths / 10,
  );
  p.single(
    "meca_ledger_reserved_cpu_cores",
    "gauge",
    "Cores reserved by tasks",
    reserved.cpuTenths / 10,
  );
  p.single(
    "meca_ledger_capacity_memory_bytes",
    "gauge",
    "Memory tasks may use (task_mem in /stats, in bytes)",
    capacity.memMB * MB,
  );
  p.single(
    "meca_ledger_reserved_memory_bytes",
    "gauge",
    "Memory reserved by tasks",
    reserved.memMB * MB,
  );
  p.single(
    "meca_ledger_capacity_gpus",
    "gauge",
    "GPUs tasks may use (task_gpu in /stats)",
    capacity.gpus.length,
  );
  p.single(
    "meca_ledger_reserved_gpus",
    "gauge",
    "GPUs reserved by tasks (task_used_gpu in /stats)",
    reserved.gpus.length,
  );
  p.single(
    "meca_ledger_busy_gpus",
    "gauge",
    "GPUs held back because other work keeps them busy",
    s.ledger.busyGpus.length,
  );
  p.single("meca_ledger_reservations", "gauge", "Reservations held", s.ledger.reservations);

  if (s.gpus.length === 0) return;
  p.family("meca_gpu_info", "gauge", "GPUs NVML reports, with their UUID and model");
  for (const d of s.gpus)
    p.sample("meca_gpu_info", 1, { gpu: d.index, uuid: d.uuid, model: d.model });
  p.family(
    "meca_gpu_utilization_ratio",
    "gauge",
    "GPU utilisation at the last NVML sample, 0 to 1",
  );
  for (const d of s.gpus)
    p.sample("meca_gpu_utilization_ratio", d.utilizationPercent / 100, { gpu: d.index });
  p.family("meca_gpu_memory_used_bytes", "gauge", "GPU memory in use at the last NVML sample");
  for (const d of s.gpus)
    p.sample("meca_gpu_memory_used_bytes", d.memoryUsedMB * MB, { gpu: d.index });
  p.family("meca_gpu_memory_total_bytes", "gauge", "GPU memory");
  for (const d of s.gpus)
    p.sample("meca_gpu_memory_total_bytes", d.memoryTotalMB * MB, { gpu: d.index });
  p.family("meca_gpu_reserved", "gauge", "1 while a task holds the GPU");
  for (const d of s.gpus)
    p.sample("meca_gpu_reserved", reserved.gpus.includes(d.index) ? 1 : 0, { gpu: d.index });
}
