/**
 * The executor: admits execute requests, keeps warm replicas per key,
 * forwards inputs, and pauses, reconfigures and stops. Web-standard APIs
 * only. The request path is in docs/architecture.md.
 */
import { Admission } from "./admission.ts";
import { BadRequestError, ExecutorError, PausedError } from "./errors.ts";
import { RecentRequests, type RecentRequest } from "./recent.ts";
import { forwardToTask, TaskGoneError, type ForwardContext, type TaskUse } from "./forward.ts";
import { UsageBook, type RequestUsage } from "./usage.ts";
import { pickEvictions } from "./policy.ts";
import { Ledger } from "./ledger.ts";
import type {
  Clock,
  ConnectProbe,
  DiskProbe,
  GpuProbe,
  HostProbe,
  Logger,
  TaskClient,
  TaskRuntime,
} from "./ports.ts";
import { DiskGuard } from "./disk-guard.ts";
import {
  clipCapacity,
  diffSettings,
  type EngineSettings,
  type SettingsChange,
  type SettingsUpdate,
} from "./settings.ts";
import { GpuMonitor } from "./gpu-monitor.ts";
import { HostMemoryGuard } from "./host-memory.ts";
import { EngineWatch } from "./engine-watch.ts";
import { IdleCleaner } from "./idle-cleaner.ts";
import { EngineMetrics, type MetricsSnapshot } from "./metrics.ts";
import { Prewarm, resolvePrewarm } from "./prewarm.ts";
import { TaskPool } from "./task-pool.ts";
import { outlasts } from "./waits.ts";
import { InFlight } from "./in-flight.ts";
import type { PullInfo } from "./image-pulls.ts";
import {
  keyHash,
  recordableImage,
  resolveSpec,
  taskKey,
  type SpecLimits,
  type TaskIntent,
} from "./task-spec.ts";
import type { Task } from "./task.ts";
import {
  snapshotMetrics,
  snapshotStats,
  snapshotTasks,
  type Stats,
  type TaskInfo,
} from "./snapshot.ts";

export interface ExecutorDeps {
  /** Where tasks run (docs/architecture.md, "The task runtime"). */
  runtime: TaskRuntime;
  client: TaskClient;
  host: HostProbe;
  clock: Clock;
  logger: Logger;
  settings: EngineSettings;
  /** Loads NVML when has_gpu is set; rejects with the reason when it cannot. */
  loadGpu?: () => Promise<GpuProbe>;
  /** Says why SGX cannot be used on this host (device or AESM socket missing), or undefined. */
  checkSgx?: (sgx: EngineSettings["sgx"]) => Promise<string | undefined>;
  /** The engine's disk: each task's layer (when the executor holds the disk bound) and the free space. */
  disk?: DiskProbe;
  /** Whether a leftover task still accepts a connection: without it, no adoption (every leftover is removed). */
  probe?: ConnectProbe;
}

/** What POST /update-config did: the settings now, and each field that changed. */
export interface ConfigChange {
  settings: EngineSettings;
  changed: SettingsChange;
}

/** The replica a request was given, for the record of recent requests. */
interface Seen {
  at: number;
  task?: Task;
  /** When it got its slot. */
  takenAt?: number;
  /** What it used at the task, once the task answered (usage on). */
  use?: TaskUse;
  /** The replica became ready after the request arrived: it started for it, or while it waited. */
  cold: boolean;
}

