/**
 * The warm tasks and their containers: launching one for a reservation,
 * removing one (returning its reservation at once), reacting to container
 * events, and finding containers an earlier executor left behind.
 */
import { ContainerExitedError, ExecutorError, InternalError, TaskStartError } from "./errors.ts";
import type { Ledger, Reservation } from "./ledger.ts";
import type { EngineMetrics } from "./metrics.ts";
import type { TaskView } from "./policy.ts";
import type { Clock, ContainerBackend, ContainerEvent, ContainerSpec, Logger, TaskClient } from "./ports.ts";
import { LABELS, READY_MARK, type EngineSettings } from "./settings.ts";
import { Task } from "./task.ts";
import { containerName, keyHash, type TaskSpec } from "./task-spec.ts";

export interface TaskPoolDeps {
  backend: ContainerBackend;
  client: TaskClient;
  clock: Clock;
  logger: Logger;
  ledger: Ledger;
  settings: () => EngineSettings;
  /** Called whenever resources were returned or a task went idle. */
  onRelease: () => void;
  /** Counts cold starts, start failures and pulls. */
  metrics?: EngineMetrics;
  /** The GPUs' UUIDs for NVML indexes: Docker is asked by UUID, which a renumbering cannot change. */
  gpuIds?: (indexes: readonly number[]) => string[];
}

export class TaskPool {
  #d: TaskPoolDeps;
  #log: Logger;
  #tasks = new Map<string, Task>();
  #byContainer = new Map<string, Task>();
  #pulls = new Map<string, Promise<void>>();
  #removals = new Set<Promise<void>>();
  #serial = 0;
  /** Tells this run's container names from an earlier run's. */
  #run = Math.floor(Math.random() * 36 ** 4).toString(36).padStart(4, "0");

  constructor(deps: TaskPoolDeps) {
    this.#d = deps;
    this.#log = deps.logger.child({ component: "pool" });
  }

  /** Tasks taken out of the pool whose containers are still being removed. */
  get removing(): number {
    return this.#removals.size;
  }

  get(key: string): Task | undefined {
    return this.#tasks.get(key);
  }

