/**
 * The executor: admits execute requests, keeps one warm task per key,
 * forwards inputs, and pauses, reconfigures and stops. Web-standard APIs only.
 */
import { Admission } from "./admission.ts";
import { BadRequestError, ConflictError, PausedError } from "./errors.ts";
import { forwardToTask, TaskGoneError, type ForwardContext } from "./forward.ts";
import { Ledger } from "./ledger.ts";
import type { Clock, ContainerBackend, GpuProbe, HostProbe, Logger, TaskClient } from "./ports.ts";
import { clipCapacity, type EngineSettings, type SettingsUpdate } from "./settings.ts";
import { GpuMonitor } from "./gpu-monitor.ts";
import { EngineWatch } from "./engine-watch.ts";
import { IdleCleaner } from "./idle-cleaner.ts";
import { EngineMetrics, type MetricsSnapshot } from "./metrics.ts";
import { raceAbort, TaskPool } from "./task-pool.ts";
import { resolveSpec, taskKey, type SpecLimits, type TaskIntent, type TaskSpec } from "./task-spec.ts";
import type { Task } from "./task.ts";
import { snapshotMetrics, snapshotStats, snapshotTasks, type Stats, type TaskInfo } from "./snapshot.ts";

export interface ExecutorDeps {
  backend: ContainerBackend;
  client: TaskClient;
  host: HostProbe;
  clock: Clock;
  logger: Logger;
  settings: EngineSettings;
  /** Loads NVML when has_gpu is set; rejects with the reason when it cannot. */
  loadGpu?: () => Promise<GpuProbe>;
  /** Says why SGX cannot be used on this host (device or AESM socket missing), or undefined. */
  checkSgx?: (sgx: EngineSettings["sgx"]) => Promise<string | undefined>;
}

export class Executor {
  #d: ExecutorDeps;
  #s: EngineSettings;
  #log: Logger;
  #host = { cores: 1, memoryMB: 0 };
  #ledger: Ledger;
  #pool: TaskPool;
  #admission: Admission;
  #gpu: GpuMonitor;
  #watch: EngineWatch;
  #cleaner: IdleCleaner;
  #paused = false;
  #pausing?: Promise<void>;
  #inFlight = 0;
  #drainWaiters: (() => void)[] = [];
  /** Counters for GET /metrics; see metricsSnapshot() for the gauges. */
  readonly metrics = new EngineMetrics();
  #forwardCtx: ForwardContext;

