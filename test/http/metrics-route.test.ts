import { describe, expect, it } from "vitest";
import { deferred } from "../fakes/fake-backend.ts";
import { FakeHost } from "../fakes/fake-host.ts";
import { fakeApp } from "../support/fake-app.ts";
import { fakeGpus, flush } from "../support/fake-executor.ts";
import { metric, parseMetrics } from "./metrics-text.ts";

const MB = 1024 * 1024;

async function scrape(app: { request: (path: string) => Response | Promise<Response> }) {
  const res = await app.request("/metrics");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  const text = await res.text();
  return { text, samples: parseMetrics(text) };
}

describe("GET /metrics", () => {
  it("answers Prometheus text: every sample under a TYPE line, histograms cumulative up to +Inf", async () => {
    const { request, app } = await fakeApp();
    await request("POST", "/", { id: "echo:1", input: "a" });
    const { text, samples } = await scrape(app);
    const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
    for (const s of samples) {
      const family = s.name.replace(/_(bucket|sum|count)$/, "");
      expect(types.has(s.name) || types.get(family) === "histogram", s.name).toBe(true);
    }
    for (const [family, type] of types) {
      if (type !== "histogram") continue;
      const buckets = samples.filter((s) => s.name === `${family}_bucket`);
      const series = new Set(buckets.map((b) => JSON.stringify({ ...b.labels, le: undefined })));
      for (const key of series) {
        const mine = buckets
          .filter((b) => JSON.stringify({ ...b.labels, le: undefined }) === key)
          .map((b) => b.value);
        expect(mine).toEqual([...mine].sort((x, y) => x - y));
        const labels = JSON.parse(key) as Record<string, string>;
        expect(mine.at(-1)).toBe(metric(samples, `${family}_count`, labels));
      }
    }
  });

  it("counts N executions alike in meca_http_requests_total, meca_task_requests_total and /tasks served", async () => {
    const { request, app } = await fakeApp({ adminToken: "t0ken" });
    const n = 7;
    for (let i = 0; i < n; i++) await request("POST", "/", { id: "echo:1", input: `in ${i}` });
    for (let i = 0; i < 2; i++)
      await request("POST", "/", { id: "echo:1", resource: { cpu: 2 }, input: "other key" });
    await request("POST", "/", "{");
    await request("POST", "/", { id: "Not/Valid" });
    await request("POST", "/pause");
    await request("GET", "/no-such-route");
    const tasks = (await request("GET", "/tasks")).body.tasks as {
      served: number;
      state: string;
    }[];
    const { samples } = await scrape(app);

    const ok = { method: "POST", route: "/", status: "200", outcome: "ok" };
    expect(metric(samples, "meca_http_requests_total", ok)).toBe(n + 2);
    expect(
      metric(samples, "meca_http_request_duration_seconds_count", { method: "POST", route: "/" }),
    ).toBe(n + 2 + 2);
    expect(
      metric(samples, "meca_http_requests_total", {
        route: "/",
        status: "400",
        outcome: "INVALID_JSON",
      }),
    ).toBe(1);
    expect(
      metric(samples, "meca_http_requests_total", {
        route: "/",
        status: "400",
        outcome: "INVALID_IMAGE",
      }),
    ).toBe(1);
    expect(
      metric(samples, "meca_http_requests_total", {
        route: "/pause",
        status: "401",
        outcome: "UNAUTHORIZED",
      }),
    ).toBe(1);
    expect(
      metric(samples, "meca_http_requests_total", {
        route: "other",
        status: "404",
        outcome: "NOT_FOUND",
      }),
    ).toBe(1);
    expect(metric(samples, "meca_http_requests_total", { route: "/tasks", outcome: "ok" })).toBe(1);

    expect(tasks.reduce((s, t) => s + t.served, 0)).toBe(n + 2);
    expect(metric(samples, "meca_task_requests_total")).toBe(n + 2);
    expect(metric(samples, "meca_task_cold_start_duration_seconds_count")).toBe(2);
    expect(metric(samples, "meca_tasks", { state: "ready" })).toBe(
      tasks.filter((t) => t.state === "ready").length,
    );
    expect(metric(samples, "meca_tasks")).toBe(tasks.length);
    expect(metric(samples, "meca_requests_in_flight")).toBe(0);
  });

  it("reports the ledger as /stats does, and as the reservations in /tasks add up", async () => {
    const { request, app } = await fakeApp({
      host: new FakeHost(2, 1000),
      settings: { cpu: 4, memMB: 4096 },
    });
    await request("POST", "/", { id: "echo:1", resource: { cpu: 0.5, mem: 200 } });
    await request("POST", "/", { id: "echo:1", resource: { cpu: 0.7, mem: 100 } });
    const stats = (await request("GET", "/stats")).body;
    const tasks = (await request("GET", "/tasks")).body.tasks as {
      reservation: { cpu: number; mem: number };
    }[];
    const { samples } = await scrape(app);

    expect(metric(samples, "meca_host_cpu_cores")).toBe(stats.total_cpu);
    expect(metric(samples, "meca_host_memory_bytes")).toBe(stats.total_mem * MB);
    expect(metric(samples, "meca_ledger_capacity_cpu_cores")).toBe(stats.task_cpu);
    expect(metric(samples, "meca_ledger_capacity_memory_bytes")).toBe(stats.task_mem * MB);
    expect(metric(samples, "meca_ledger_capacity_gpus")).toBe(stats.task_gpu);
    expect(metric(samples, "meca_ledger_reserved_gpus")).toBe(stats.task_used_gpu);
    const cpu = metric(samples, "meca_ledger_reserved_cpu_cores");
    const mem = metric(samples, "meca_ledger_reserved_memory_bytes") / MB;
    expect(cpu).toBeCloseTo(
      tasks.reduce((s, t) => s + t.reservation.cpu, 0),
      9,
    );
    expect(mem).toBe(tasks.reduce((s, t) => s + t.reservation.mem, 0));
    expect(Math.round((cpu / stats.task_cpu) * 1000) / 10).toBe(stats.task_used_cpu);
    expect(Math.round((mem / stats.task_mem) * 1000) / 10).toBe(stats.task_used_mem);
    expect(metric(samples, "meca_ledger_reservations")).toBe(tasks.length);
    expect(metric(samples, "meca_paused")).toBe(stats.paused ? 1 : 0);
    expect(metric(samples, "meca_queue_length")).toBe(stats.queued);
  });

  it("counts evictions and idle removals, and removed tasks leave the gauges", async () => {
    const { request, app, clock } = await fakeApp({ settings: { cpu: 2, idleTimeoutMinutes: 1 } });
    await request("POST", "/", { id: "echo:1", resource: { cpu: 2 } });
    await request("POST", "/", { id: "echo:1", resource: { cpu: 1.5 } }); // evicts the first
    let { samples } = await scrape(app);
    expect(metric(samples, "meca_task_evictions_total")).toBe(1);
    expect(metric(samples, "meca_task_idle_removals_total")).toBe(0);
    expect(metric(samples, "meca_tasks", { state: "ready" })).toBe(1);

    clock.advance(61_000);
    await flush();
    ({ samples } = await scrape(app));
    expect(metric(samples, "meca_task_idle_removals_total")).toBe(1);
    expect(metric(samples, "meca_tasks")).toBe(0);
    expect(metric(samples, "meca_ledger_reserved_cpu_cores")).toBe(0);
    expect(metric(samples, "meca_ledger_reservations")).toBe(0);
    expect((await request("GET", "/tasks")).body.tasks).toEqual([]);
  });

  it("shows queued starts, busy tasks and in-flight requests, then the queue timeout", async () => {
    const slow = deferred<{ status: number; body: string }>();
    const { request, app, clock } = await fakeApp({
      settings: { cpu: 1, queueTimeoutMs: 1_000 },
      images: { "slow:1": { respond: () => slow.promise } },
    });
    const busy = request("POST", "/", { id: "slow:1", resource: { cpu: 1 } });
    await flush();
    const waiting = request("POST", "/", { id: "echo:1", resource: { cpu: 0.5 } });
    await flush();
    let { samples } = await scrape(app);
    expect(metric(samples, "meca_queue_length")).toBe(1);
    expect(metric(samples, "meca_queue_waits_total")).toBe(1);
    expect(metric(samples, "meca_requests_in_flight")).toBe(1);
    expect(metric(samples, "meca_tasks_busy")).toBe(1);
    // A start waiting for capacity is a request in line, not a task yet.
    expect(metric(samples, "meca_tasks", { state: "starting" })).toBe(0);
    expect(metric(samples, "meca_tasks", { state: "ready" })).toBe(1);
    const keyOf = (image: string) =>
      samples.find((x) => x.name === "meca_key_replicas" && x.labels.image === image)?.labels.key;
    expect(metric(samples, "meca_key_replicas", { key: keyOf("slow:1")!, image: "slow:1" })).toBe(
      1,
    );
    expect(
      metric(samples, "meca_key_replicas_busy", { key: keyOf("slow:1")!, image: "slow:1" }),
    ).toBe(1);
    const queuedKey = samples.find((x) => x.name === "meca_key_queued" && x.value === 1);
    expect(queuedKey?.labels.image).toBe("echo:1");

    clock.advance(1_000);
    expect(await waiting).toMatchObject({ status: 503, body: { error: "NO_CAPACITY" } });
    slow.resolve({ status: 200, body: "done" });
    expect((await busy).status).toBe(200);
    ({ samples } = await scrape(app));
    expect(metric(samples, "meca_queue_length")).toBe(0);
    expect(metric(samples, "meca_queue_timeouts_total")).toBe(1);
    expect(metric(samples, "meca_requests_in_flight")).toBe(0);
    expect(
      metric(samples, "meca_http_requests_total", { status: "503", outcome: "NO_CAPACITY" }),
    ).toBe(1);
    // The key that never got a replica has no series left; the other's go with its last replica.
    expect(
      samples.filter((x) => x.name.startsWith("meca_key_") && x.labels.image === "echo:1"),
    ).toEqual([]);
    expect(metric(samples, "meca_key_replicas", { image: "slow:1" })).toBe(1);
    await request("POST", "/pause");
    ({ samples } = await scrape(app));
    expect(samples.filter((x) => x.name.startsWith("meca_key_"))).toEqual([]);
  });

  it("observes cold starts by their duration and counts failed starts and pulls", async () => {
    const { request, app, backend, clock } = await fakeApp({
      images: { "crash:1": { ready: { exitCode: 3, lines: ["boom"] } } },
    });
    backend.addPullable("pulled:1");
    backend.before("start", () => clock.advance(1_500), { once: true });
    await request("POST", "/", { id: "echo:1" });
    await request("POST", "/", { id: "pulled:1" });
    expect((await request("POST", "/", { id: "crash:1" })).status).toBe(502);
    const { samples } = await scrape(app);
    expect(metric(samples, "meca_task_cold_start_duration_seconds_count")).toBe(2);
    expect(metric(samples, "meca_task_cold_start_duration_seconds_sum")).toBe(1.5);
    expect(metric(samples, "meca_task_cold_start_duration_seconds_bucket", { le: "1" })).toBe(1);
    expect(metric(samples, "meca_task_cold_start_duration_seconds_bucket", { le: "2" })).toBe(2);
    expect(metric(samples, "meca_task_start_failures_total")).toBe(1);
    expect(metric(samples, "meca_image_pulls_total")).toBe(1);
    expect(
      metric(samples, "meca_http_requests_total", { status: "502", outcome: "TASK_EXITED" }),
    ).toBe(1);
  });

  it("reports each GPU from the last NVML sample, and reserved GPUs as /stats does", async () => {
    const gpus = fakeGpus(3);
    const { request, app, clock } = await fakeApp({ gpus, settings: { hasGpu: true } });
    gpus.devices[2]!.utilizationPercent = 55;
    gpus.devices[2]!.memoryUsedMB = 1024;
    clock.advance(1_000);
    await flush();
    await request("POST", "/", { id: "echo:1", resource: { use_gpu: true } });
    const stats = (await request("GET", "/stats")).body;
    const { samples } = await scrape(app);
    expect(metric(samples, "meca_ledger_capacity_gpus")).toBe(stats.task_gpu);
    expect(metric(samples, "meca_ledger_reserved_gpus")).toBe(stats.task_used_gpu);
    expect(stats.task_used_gpu).toBe(1);
    expect(metric(samples, "meca_ledger_busy_gpus")).toBe(1);
    expect(metric(samples, "meca_gpu_info", { gpu: "2", uuid: "GPU-2", model: "Fake GPU" })).toBe(
      1,
    );
    expect(metric(samples, "meca_gpu_utilization_ratio", { gpu: "2" })).toBe(0.55);
    expect(metric(samples, "meca_gpu_memory_used_bytes", { gpu: "2" })).toBe(1024 * MB);
    expect(metric(samples, "meca_gpu_memory_total_bytes", { gpu: "0" })).toBe(40_960 * MB);
    expect(metric(samples, "meca_gpu_reserved", { gpu: "0" })).toBe(1);
    expect(metric(samples, "meca_gpu_reserved", { gpu: "2" })).toBe(0);
  });

  it('keeps its series bounded: paths that match no route share route="other"', async () => {
    const { request, app } = await fakeApp();
    for (let i = 0; i < 50; i++) await request(i % 2 ? "GET" : "DELETE", `/x${i}?q=${i}`);
    await request("GET", "/"); // a known path with a method it does not serve
    const { samples } = await scrape(app);
    const series = samples.filter((s) => s.name === "meca_http_requests_total");
    expect(series).toEqual([
      {
        name: "meca_http_requests_total",
        labels: { method: "other", route: "other", status: "404", outcome: "NOT_FOUND" },
        value: 51,
      },
    ]);
  });
});