  all(): Task[] {
    return [...this.#tasks.values()];
  }

  views(): TaskView[] {
    return this.all().map((t) => ({
      key: t.key,
      state: t.state.kind,
      inFlight: t.inFlight,
      lastUsed: t.lastUsed,
      cpuTenths: t.spec.cpuTenths,
      memMB: t.spec.memMB,
      gpuCount: t.spec.gpuCount,
    }));
  }

  /** Registers a new starting task for `key`; the caller launches it once admitted. */
  add(key: string, spec: TaskSpec): Task {
    const name = containerName(spec, { instance: this.#d.settings().instance, run: this.#run, serial: ++this.#serial });
    const task = new Task({ key, spec, name, now: this.#d.clock.now() });
    this.#tasks.set(key, task);
    return task;
  }

  /** Starts the container for an admitted task; on any failure the task fails and everything is returned. */
  async launch(task: Task, reservation: Reservation): Promise<void> {
    task.reservation = reservation;
    const s = this.#d.settings();
    const log = this.#log.child({ task: task.name });
    const signal = task.abort.signal;
    const started = this.#d.clock.now();
    try {
      await this.#ensureImage(task.spec.image, log, signal);
      signal.throwIfAborted();
      const id = await this.#d.backend.create(this.#containerSpec(task, reservation, s));
      task.containerId = id;
      this.#byContainer.set(id, task);
      signal.throwIfAborted();
      await this.#d.backend.start(id);
      await this.#waitReady(task, id, s.readyTimeoutMs);
      const endpoint = await this.#d.backend.endpoint(id, { network: s.network || undefined });
      signal.throwIfAborted();
      task.lastUsed = this.#d.clock.now();
      task.apply({ type: "ready", endpoint, at: task.lastUsed });
      this.#d.metrics?.coldStarts.observe((task.lastUsed - started) / 1000);
      log.info("Task ready", { image: task.spec.image, container: id.slice(0, 12), ms: task.lastUsed - started });
    } catch (cause) {
      // Removed while starting (remove() may have run before the container existed), or failed.
      if (task.state.kind === "starting") this.fail(task, cause);
      await this.#track(this.#removeContainer(task));
    }
  }

  /** Marks a starting task failed and returns what it held; waiters get the error. */
  fail(task: Task, cause: unknown): void {
    if (task.state.kind !== "starting") return;
    const error = cause instanceof ExecutorError ? cause : new TaskStartError(`Cannot start task "${task.spec.image}": ${(cause as Error).message}`, { cause });
    this.#d.metrics?.startFailures.inc();
    this.#log.warn("Task failed to start", { task: task.name, image: task.spec.image, error: error.message, code: error.code });
    task.apply({ type: "fail", error });
    this.#forget(task);
  }

  /**
   * Takes a task out of the pool: its key is free for a fresh start and its
   * reservation is returned before this returns; the container goes in the background.
   */
  remove(task: Task, reason: string, error?: Error): Promise<void> {
    const kind = task.state.kind;
    if (kind !== "starting" && kind !== "ready") return Promise.resolve();
    task.apply({ type: "remove", reason, error });
    task.abort.abort(error ?? new InternalError(`Task removed: ${reason}`));
    this.#forget(task);
    this.#log.info("Removing task", { task: task.name, reason });
    return this.#track(this.#removeContainer(task).finally(() => task.apply({ type: "removed" })));
  }

  /** Keeps a container removal in view until it settles, so removeAll() can wait for it. */
  #track(p: Promise<void>): Promise<void> {
    const tracked = p.finally(() => this.#removals.delete(tracked));
    this.#removals.add(tracked);
    return tracked;
  }

  /** Removes every task and waits for their containers to go. */
  async removeAll(reason: string, error?: Error): Promise<void> {
    for (const t of this.all()) void this.remove(t, reason, error);
    await Promise.allSettled([...this.#removals]);
  }

  /** A container event from the engine: a task whose container died leaves the pool at once. */
  onEvent(ev: ContainerEvent): void {
    if (ev.action !== "die" && ev.action !== "oom" && ev.action !== "destroy") return;
    const task = this.#byContainer.get(ev.id);
    if (!task || task.state.kind !== "ready") return;
    const reason = ev.action === "oom" ? "container was killed for using too much memory" : `container stopped (${ev.action}${ev.exitCode === undefined ? "" : `, exit code ${ev.exitCode}`})`;
    void this.remove(task, reason);
  }

  /** Checks every ready task's container, e.g. after the event stream reconnects. */
  async reconcile(): Promise<void> {
    for (const task of this.all()) {
      if (task.state.kind !== "ready" || !task.containerId) continue;
      const st = await this.#d.backend.inspect(task.containerId);
      if (!st?.running) void this.remove(task, "container is no longer running");
    }
  }

  /** Removes containers of this executor instance that are not in the pool (left by an earlier run). */
  async removeLeftovers(): Promise<number> {
    const s = this.#d.settings();
    const found = await this.#d.backend.list({ [LABELS.managed]: "1", [LABELS.instance]: s.instance });
    // Not ours: a container this run is creating is not in the pool's maps until create() returns.
    const stale = found.filter((c) => c.labels[LABELS.run] !== this.#run && !this.#byContainer.has(c.id));
    await Promise.all(stale.map((c) => this.#d.backend.remove(c.id)));
    if (stale.length > 0) this.#log.info("Removed containers left by an earlier run", { count: stale.length });
    return stale.length;
  }

  async #waitReady(task: Task, id: string, timeoutMs: number): Promise<void> {
    const timeout = AbortSignal.timeout(timeoutMs);
    try {
      await this.#d.backend.waitForMark(id, { mark: READY_MARK, signal: AbortSignal.any([task.abort.signal, timeout]) });
    } catch (e) {
      if (timeout.aborted && !task.abort.signal.aborted) {
        const lines = await this.#d.backend.logsTail(id, 10).catch(() => []);
        throw new TaskStartError(
          `Task "${task.spec.image}" did not print "${READY_MARK}" within the ready timeout of ${timeoutMs / 1000} s${lines.length ? `; last log lines:\n${lines.join("\n")}` : ""}`,
          { code: "TASK_NOT_READY" },
        );
      }
      if (e instanceof ContainerExitedError) {
        throw new ContainerExitedError(e.exitCode, e.lastLines, `Task "${task.spec.image}" exited with code ${e.exitCode} before it was ready${e.lastLines.length ? `; last log lines:\n${e.lastLines.join("\n")}` : ""}`);
      }
      throw e;
    }
  }

  #ensureImage(image: string, log: Logger, signal: AbortSignal): Promise<void> {
    let p = this.#pulls.get(image);
    if (!p) {
      p = (async () => {
        if (await this.#d.backend.hasImage(image)) return;
        log.info("Pulling image", { image });
        this.#d.metrics?.pulls.inc();
        await this.#d.backend.pullImage(image, { onProgress: (line) => log.info("Pull progress", { image, progress: line }) });
        log.info("Pulled image", { image });
      })().finally(() => this.#pulls.delete(image));
      this.#pulls.set(image, p);
    }
    // One pull serves every waiter; a waiter that gives up does not cancel it for the others.
    return raceAbort(p, signal);
  }

  #containerSpec(task: Task, r: Reservation, s: EngineSettings): ContainerSpec {
    const spec = task.spec;
    return {
      name: task.name,
      image: spec.image,
      labels: {
        [LABELS.managed]: "1",
        [LABELS.instance]: s.instance,
        [LABELS.key]: keyHash(task.key),
        [LABELS.image]: spec.image,
        [LABELS.run]: this.#run,
      },
      nanoCpus: spec.cpuTenths * 100_000_000,
      memoryBytes: spec.memMB * 1024 * 1024,
      pidsLimit: s.pidsLimit,
      runtime: spec.runtime,
      gpus: r.gpus.length > 0 ? (this.#d.gpuIds?.(r.gpus) ?? r.gpus.map(String)) : undefined,
      sgx: spec.sgx ? { device: s.sgx.device, aesmdPath: s.sgx.aesmdPath } : undefined,
      network: s.network || undefined,
      securityOpt: s.noNewPrivileges ? ["no-new-privileges:true"] : [],
      capDrop: [...s.capDrop],
      nofile: s.nofile,
      privileged: false,
    };
  }

  /** Drops the task from the maps and returns its reservation. */
  #forget(task: Task): void {
    if (this.#tasks.get(task.key) === task) this.#tasks.delete(task.key);
    if (task.reservation) this.#d.ledger.release(task.reservation);
    const endpoint = task.endpoint;
    if (endpoint) this.#d.client.forget(endpoint);
    this.#d.onRelease();
  }

  async #removeContainer(task: Task): Promise<void> {
    const id = task.containerId;
    if (!id) return;
    try {
      await this.#d.backend.remove(id);
    } catch (e) {
      this.#log.warn("Cannot remove container", { container: id.slice(0, 12), error: (e as Error).message });
    } finally {
      this.#byContainer.delete(id);
    }
  }
}

/** `p`, or the signal's reason as soon as it aborts. */
export function raceAbort<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
