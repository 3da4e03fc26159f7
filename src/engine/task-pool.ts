/**
 * The warm tasks and their containers: launching one for a reservation,
 * removing one (returning its reservation at once), reacting to container
 * events, and finding containers an earlier executor left behind.
 */
import { ExecutorError, InternalError, TaskDiskExceededError, TaskStartError } from "./errors.ts";
import type { Ledger, Reservation } from "./ledger.ts";
import type { EngineMetrics } from "./metrics.ts";
import type { TaskView } from "./policy.ts";
import type {
  Clock,
  ConnectProbe,
  ContainerBackend,
  ContainerEvent,
  DiskProbe,
  Logger,
  TaskClient,
} from "./ports.ts";
import { LABELS, ownership, type EngineSettings } from "./settings.ts";
import { Task } from "./task.ts";
import { containerName, type SpecLimits, type TaskSpec } from "./task-spec.ts";
import { containerSpecFor } from "./container-spec.ts";
import { ImagePulls } from "./image-pulls.ts";
import { waitReady } from "./ready-wait.ts";
import { adopt } from "./adoption.ts";
import { checkFreeDisk } from "./free-disk.ts";
import { TaskNetworks, type TaskNet } from "./task-networks.ts";

export interface TaskPoolDeps {
  backend: ContainerBackend;
  client: TaskClient;
  clock: Clock;
  logger: Logger;
  ledger: Ledger;
  settings: () => EngineSettings;
  /** Counts cold starts, start failures and pulls. */
  metrics?: EngineMetrics;
  /** The GPUs' UUIDs for NVML indexes: Docker is asked by UUID, which a renumbering cannot change. */
  gpuIds?: (indexes: readonly number[]) => string[];
  /** The executor's own container, which joins each task's network; undefined on a host. */
  selfContainer?: string;
  /** The engine's disk: no start while its free space is under min_free_disk_mb. */
  disk?: DiskProbe;
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
  /** The start-up sweep of an earlier run's leftovers while it runs: a shutdown waits for it. */
  #sweeping: Promise<number> | undefined;
  #serial = 0;
  /** Names of containers whose create() has not answered yet. */
  #creating = new Set<string>();
  /** Tells this run's container names from an earlier run's. */
  #run = Math.floor(Math.random() * 36 ** 4)
    .toString(36)
    .padStart(4, "0");

  /** One network per task (settings.isolate); undefined when tasks share one or publish. */
  #networks?: TaskNetworks;
  #nets = new Map<string, TaskNet>();

  /** Images on the engine before a start: one pull per image, bounded, visible (image-pulls.ts). */
  readonly images: ImagePulls;

