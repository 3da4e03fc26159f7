/**
 * The warm tasks and their containers: launching one for a reservation,
 * removing one (returning its reservation at once), reacting to container
 * events, and finding containers an earlier executor left behind.
 */
import {
  ContainerExitedError,
  ExecutorError,
  InternalError,
  StartAbortedError,
  TaskDiskExceededError,
  TaskStartError,
} from "./errors.ts";
import type { Ledger, Reservation } from "./ledger.ts";
import type { EngineMetrics } from "./metrics.ts";
import type { TaskView } from "./policy.ts";
import type {
  Clock,
  ConnectProbe,
  DiskProbe,
  HostProbe,
  Logger,
  Placement,
  TaskClient,
  TaskEvent,
  TaskRuntime,
} from "./ports.ts";
import { READY_MARK, type EngineSettings } from "./settings.ts";
import { Task } from "./task.ts";
import { containerName, keyHash, specLabel, type SpecLimits, type TaskSpec } from "./task-spec.ts";
import { ImagePulls } from "./image-pulls.ts";
import { adopt } from "./adoption.ts";
import { checkFreeDisk } from "./free-disk.ts";
import { checkHostMemory } from "./host-memory.ts";
import { deadline, type Deadline } from "./waits.ts";

export interface TaskPoolDeps {
  runtime: TaskRuntime;
  client: TaskClient;
  clock: Clock;
  logger: Logger;
  ledger: Ledger;
  settings: () => EngineSettings;
  /** Counts cold starts, start failures and pulls. */
  metrics?: EngineMetrics;
  /** The GPUs' UUIDs for NVML indexes: Docker is asked by UUID, which a renumbering cannot change. */
  gpuIds?: (indexes: readonly number[]) => string[];
  /** The engine's disk: no start while its free space is under min_free_disk_mb. */
  disk?: DiskProbe;
  /** The host: no start while its available memory is under min_free_host_mem_mb. */
  host?: HostProbe;
  /**
   * Adoption of an earlier run's tasks at start-up: what the config lets a task ask for now, the
   * check that a leftover still listens, and the NVML indexes of GPU UUIDs. Without the first two,
   * every leftover is removed.
   */
  specLimits?: () => SpecLimits;
  probe?: ConnectProbe;
  gpuIndexes?: (uuids: readonly string[]) => number[] | undefined;
}

/** How a launch ended: ready, failed (with the error waiters get), or removed while starting. */
export type LaunchOutcome =
  { kind: "ready" } | { kind: "failed"; error: ExecutorError } | { kind: "removed" };

/** What remove() did: began removing the task, or found it already leaving (removing, gone or failed). */
export type RemoveOutcome = "removing" | "already_leaving";

/**
 * The replicas of every key. It never calls back into the scheduler: whoever
 * frees something here runs the scheduler afterwards (see docs/architecture.md).
 */
export class TaskPool {
  #d: TaskPoolDeps;
  #log: Logger;
  #byKey = new Map<string, Task[]>();
  #byId = new Map<string, Task>();
  #byContainer = new Map<string, Task>();
  #removals = new Set<Promise<void>>();
  /** Cancels the next periodic sweep (startSweeps); undefined once closed. */
  #cancelSweep?: () => void;
  /** The start-up sweep of an earlier run's leftovers while it runs: a shutdown waits for it. */
  #sweeping: Promise<number> | undefined;
  #serial = 0;
  /** Launches under way: a removal of a starting task waits for its launch to undo what it made. */
  #starts = new Map<Task, Promise<LaunchOutcome>>();
  /** Tells this run's container names from an earlier run's. */
  #run = Math.floor(Math.random() * 36 ** 4)
    .toString(36)
    .padStart(4, "0");

  /** Where each started or adopted task is reached (its own network, a shared one, published). */
  #placements = new Map<string, Placement>();

  /** Images on the engine before a start: one pull per image, bounded, visible (image-pulls.ts). */
  readonly images: ImagePulls;

  constructor(deps: TaskPoolDeps) {
    this.#d = deps;
    this.#log = deps.logger.child({ component: "pool" });
    this.images = new ImagePulls({
      images: deps.runtime,
      clock: deps.clock,
      logger: deps.logger,
      settings: deps.settings,
      metrics: deps.metrics,
    });
  }

  /** Where the task is reached: as its start gave it, or, before that, where it will be. */
  placement(task: Task): Placement {
    return this.#placements.get(task.id) ?? this.#d.runtime.placement;
  }