  private constructor(deps: ExecutorDeps) {
    this.#d = deps;
    this.#s = { ...deps.settings };
    this.#log = deps.logger.child({ component: "executor" });
    this.#ledger = new Ledger({ cpuTenths: 0, memMB: 0, gpus: [] });
    this.#pool = new TaskPool({
      backend: deps.backend,
      client: deps.client,
      clock: deps.clock,
      logger: deps.logger,
      ledger: this.#ledger,
      settings: () => this.#s,
      onRelease: () => this.#admission.pump(),
      metrics: this.metrics,
      gpuIds: (indexes) => this.#gpu.uuids(indexes),
    });
    this.#admission = new Admission({
      ledger: this.#ledger,
      clock: deps.clock,
      queueTimeoutMs: () => this.#s.queueTimeoutMs,
      tasks: () => this.#pool.views(),
      evict: (keys) => {
        for (const key of keys) {
          const t = this.#pool.get(key);
          if (!t) continue;
          this.metrics.evictions.inc();
          void this.#pool.remove(t, "evicted to make room for another task");
        }
      },
      metrics: this.metrics,
    });
    this.#gpu = new GpuMonitor({ ledger: this.#ledger, clock: deps.clock, logger: deps.logger, settings: () => this.#s });
    this.#watch = new EngineWatch({ backend: deps.backend, pool: this.#pool, clock: deps.clock, logger: deps.logger, settings: () => this.#s });
    this.#cleaner = new IdleCleaner({ pool: this.#pool, clock: deps.clock, logger: deps.logger, settings: () => this.#s, metrics: this.metrics });
    this.#forwardCtx = { client: deps.client, backend: deps.backend, clock: deps.clock, pool: this.#pool, settings: () => this.#s, served: this.metrics.served };
  }

  /** Reads the host, loads NVML when asked, and starts the background loops. */
  static async create(deps: ExecutorDeps): Promise<Executor> {
    const ex = new Executor(deps);
    ex.#host = { cores: await deps.host.cores(), memoryMB: await deps.host.memoryMB() };
    if (ex.#s.hasGpu) await ex.#gpu.enable(deps.loadGpu);
    ex.#applyCapacity();
    ex.#watch.start();
    ex.#cleaner.start();
    return ex;
  }

  get paused(): boolean {
    return this.#paused;
  }

  get settings(): Readonly<EngineSettings> {
    return this.#s;
  }

  /**
   * Runs `input` on the warm task for `intent` and returns the task's response body.
   * `requestId` only labels the log lines this request causes; the input is never logged.
   */
  async execute(intent: TaskIntent, input: string, opts: { signal?: AbortSignal; requestId?: string } = {}): Promise<string> {
    if (this.#paused) throw new PausedError();
    const spec = resolveSpec(intent, this.#specLimits());
    const key = taskKey(spec);
    // What only a start needs (the runtime, the SGX device) is checked only when a start may follow.
    if (!this.#pool.get(key)) {
      if (spec.runtimeKind === "microVM") await this.#watch.requireRuntime(spec.runtime!);
      if (spec.sgx) await this.#requireSgx();
    }
    for (let attempt = 0; ; attempt++) {
      const task = await this.#acquireReady(key, spec, opts.signal);
      try {
        return await this.#forward(task, input, opts.signal);
      } catch (e) {
        if (e instanceof TaskGoneError && attempt === 0) {
          this.metrics.retries.inc();
          this.#log.info("Retrying on a fresh container", { requestId: opts.requestId, image: spec.image, reason: e.message });
          continue;
        }
        throw e;
      }
    }
  }

  /** Refuses new executions, lets in-flight ones finish (bounded), removes every task. */
  async pause(): Promise<void> {
    this.#paused = true;
    const pausing = (this.#pausing ??= (async () => {
      this.#admission.rejectAll(new PausedError());
      await this.#drain();
      await this.#pool.removeAll("executor paused", new PausedError());
      this.#log.info("Paused", { reservations: this.#ledger.reservations });
    })());
    await pausing;
  }

  unpause(): void {
    this.#paused = false;
    this.#pausing = undefined;
    this.#log.info("Unpaused");
  }

  /** Paused, drained, and every task removed: the ledger is at zero. */
  get #fullyPaused(): boolean {
    return this.#paused && this.#pool.all().length === 0 && this.#ledger.reservations === 0;
  }

  /** Changes capacity, idle timeout, GPU use or the microVM runtime; only while paused. */
  async updateConfig(update: SettingsUpdate): Promise<EngineSettings> {
    if (!this.#paused) throw new ConflictError("Cannot update the config while running: pause the executor first", "NOT_PAUSED");
    if (!this.#fullyPaused) throw new ConflictError("Cannot update the config yet: the executor is still pausing (draining requests, removing tasks)", "NOT_PAUSED");
    const defined = Object.fromEntries(Object.entries(update).filter(([, v]) => v !== undefined));
    const next = { ...this.#s, ...defined };
    if (next.hasGpu && !this.#s.hasGpu) await this.#gpu.enable(this.#d.loadGpu);
    if (!next.hasGpu && this.#s.hasGpu) this.#gpu.disable();
    this.#s = next;
    this.#applyCapacity();
    this.#cleaner.reschedule();
    this.#log.info("Config updated", { update });
    return this.#s;
  }

  /** Pause, remove everything, stop the background loops. */
  async shutdown(): Promise<void> {
    await this.pause();
    this.#watch.stop();
    this.#cleaner.stop();
    this.#gpu.disable();
  }

  async stats(): Promise<Stats> {
    const usage = await this.#d.host.usage().catch(() => ({ cpuPercent: 0, memPercent: 0 }));
    return snapshotStats({
      host: this.#host,
      usage,
      ledger: this.#ledger,
      gpuModel: this.#gpu.model,
      paused: this.#paused,
      tasks: this.#pool.all().length,
      queued: this.#admission.queueLength,
      engine: this.#watch.status,
    });
  }

  tasks(): TaskInfo[] {
    return snapshotTasks(this.#pool.all());
  }

  /** The gauges GET /metrics reports, read now. */
  metricsSnapshot(): MetricsSnapshot {
    return snapshotMetrics({
      tasks: this.#pool.all(),
      removing: this.#pool.removing,
      ledger: this.#ledger,
      paused: this.#paused,
      engine: this.#watch.status,
      host: this.#host,
      queueLength: this.#admission.queueLength,
      inFlight: this.#inFlight,
      gpus: this.#gpu.devices,
    });
  }

  engineStatus() {
    return this.#watch.status;
  }

  get queueLength(): number {
    return this.#admission.queueLength;
  }

  get ledger(): Ledger {
    return this.#ledger;
  }

  /** A ready task for `key` with this request counted in flight, starting one when there is none. */
  async #acquireReady(key: string, spec: TaskSpec, signal?: AbortSignal): Promise<Task> {
    for (;;) {
      let task = this.#pool.get(key);
      if (!task) {
        task = this.#pool.add(key, spec);
        void this.#admitAndLaunch(task);
      }
      // Counted on the task while it waits too, so that no eviction picks a task the moment it is
      // ready, before its waiting requests reach it.
      task.inFlight++;
      if (task.state.kind !== "ready") {
        try {
          await raceAbort(task.ready, signal);
        } catch (e) {
          this.#detach(task);
          throw e;
        }
      }
      if (this.#paused) {
        this.#detach(task);
        throw new PausedError();
      }
      if (task.state.kind === "ready") {
        this.#inFlight++;
        return task;
      }
      this.#detach(task); // removed between ready and now: start again
    }
  }

  /** A request leaves a task; an idle task may now make room for waiters. */
  #detach(task: Task): void {
    task.inFlight--;
    task.lastUsed = this.#d.clock.now();
    if (task.inFlight === 0) this.#admission.pump();
  }

  async #admitAndLaunch(task: Task): Promise<void> {
    const { cpuTenths, memMB, gpuCount } = task.spec;
    try {
      const r = await this.#admission.acquire({ cpuTenths, memMB, gpuCount }, task.abort.signal);
      if (task.state.kind !== "starting") {
        this.#ledger.release(r);
        this.#admission.pump();
        return;
      }
      await this.#pool.launch(task, r);
    } catch (e) {
      this.#pool.fail(task, e);
    }
  }

  /** Forwards the input, then counts the request done; an idle task may now make room for waiters. */
  async #forward(task: Task, input: string, signal?: AbortSignal): Promise<string> {
    try {
      return await forwardToTask(task, input, signal, this.#forwardCtx);
    } finally {
      this.#inFlight--;
      if (this.#inFlight === 0) for (const w of this.#drainWaiters.splice(0)) w();
      this.#detach(task);
    }
  }

  /** Resolves once no request is in flight, or after the drain timeout. */
  async #drain(): Promise<void> {
    if (this.#inFlight === 0) return;
    await new Promise<void>((resolve) => {
      const cancel = this.#d.clock.setTimer(this.#s.drainTimeoutMs, () => {
        this.#log.warn("Drain timeout reached with requests still in flight", { inFlight: this.#inFlight });
        resolve();
      });
      this.#drainWaiters.push(() => {
        cancel();
        resolve();
      });
    });
  }

  async #requireSgx(): Promise<void> {
    const reason = await this.#d.checkSgx?.(this.#s.sgx);
    if (reason) throw new BadRequestError(`Field "use_sgx" cannot be served: ${reason}`, { field: "use_sgx", code: "SGX_UNAVAILABLE" });
  }

  #specLimits(): SpecLimits {
    const cap = this.#ledger.capacity;
    return {
      capacity: { cpuTenths: cap.cpuTenths, memMB: cap.memMB, gpus: cap.gpus.length },
      microVMRuntime: this.#s.microVMRuntime,
      sgxEnabled: this.#s.sgx.enable,
      allowedImages: this.#s.allowedImages,
    };
  }

  #applyCapacity(): void {
    const clipped = clipCapacity({ cpu: this.#s.cpu, memMB: this.#s.memMB }, this.#host);
    this.#ledger.setCapacity({ ...clipped, gpus: this.#s.hasGpu ? this.#gpu.indexes : [] });
  }
}