  constructor(deps: TaskPoolDeps) {
    this.#d = deps;
    this.#log = deps.logger.child({ component: "pool" });
    this.images = new ImagePulls({
      backend: deps.backend,
      clock: deps.clock,
      logger: deps.logger,
      settings: deps.settings,
      metrics: deps.metrics,
    });
    if (deps.settings().isolate) {
      this.#networks = new TaskNetworks({
        backend: deps.backend,
        clock: deps.clock,
        logger: deps.logger,
        settings: deps.settings,
        run: this.#run,
        self: deps.selfContainer,
      });
    }
  }

  /** The task's own network, when tasks get one. */
  network(task: Task): TaskNet | undefined {
    return this.#nets.get(task.id);
  }

  /** Spare task networks kept ready now. */
  get spareNetworks(): number {
    return this.#networks?.spareCount ?? 0;
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

  /** The registry's one way in (a new replica, or an adopted one with its container and network); #forget is the way out. */
  #register(task: Task, containerId?: string, net?: TaskNet): void {
    this.#byId.set(task.id, task);
    this.#byKey.set(task.key, [...this.replicas(task.key), task]);
    if (containerId !== undefined) this.#byContainer.set(containerId, task);
    if (net) this.#nets.set(task.id, net);
  }

  /** Starts the container of a new replica; on any failure the task fails and everything is returned. */
  async launch(task: Task): Promise<LaunchOutcome> {
    const s = this.#d.settings();
    const log = this.#log.child({ task: task.id });
    const signal = task.abort.signal;
    const started = this.#d.clock.now();
    const reservation = task.reservation!;
    // Where a cold start's time goes, for the log: each step's end, ms after `started`.
    const steps: Record<string, number> = {};
    const step = (name: string) => (steps[name] = this.#d.clock.now() - started);
    try {
      await checkFreeDisk(this.#d.disk, s.minFreeDiskMB, this.#d.metrics);
      // The image is there already when a request caused this start (Executor), or pulled now (prewarm).
      await this.images.ensure(task.spec.image, signal);
      step("image");
      signal.throwIfAborted();
      const net = this.#networks ? await this.#networks.acquire(signal) : undefined;
      if (net) this.#nets.set(task.id, net);
      step("network");
      signal.throwIfAborted();
      this.#creating.add(task.id);
      let id: string;
      try {
        id = await this.#d.backend.create(
          containerSpecFor(task, reservation, s, { run: this.#run, gpuIds: this.#d.gpuIds, net }),
        );
      } finally {
        this.#creating.delete(task.id);
      }
      step("create");
      this.#byContainer.set(id, task);
      if (!task.apply({ type: "created", containerId: id }).ok) {
        // Removed while create() ran: the container is ours to remove.
        await this.#track(this.#dispose(task.id, id));
        return removedOutcome(task);
      }
      await this.#d.backend.start(id);
      step("start");
      await waitReady(
        { backend: this.#d.backend, clock: this.#d.clock },
        task,
        id,
        s.readyTimeoutMs,
      );
      step("mark");
      // On its own network: by name where the executor joined it (in a container), else by address.
      const endpoint = await this.#d.backend.endpoint(
        id,
        net
          ? { network: net.name, byAddress: !this.#networks!.joins }
          : { network: s.network || undefined },
      );
      signal.throwIfAborted();
      const now = this.#d.clock.now();
      if (!task.apply({ type: "ready", endpoint, at: now }).ok) return removedOutcome(task);
      this.#d.metrics?.coldStarts.observe((now - started) / 1000);
      log.info("Task ready", {
        image: task.spec.image,
        container: id.slice(0, 12),
        ms: now - started,
        steps,
      });
      return { kind: "ready" };
    } catch (cause) {
      if (task.state.kind !== "starting") {
        // Removed while starting: remove() disposes of what it saw; a network taken since is ours.
        if (!task.containerId) await this.#track(this.#dispose(task.id, undefined));
        return removedOutcome(task);
      }
      const error = this.#fail(task, cause);
      await this.#track(this.#dispose(task.id, task.containerId));
      return { kind: "failed", error };
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
    const id = task.containerId;
    // The client's connections to it go once the container is gone, not before: a request still
    // on them ends as the container ends (a connection error, which may be retried), not cut here.
    const done = this.#track(
      this.#dispose(task.id, id).finally(() => {
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
   * Removes the spare task networks and stops keeping any: the executor is stopping. The networks
   * of the tasks still in the pool (kept for the next start: keep_tasks_on_stop) stay.
   */
  async close(): Promise<void> {
    // A stop during the start-up sweep waits for it: what it has not removed yet would stay behind.
    await Promise.allSettled([this.#sweeping, ...this.#removals]);
    // A create whose answer was lost left a container nobody removes otherwise.
    await this.#removeUnknown().catch((e: unknown) =>
      this.#log.warn("Cannot list this run's containers at stop", { error: (e as Error).message }),
    );
    const kept = new Set(this.all().flatMap((t) => this.#nets.get(t.id)?.id ?? []));
    await this.#networks?.close(kept);
  }

  /** Removes every task that is not ready (starting), leaving the ready ones for the next start to adopt. */
  async removeUnready(reason: string, error?: Error): Promise<number> {
    const kept = this.all().filter((t) => t.state.kind === "ready");
    for (const t of this.all()) if (t.state.kind !== "ready") this.remove(t, reason, error);
    await Promise.allSettled([...this.#removals]);
    return kept.length;
  }

  /** A container event from the engine: a ready replica whose container died leaves the pool. True when one left. */
  onEvent(ev: ContainerEvent): boolean {
    if (ev.action !== "die" && ev.action !== "oom" && ev.action !== "destroy") return false;
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
    await this.#networks?.removeOrphans();
    await this.#removeUnknown();
    let removed = 0;
    for (const task of this.all()) {
      const id = task.containerId;
      if (task.state.kind !== "ready" || !id) continue;
      const st = await this.#d.backend.inspect(id);
      if (
        !st?.running &&
        this.remove(task, "container is no longer running").outcome === "removing"
      )
        removed++;
    }
    return removed;
  }

  /** The same sweep of unknown containers, on its own (the executor runs it every few seconds); never rejects. */
  async sweepUnknown(): Promise<void> {
    await this.#removeUnknown().catch(() => {}); // the engine away: the next sweep or reconnection tries again
  }

  /**
   * Removes this run's containers the pool does not know: those whose create() reached the engine
   * but whose answer did not (a cut connection). Never one whose create() is still under way.
   */
  async #removeUnknown(): Promise<void> {
    const s = this.#d.settings();
    const mine = await this.#d.backend.list(ownership(s.instance, { run: this.#run }));
    for (const c of mine) {
      if (this.#byContainer.has(c.id) || this.#creating.has(c.name)) continue;
      this.#log.warn(
        "Removing a container the executor does not know (its create answer was lost)",
        { container: c.name },
      );
      await this.#removeContainer(c.id);
    }
  }

  /**
   * Adopts what it can of an earlier run's containers (`adopted` is called then) and removes the
   * rest, and their networks. Resolves with how many were removed.
   */
  removeLeftovers(adopted?: () => void): Promise<number> {
    const sweep = this.#removeLeftovers(adopted).finally(() => {
      if (this.#sweeping === sweep) this.#sweeping = undefined;
    });
    this.#sweeping = sweep;
    return sweep;
  }

  async #removeLeftovers(onAdopted?: () => void): Promise<number> {
    const s = this.#d.settings();
    const found = await this.#d.backend.list(ownership(s.instance));
    // Not ours: a container this run is creating is not in the pool's maps until create() returns.
    const leftovers = found.filter(
      (c) => c.labels[LABELS.run] !== this.#run && !this.#byContainer.has(c.id),
    );
    const adopted = await adopt(
      {
        backend: this.#d.backend,
        clock: this.#d.clock,
        logger: this.#d.logger,
        ledger: this.#d.ledger,
        settings: this.#d.settings,
        networks: this.#networks,
        selfContainer: this.#d.selfContainer,
        specLimits: this.#d.specLimits,
        probe: this.#d.probe,
        gpuIndexes: this.#d.gpuIndexes,
        register: (task, containerId, net) => this.#register(task, containerId, net),
      },
      leftovers,
    );
    onAdopted?.();
    const stale = leftovers.filter((c) => !adopted.has(c.id));
    await Promise.all(stale.map((c) => this.#d.backend.remove(c.id)));
    if (stale.length > 0)
      this.#log.info("Removed containers left by an earlier run", { count: stale.length });
    // Their networks next (a network goes only once no container is on it), then spares of our own.
    const keep = new Set([...this.#nets.values()].map((n) => n.id));
    await this.#networks?.sweep(keep);
    this.#networks?.fill();
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

  /** Removes the task's container, if it has one, then its network, if it has one. */
  async #dispose(taskId: string, containerId: string | undefined): Promise<void> {
    if (containerId) await this.#removeContainer(containerId);
    const net = this.#nets.get(taskId);
    if (net) {
      this.#nets.delete(taskId);
      await this.#networks!.release(net);
    }
  }

  async #removeContainer(id: string): Promise<void> {
    try {
      await this.#d.backend.remove(id);
    } catch (e) {
      this.#log.warn("Cannot remove container", {
        container: id.slice(0, 12),
        error: (e as Error).message,
      });
    } finally {
      this.#byContainer.delete(id);
    }
  }
}

const NONE: readonly Task[] = [];

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