  /** Tasks taken out of the pool whose containers are still being removed. */
  get removing(): number {
    return this.#removals.size;
  }

  /** The key's replicas that are starting or ready. */
  replicas(key: string): readonly Task[] {
    return this.#byKey.get(key) ?? NONE;
  }

  byId(id: string): Task | undefined {
    return this.#byId.get(id);
  }

  all(): Task[] {
    return [...this.#byId.values()];
  }

  views(tasks: Iterable<Task> = this.#byId.values()): TaskView[] {
    const out: TaskView[] = [];
    for (const t of tasks) {
      out.push({
        id: t.id,
        key: t.key,
        state: t.state.kind,
        inFlight: t.inFlight,
        lastUsed: t.lastUsed,
        cpuTenths: t.spec.cpuTenths,
        memMB: t.spec.memMB,
        gpuCount: t.spec.gpuCount,
      });
    }
    return out;
  }

  /** Registers a new starting replica holding `reservation`; the caller launches it. */
  add(key: string, spec: TaskSpec, reservation: Reservation): Task {
    const id = containerName(spec, {
      instance: this.#d.settings().instance,
      run: this.#run,
      serial: ++this.#serial,
    });
    const task = new Task({ id, key, spec, reservation, now: this.#d.clock.now() });
    this.#register(task);
    return task;
  }

  /** The registry's one way in (a new replica, or an adopted one with its container and placement); #forget is the way out. */
  #register(task: Task, containerId?: string, placement?: Placement): void {
    this.#byId.set(task.id, task);
    this.#byKey.set(task.key, [...this.replicas(task.key), task]);
    if (containerId !== undefined) this.#byContainer.set(containerId, task);
    if (placement) this.#placements.set(task.id, placement);
  }

  /** Starts the container of a new replica; on any failure the task fails and everything is returned. */
  launch(task: Task): Promise<LaunchOutcome> {
    const p = this.#launch(task);
    this.#starts.set(task, p);
    void p.finally(() => this.#starts.delete(task));
    return p;
  }

  async #launch(task: Task): Promise<LaunchOutcome> {
    const s = this.#d.settings();
    const log = this.#log.child({ task: task.id });
    const signal = task.abort.signal;
    const started = this.#d.clock.now();
    const reservation = task.reservation!;
    try {
      await checkFreeDisk(this.#d.disk, s.minFreeDiskMB, this.#d.metrics);
      await checkHostMemory(this.#d.host, s.minFreeHostMemMB);
      // The image is there already when a request caused this start (Executor), or pulled now (prewarm).
      await this.images.ensure(task.spec.image, signal);
      // Where a cold start's time goes, for the log: each step's end, ms after `started`.
      const image = this.#d.clock.now() - started;
      signal.throwIfAborted();
      const run = await this.#start(task, reservation.gpus, s.readyTimeoutMs);
      const now = this.#d.clock.now();
      if (!task.apply({ type: "ready", endpoint: run.endpoint, at: now }).ok) {
        // Removed as its start ended: the task is ours to remove.
        this.#byContainer.delete(run.id);
        await this.#d.runtime.remove(run.id);
        return removedOutcome(task);
      }
      this.#placements.set(task.id, run.placement);
      task.meter = run.meter;
      task.startMs = now - started;
      this.#d.metrics?.coldStarts.observe((now - started) / 1000);
      const steps: Record<string, number> = { image };
      for (const [k, v] of Object.entries(run.steps)) steps[k] = image + v;
      log.info("Task ready", {
        image: task.spec.image,
        container: run.id.slice(0, 12),
        ms: now - started,
        steps,
      });
      return { kind: "ready" };
    } catch (cause) {
      // The runtime removed what it made before its start ended.
      if (task.containerId !== undefined) this.#byContainer.delete(task.containerId);
      if (task.state.kind !== "starting") return removedOutcome(task); // removed while starting
      return { kind: "failed", error: this.#fail(task, cause) };
    }
  }

  /**
   * The runtime's start of the task, within the ready timeout on the engine's clock (see
   * docs/architecture.md, "The task runtime"): its failures in the words a client reads.
   */
  async #start(task: Task, gpus: readonly number[], timeoutMs: number) {
    // The ready timeout runs from the task's start, as before the port (docs/configuration.md).
    let dl: Deadline | undefined;
    try {
      return await this.#d.runtime.start(
        {
          name: task.id,
          spec: task.spec,
          gpus: gpus.length > 0 ? (this.#d.gpuIds?.(gpus) ?? gpus.map(String)) : [],
          keyHash: keyHash(task.key),
          specLabel: specLabel(task.spec),
        },
        {
          signal: task.abort.signal,
          onStarted: () =>
            (dl = deadline(
              this.#d.clock,
              timeoutMs,
              () => new TaskStartError("Ready timeout", { code: "TASK_NOT_READY" }),
              task.abort.signal,
            )).signal,
          onCreated: (id) => {
            this.#byContainer.set(id, task);
            task.apply({ type: "created", containerId: id });
          },
        },
      );
    } catch (e) {
      if (e instanceof StartAbortedError) {
        if (!dl?.timedOut() || task.abort.signal.aborted) throw e.reason;
        throw new TaskStartError(
          `Task "${task.spec.image}" did not print "${READY_MARK}" within the ready timeout of ${timeoutMs / 1000} s${e.lastLines.length ? `; last log lines:\n${e.lastLines.join("\n")}` : ""}`,
          { code: "TASK_NOT_READY" },
        );
      }
      if (e instanceof ContainerExitedError) {
        throw new ContainerExitedError(
          e.exitCode,
          e.lastLines,
          `Task "${task.spec.image}" exited with code ${e.exitCode} before it was ready${e.lastLines.length ? `; last log lines:\n${e.lastLines.join("\n")}` : ""}`,
        );
      }
      throw e;
    } finally {
      dl?.cancel();
    }
  }

  /** Marks a starting task failed and returns what it held. */
  #fail(task: Task, cause: unknown): ExecutorError {
    const error =
      cause instanceof ExecutorError
        ? cause
        : new TaskStartError(
            `Cannot start task "${task.spec.image}": ${(cause as Error).message}`,
            { cause },
          );
    this.#d.metrics?.startFailures.inc();
    this.#log.warn("Task failed to start", {
      task: task.id,
      image: task.spec.image,
      error: error.message,
      code: error.code,
      where: error.where,
    });
    const reservation = task.reservation;
    task.apply({ type: "fail", error });
    this.#forget(task, reservation);
    return error;
  }

  /**
   * Takes a replica out of the pool: its reservation is returned before this
   * returns and the container goes in the background (`done`). A replica
   * already leaving is said so, and nothing else happens.
   */
  remove(
    task: Task,
    reason: string,
    error?: Error,
  ): { outcome: RemoveOutcome; done: Promise<void> } {
    const reservation = task.reservation;
    const endpoint = task.endpoint;
    const t = task.apply({ type: "remove", reason });
    if (!t.ok) return { outcome: "already_leaving", done: Promise.resolve() };
    task.abort.abort(error ?? new InternalError(`Task removed: ${reason}`));
    this.#forget(task, reservation);
    this.#log.info("Removing task", { task: task.id, reason });
    // A starting task's launch undoes its start (the runtime removes what it made); a ready one's
    // container goes here. The client's connections to it go once the container is gone, not
    // before: a request still on them ends as the container ends (a connection error, which may
    // be retried), not cut here.
    const starting = this.#starts.get(task);
    const done = this.#track(
      (starting ? starting.then(() => {}) : this.#dispose(task)).finally(() => {
        if (endpoint) this.#d.client.forget(endpoint);
        task.apply({ type: "removed" });
      }),
    );
    return { outcome: "removing", done };
  }

  /** Keeps a container removal in view until it settles, so removeAll() can wait for it. */
  #track(p: Promise<void>): Promise<void> {
    const tracked = p.finally(() => this.#removals.delete(tracked));
    this.#removals.add(tracked);
    return tracked;
  }

  /** Removes every task and waits for their containers (and networks) to go. */
  async removeAll(reason: string, error?: Error): Promise<void> {
    for (const t of this.all()) this.remove(t, reason, error);
    await Promise.allSettled([...this.#removals]);
  }

  /**
   * Stops keeping anything ready (spare networks): the executor is stopping. What the tasks still
   * in the pool hold (kept for the next start: keep_tasks_on_stop) stays.
   */
  async close(): Promise<void> {
    this.#cancelSweep?.();
    this.#cancelSweep = undefined;
    // A stop during the start-up sweep waits for it: what it has not removed yet would stay behind.
    await Promise.allSettled([this.#sweeping, ...this.#removals]);
    await this.#d.runtime.close();
  }

  /** Removes every task that is not ready (starting), leaving the ready ones for the next start to adopt. */
  async removeUnready(reason: string, error?: Error): Promise<number> {
    const kept = this.all().filter((t) => t.state.kind === "ready");
    for (const t of this.all()) if (t.state.kind !== "ready") this.remove(t, reason, error);
    await Promise.allSettled([...this.#removals]);
    return kept.length;
  }

  /** A container event from the engine: a ready replica whose container died leaves the pool. True when one left. */
  onEvent(ev: TaskEvent): boolean {
    const task = this.#byContainer.get(ev.id);
    if (!task || task.state.kind !== "ready") return false;
    const reason =
      ev.action === "oom"
        ? "container was killed for using too much memory"
        : `container stopped (${ev.action}${ev.exitCode === undefined ? "" : `, exit code ${ev.exitCode}`})`;
    return this.remove(task, reason).outcome === "removing";
  }

  /** Checks every ready replica's container, e.g. after the event stream reconnects. How many left. */
  async reconcile(): Promise<number> {
    await this.#d.runtime.sweep();
    let removed = 0;
    for (const task of this.all()) {
      const id = task.containerId;
      if (task.state.kind !== "ready" || !id) continue;
      const st = await this.#d.runtime.inspect(id);
      if (
        !st?.running &&
        this.remove(task, "container is no longer running").outcome === "removing"
      )
        removed++;
    }
    return removed;
  }

  /** The runtime's sweep of what no task holds, on its own (startSweeps runs it every 15 s); never rejects. */
  async sweepUnknown(): Promise<void> {
    await this.#d.runtime.sweep().catch(() => {}); // the engine away: the next sweep or reconnection tries again
  }

  /**
   * Every 15 s, containers of this run the pool does not know go (a create whose answer was cut;
   * docs/architecture.md, "Adoption"); one sweep at a time, until close().
   */
  startSweeps(): void {
    this.#cancelSweep = this.#d.clock.setTimer(UNKNOWN_SWEEP_MS, () => {
      void this.sweepUnknown().then(() => {
        if (this.#cancelSweep) this.startSweeps();
      });
    });
  }

  /**
   * Adopts what it can of an earlier run's tasks (`adopted` is called then) and removes the rest,
   * and what they held. Resolves with how many were removed.
   */
  removeLeftovers(adopted?: () => void): Promise<number> {
    const sweep = this.#removeLeftovers(adopted).finally(() => {
      if (this.#sweeping === sweep) this.#sweeping = undefined;
    });
    this.#sweeping = sweep;
    return sweep;
  }

  async #removeLeftovers(onAdopted?: () => void): Promise<number> {
    const leftovers = await this.#d.runtime.leftovers();
    const adopted = await adopt(
      {
        runtime: this.#d.runtime,
        clock: this.#d.clock,
        logger: this.#d.logger,
        ledger: this.#d.ledger,
        specLimits: this.#d.specLimits,
        probe: this.#d.probe,
        gpuIndexes: this.#d.gpuIndexes,
        register: (task, containerId, placement) => this.#register(task, containerId, placement),
      },
      leftovers,
    );
    onAdopted?.();
    const stale = leftovers.filter((c) => !adopted.has(c.id));
    await Promise.all(stale.map((c) => this.#d.runtime.remove(c.id)));
    if (stale.length > 0)
      this.#log.info("Removed containers left by an earlier run", { count: stale.length });
    await this.#d.runtime.sweep({ earlierRuns: true });
    return stale.length;
  }

  /** Drops the task from the maps and returns its reservation. */
  #forget(task: Task, reservation: Reservation | undefined): void {
    this.#byId.delete(task.id);
    const rest = this.replicas(task.key).filter((t) => t !== task);
    if (rest.length > 0) this.#byKey.set(task.key, rest);
    else this.#byKey.delete(task.key);
    if (reservation) this.#d.ledger.release(reservation);
  }

  /** Removes a ready task's container (and what the runtime made for it alone). */
  async #dispose(task: Task): Promise<void> {
    const id = task.containerId;
    this.#placements.delete(task.id);
    if (id === undefined) return;
    try {
      await this.#d.runtime.remove(id);
    } finally {
      this.#byContainer.delete(id);
    }
  }
}

const NONE: readonly Task[] = [];
/** How often this run's strays are swept (startSweeps). */
const UNKNOWN_SWEEP_MS = 15_000;

/**
 * A replica removed while it started. Removed for its disk use, its start failed for the requests
 * waiting on it (another start would only fill the disk again); else they wait on as before.
 */
function removedOutcome(task: Task): LaunchOutcome {
  const why = task.abort.signal.reason;
  return why instanceof TaskDiskExceededError
    ? { kind: "failed", error: why }
    : { kind: "removed" };
}