/** How long start-up waits for adoption before it serves anyway. */
const ADOPTION_WAIT_MS = 20_000;

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
  #diskGuard?: DiskGuard;
  #memoryGuard: HostMemoryGuard;
  #prewarm: Prewarm;
  #paused = false;
  #pausing?: Promise<void>;
  #inFlight = new InFlight();
  /** Counters for GET /metrics; see metricsSnapshot() for the gauges. */
  readonly metrics = new EngineMetrics();
  #forwardCtx: ForwardContext;
  #recent = new RecentRequests();
  #usage = new UsageBook();

  private constructor(deps: ExecutorDeps) {
    this.#d = deps;
    this.#s = { ...deps.settings };
    this.#log = deps.logger.child({ component: "executor" });
    this.#ledger = new Ledger({ cpuTenths: 0, memMB: 0, gpus: [] });
    const settings = () => this.#s;
    this.#pool = new TaskPool({
      runtime: deps.runtime,
      client: deps.client,
      clock: deps.clock,
      logger: deps.logger,
      ledger: this.#ledger,
      settings,
      metrics: this.metrics,
      gpuIds: (indexes) => this.#gpu.uuids(indexes),
      disk: deps.disk,
      host: deps.host,
      specLimits: () => this.#specLimits(),
      probe: deps.probe,
      gpuIndexes: (uuids) => this.#gpu.indexesOf(uuids),
    });
    this.#admission = new Admission({
      ledger: this.#ledger,
      pool: this.#pool,
      clock: deps.clock,
      settings,
      launch: (t) => void this.#launch(t),
      metrics: this.metrics,
    });
    this.#prewarm = new Prewarm({
      pool: this.#pool,
      ledger: this.#ledger,
      clock: deps.clock,
      logger: deps.logger,
      metrics: this.metrics,
      queueLength: () => this.#admission.queueLength,
      paused: () => this.#paused,
      launch: (t) => void this.#launch(t),
    });
    const freed = () => {
      this.#admission.run();
      this.#prewarm.run();
    };
    this.#gpu = new GpuMonitor({
      ledger: this.#ledger,
      clock: deps.clock,
      logger: deps.logger,
      settings,
      freed,
    });
    this.#watch = new EngineWatch({
      runtime: deps.runtime,
      pool: this.#pool,
      clock: deps.clock,
      logger: deps.logger,
      freed,
    });
    this.#memoryGuard = new HostMemoryGuard({
      host: deps.host,
      pool: this.#pool,
      clock: deps.clock,
      logger: deps.logger,
      settings,
      freed,
    });
    this.#cleaner = new IdleCleaner({
      pool: this.#pool,
      clock: deps.clock,
      logger: deps.logger,
      settings,
      metrics: this.metrics,
      freed,
      pinned: (t) => this.#prewarm.pinned(t),
    });
    if (deps.disk)
      this.#diskGuard = new DiskGuard({
        pool: this.#pool,
        disk: deps.disk,
        clock: deps.clock,
        logger: deps.logger,
        settings,
        metrics: this.metrics,
        freed,
      });
    this.#forwardCtx = {
      client: deps.client,
      runtime: deps.runtime,
      clock: deps.clock,
      pool: this.#pool,
      settings,
      served: this.metrics.served,
    };
  }

  /** Reads the host, loads NVML when asked, and starts the background loops. */
  static async create(deps: ExecutorDeps): Promise<Executor> {
    const ex = new Executor(deps);
    ex.#host = { cores: await deps.host.cores(), memoryMB: await deps.host.memoryMB() };
    if (ex.#s.hasGpu) await ex.#gpu.enable(deps.loadGpu);
    ex.#applyCapacity();
    ex.#prewarm.set(resolvePrewarm(ex.#s.prewarm, ex.#specLimits()));
    ex.#watch.start();
    // An earlier run's tasks are adopted (or removed) before the executor serves or prewarms; an
    // engine that answers too slowly for that does not keep the executor from serving.
    const late = await outlasts(ex.#watch.leftoversHandled, ADOPTION_WAIT_MS, deps.clock);
    if (late)
      ex.#log.warn(
        "The engine is slow to answer: serving before an earlier run's tasks are adopted",
        { waitedS: ADOPTION_WAIT_MS / 1000 },
      );
    ex.#cleaner.start();
    ex.#diskGuard?.start();
    await ex.#memoryGuard.start();
    ex.#prewarm.start();
    ex.#pool.startSweeps();
    return ex;
  }

  get paused(): boolean {
    return this.#paused;
  }

  get settings(): Readonly<EngineSettings> {
    return this.#s;
  }

  /**
   * Runs `input` on a replica for `intent` and returns the task's response body.
   * `requestId` only labels the log lines this request causes; the input is never logged.
   */
  async execute(
    intent: TaskIntent,
    input: string,
    opts: {
      signal?: AbortSignal;
      requestId?: string;
      /** Given what the request used, where it reached a task (usage on); before this resolves. */
      onUsage?: (u: RequestUsage) => void;
    } = {},
  ): Promise<string> {
    const arrived = this.#d.clock.now();
    const seen: Seen = { at: arrived, cold: false };
    let outcome = "ok";
    let usage: RequestUsage | undefined;
    try {
      const body = await this.#execute(intent, input, opts, seen);
      usage = this.#used(seen);
      if (usage) opts.onUsage?.(usage);
      return body;
    } catch (e) {
      outcome = e instanceof ExecutorError ? e.code : "INTERNAL";
      usage = this.#used(seen);
      if (usage && e instanceof ExecutorError) e.usage = usage;
      throw e;
    } finally {
      const t = seen.task;
      this.metrics.executed.inc();
      // The client's id is kept only when it is a valid (so bounded) image reference.
      this.#recent.add({
        at: arrived,
        image: t?.spec.image ?? recordableImage(intent.image),
        key: t?.key ?? "",
        outcome,
        ms: this.#d.clock.now() - arrived,
        cold: seen.cold,
        usage,
      });
    }
  }

  /** The request's whole usage once its task answered: the task's part, the wait and the start it caused. */
  #used(seen: Seen): RequestUsage | undefined {
    const t = seen.task;
    if (!seen.use || !t) return undefined;
    const startMs = seen.cold ? t.startMs : 0;
    const waited = (seen.takenAt ?? seen.at) - seen.at;
    const u: RequestUsage = { ...seen.use, startMs, queueMs: Math.max(0, waited - startMs) };
    this.#usage.add(t.key, t.spec, u);
    return u;
  }

  /** Usage per task key since start (GET /usage). */
  usageByKey() {
    return this.#usage.rows();
  }

  /** Usage per image since start (GET /metrics). */
  usageByImage() {
    return this.#usage.byImage();
  }

  /** The image pulls under way (GET /tasks, /ui). */
  pulls(): PullInfo[] {
    return this.#pool.images.list();
  }

  /** The last requests answered, oldest first, each with its key's hash as GET /tasks gives it (GET /requests). */
  recentRequests(): (Omit<RecentRequest, "key"> & { keyHash: string })[] {
    return this.#recent.list().map(({ key, ...r }) => ({ ...r, keyHash: key ? keyHash(key) : "" }));
  }

  async #execute(
    intent: TaskIntent,
    input: string,
    opts: { signal?: AbortSignal; requestId?: string },
    seen: Seen,
  ): Promise<string> {
    if (this.#paused) throw new PausedError();
    const spec = resolveSpec(intent, this.#specLimits());
    const key = taskKey(spec);
    // What only a start needs (the runtime, the SGX device, the image) is checked only when a start
    // may follow; the image before anything is reserved, so that a pull holds no capacity.
    if (this.#pool.replicas(key).length === 0) {
      if (spec.runtimeKind === "microVM") await this.#watch.requireRuntime(spec.runtime!);
      if (spec.sgx) await this.#requireSgx();
      if (!this.#pool.images.ready(spec.image))
        await this.#pool.images.ensure(spec.image, opts.signal, { always: true });
    }
    for (let attempt = 0; ;) {
      const warm = this.#admission.take(key, spec);
      if (warm && this.#prewarm.pinned(warm)) this.metrics.prewarmHits.inc();
      const task = warm ?? (await this.#admission.wait(key, spec, opts.signal));
      seen.task = task;
      if (this.#paused) {
        this.#leave(task);
        throw new PausedError();
      }
      const state = task.state;
      if (state.kind !== "ready") {
        this.#leave(task); // removed between its slot being given and now: ask again
        continue;
      }
      seen.cold = warm === undefined && state.since >= seen.at;
      seen.takenAt = this.#d.clock.now();
      this.#inFlight.enter();
      try {
        return await forwardToTask(
          task,
          input,
          opts.signal,
          this.#forwardCtx,
          this.#s.usage ? (u) => (seen.use = u) : undefined,
        );
      } catch (e) {
        if (e instanceof TaskGoneError && attempt++ === 0) {
          this.metrics.retries.inc();
          this.#log.info("Retrying on a fresh container", {
            requestId: opts.requestId,
            image: spec.image,
            reason: e.message,
            where: e.where,
          });
          continue;
        }
        throw e;
      } finally {
        this.#inFlight.leave();
        this.#leave(task);
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
    this.#prewarm.run();
  }

  /**
   * Changes capacity, idle timeout, GPU use or the microVM runtime, at once,
   * running or paused; the change lasts until restart. New limits govern new
   * admissions: when the capacity shrinks below what is reserved, idle
   * replicas go, busy ones finish, and starts wait until the reservations fit.
   * A changed runtime or GPU setting applies to replicas started afterwards
   * (the runtime's name is part of the task key).
   */
  async updateConfig(update: SettingsUpdate): Promise<ConfigChange> {
    const { changed, next } = diffSettings(this.#s, update);
    // A list that cannot be served is refused (400, naming the entry) before anything changes.
    const prewarm = resolvePrewarm(next.prewarm, this.#limitsFor(next));
    if (next.hasGpu && !this.#s.hasGpu) await this.#gpu.enable(this.#d.loadGpu);
    if (!next.hasGpu && this.#s.hasGpu) this.#gpu.disable();
    this.#s = next;
    this.#applyCapacity();
    this.#prewarm.set(prewarm);
    this.#cleaner.reschedule();
    this.#evictOverCapacity();
    this.#admission.run();
    this.#prewarm.run();
    this.#log.info("Config updated", { changed });
    return { settings: this.#s, changed };
  }

  /** After the capacity shrank below the reservations: idle replicas go, least recently used first. */
  #evictOverCapacity(): void {
    const cap = this.#ledger.capacity;
    const used = this.#ledger.used();
    const excess = {
      cpuTenths: used.cpuTenths - cap.cpuTenths,
      memMB: used.memMB - cap.memMB,
      gpuCount: used.gpus.filter((g) => !cap.gpus.includes(g)).length,
    };
    if (excess.cpuTenths <= 0 && excess.memMB <= 0 && excess.gpuCount <= 0) return;
    for (const id of pickEvictions(this.#pool.views(), excess, { bestEffort: true }) ?? []) {
      const t = this.#pool.byId(id);
      if (t && this.#pool.remove(t, "the capacity was reduced").outcome === "removing")
        this.metrics.evictions.inc();
    }
  }

  /**
   * Pause, remove everything, stop the background loops. With keep_tasks_on_stop the in-flight
   * requests drain and only tasks that are not ready go: the ready ones, and their networks, stay
   * for the next start of the instance to adopt. How many tasks were kept.
   */
  async shutdown(): Promise<number> {
    let kept = 0;
    if (this.#s.keepTasksOnStop) {
      this.#paused = true;
      this.#admission.rejectAll(new PausedError());
      await this.#drain();
      kept = await this.#pool.removeUnready("executor stopping", new PausedError());
      this.#log.info(
        "Stopping: ready tasks stay for the next start to adopt (keep_tasks_on_stop)",
        { kept },
      );
    } else await this.pause();
    await this.#pool.close();
    this.#watch.stop();
    this.#cleaner.stop();
    this.#diskGuard?.stop();
    this.#memoryGuard.stop();
    this.#prewarm.stop();
    this.#gpu.disable();
    return kept;
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
    return snapshotTasks(this.#pool.all(), {
      networkOf: (t) => this.#pool.placement(t),
      diskMB: (t) => this.#diskGuard?.usedMB(t.id),
      prewarmed: (t) => this.#prewarm.pinned(t),
    });
  }

  /** What the ledger holds now, for GET /tasks: read with the tasks, it adds up to their reservations. */
  reserved(): { cpu: number; mem: number; gpus: number[]; reservations: number } {
    const used = this.#ledger.used();
    return {
      cpu: used.cpuTenths / 10,
      mem: used.memMB,
      gpus: used.gpus,
      reservations: this.#ledger.reservations,
    };
  }

  /** The disk bound of each task and who holds it, for GET /tasks. */
  diskStatus(): {
    task_disk_mb: number;
    held_by: "engine" | "executor" | "none";
    check_interval_s?: number;
    min_free_disk_mb: number;
  } {
    const s = this.#s;
    const held_by =
      s.taskDiskMB === 0 || !this.#d.disk
        ? "none"
        : this.#d.disk.enforcedByEngine()
          ? "engine"
          : "executor";
    return {
      task_disk_mb: s.taskDiskMB,
      held_by,
      ...(held_by === "executor" ? { check_interval_s: s.diskCheckIntervalMs / 1000 } : {}),
      min_free_disk_mb: s.minFreeDiskMB,
    };
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
      inFlight: this.#inFlight.count,
      gpus: this.#gpu.devices,
      queuedByKey: this.#admission.queuedByKey(),
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

  /** A request leaves its replica's slot; that slot, or the idle replica, may serve someone in line. */
  #leave(task: Task): void {
    task.leave(this.#d.clock.now());
    this.#admission.run();
  }

  /** Starts a replica that admission added; whatever the outcome, the line runs again. */
  async #launch(task: Task): Promise<void> {
    await Promise.resolve(); // never inside admission's run()
    const outcome = await this.#pool.launch(task);
    if (outcome.kind === "failed") this.#admission.startFailed(task.key, outcome.error);
    this.#prewarm.started(task, outcome.kind === "failed" ? outcome.error : undefined);
    this.#admission.run();
    this.#prewarm.run();
  }

  /** Resolves once no request is in flight, or after the drain timeout. */
  #drain(): Promise<void> {
    return this.#inFlight.drain(this.#d.clock, this.#s.drainTimeoutMs, this.#log);
  }

  async #requireSgx(): Promise<void> {
    const reason = await this.#d.checkSgx?.(this.#s.sgx);
    if (reason)
      throw new BadRequestError(`Field "use_sgx" cannot be served: ${reason}`, {
        field: "use_sgx",
        code: "SGX_UNAVAILABLE",
      });
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

  /** What `s` would let a task ask for (update-config checks its prewarm list against it). */
  #limitsFor(s: EngineSettings): SpecLimits {
    const cap = clipCapacity({ cpu: s.cpu, memMB: s.memMB }, this.#host);
    return {
      // GPUs turned on by the same update are not counted yet: their entries are checked at each start.
      capacity: {
        cpuTenths: cap.cpuTenths,
        memMB: cap.memMB,
        gpus: !s.hasGpu ? 0 : this.#s.hasGpu ? this.#gpu.indexes.length : Infinity,
      },
      microVMRuntime: s.microVMRuntime,
      sgxEnabled: s.sgx.enable,
      allowedImages: s.allowedImages,
    };
  }

  #applyCapacity(): void {
    const clipped = clipCapacity({ cpu: this.#s.cpu, memMB: this.#s.memMB }, this.#host);
    this.#ledger.setCapacity({ ...clipped, gpus: this.#s.hasGpu ? this.#gpu.indexes : [] });
  }
}
