/** An Executor over the in-memory fakes of every port, for fast unit tests. */
import { Executor } from "../../src/engine/executor.ts";
import type { ConnectProbe, DiskProbe } from "../../src/engine/ports.ts";
import type { Settings } from "../../src/config.ts";
import { DockerTasks } from "../../src/platform/docker/docker-tasks.ts";
import { FakeBackend, type FakeImage } from "../fakes/fake-backend.ts";
import { FakeClock } from "../fakes/fake-clock.ts";
import { FakeHost } from "../fakes/fake-host.ts";
import { memoryLogger } from "../fakes/fake-logger.ts";
import { fakeProbe, FakeTaskClient } from "../fakes/fake-task-client.ts";

export const BASE_SETTINGS: Settings = {
  idleTimeoutMinutes: 1,
  cpu: 4,
  memMB: 4096,
  hasGpu: false,
  microVMRuntime: "",
  sgx: { enable: false, device: "/dev/sgx/enclave", aesmdPath: "/var/run/aesmd" },
  network: "",
  isolate: false,
  taskSubnetPool: "10.201.0.0/16",
  taskNetworkSpares: 2,
  taskEgress: false,
  capDrop: ["NET_RAW"],
  nofile: 4096,
  taskDiskMB: 0,
  diskCheckIntervalMs: 1_000,
  minFreeDiskMB: 0,
  minFreeHostMemMB: 0,
  cgroupParent: "",
  cgroupDriver: "cgroupfs",
  cgroupVersion: "1",
  usage: true,
  instance: "unit",
  readyTimeoutMs: 5_000,
  requestTimeoutMs: 5_000,
  queueTimeoutMs: 1_000,
  drainTimeoutMs: 1_000,
  pidsLimit: 256,
  noNewPrivileges: true,
  allowedImages: [],
  gpuIdlePercent: 10,
  gpuSampleIntervalMs: 1_000,
  taskConcurrency: 0,
  maxReplicas: 0,
  prewarm: [],
  keepTasksOnStop: false,
  pullPolicy: "missing",
  pullTimeoutMs: 60_000,
  pullStallTimeoutMs: 10_000,
};

/** A GpuProbe with `n` idle devices whose readings a test may change. */
export function fakeGpus(n: number) {
  const devices = Array.from({ length: n }, (_, index) => ({
    index,
    uuid: `GPU-${index}`,
    model: "Fake GPU",
    utilizationPercent: 0,
    memoryUsedMB: 0,
    memoryTotalMB: 40_960,
  }));
  return { devices, sample: async () => devices.map((d) => ({ ...d })), close() {} };
}

export async function fakeExecutor(
  o: {
    settings?: Partial<Settings>;
    images?: Record<string, FakeImage>;
    host?: FakeHost;
    gpus?: ReturnType<typeof fakeGpus>;
    selfContainer?: string;
    disk?: DiskProbe;
    /** An engine an earlier executor used (a restart); a new one otherwise. */
    backend?: FakeBackend;
    /** Adoption's connection check; the fake's containers by default. */
    probe?: ConnectProbe;
    /** The machine the fake engine names (x86_64: spare networks get holders). */
    machine?: string;
  } = {},
) {
  const backend =
    o.backend ?? new FakeBackend({ images: { "echo:1": {}, ...o.images }, machine: o.machine });
  const client = new FakeTaskClient(backend);
  const clock = new FakeClock();
  const logger = memoryLogger();
  const settings = { ...BASE_SETTINGS, ...o.settings };
  const runtime = new DockerTasks({
    backend,
    clock,
    logger,
    settings,
    selfContainer: o.selfContainer,
  });
  const executor = await Executor.create({
    runtime,
    client,
    host: o.host ?? new FakeHost(8, 16_384),
    clock,
    logger,
    settings,
    loadGpu: o.gpus ? async () => o.gpus! : undefined,
    disk: o.disk,
    probe: o.probe ?? fakeProbe(backend),
  });
  await flush();
  return { executor, backend, runtime, client, clock, logger };
}

/** Lets pending promise callbacks run (the fakes answer in microtasks and short timers). */
export async function flush(times = 5): Promise<void> {
  for (let i = 0; i < times; i++) await new Promise((r) => setTimeout(r, 0));
}

/**
 * Settles `p` while moving the fake clock `stepMs` at a time: for requests that end only
 * when an engine timer (request, ready, queue timeout) fires. Bounded: at most 100 steps.
 */
export async function settleWithClock<T>(
  p: T | Promise<T>,
  clock: FakeClock,
  stepMs: number,
): Promise<T> {
  p = Promise.resolve(p);
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 100 && !done; i++) {
    await flush(1);
    if (!done) clock.advance(stepMs);
  }
  return p;
}
