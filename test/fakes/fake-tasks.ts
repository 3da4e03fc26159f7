/**
 * An in-memory TaskRuntime: tasks without containers, networks or logs, for engine tests that need
 * only the port's promises. The same cases as the Docker runtime pass on it
 * (test/contract/task-runtime.contract.ts). Runtimes made from one FakeTaskEngine share its tasks,
 * as runs of an executor share a Docker engine; its `client` serves their endpoints
 * (`http://fake-task/<id>`), echoing unless the image says otherwise.
 */
import { withBytes } from "./fake-task-client.ts";
import {
  ContainerExitedError,
  EngineUnavailableError,
  ImageNotFoundError,
  StartAbortedError,
  TaskConnectError,
} from "../../src/engine/errors.ts";
import type {
  EngineInfo,
  LeftoverTask,
  Placement,
  StartedTask,
  TaskClient,
  TaskEvent,
  TaskLaunch,
  TaskMeter,
  TaskRequest,
  TaskResponse,
  TaskRuntime,
  TaskState,
} from "../../src/engine/ports.ts";
import { normaliseRef, type FakeImage } from "./fake-container.ts";

interface FakeTask {
  /** Its counters, as a cgroup keeps them: CPU ms since start, peak MB (since the last reset). */
  cpuMs: number;
  peakMB: number;
  id: string;
  name: string;
  run: number;
  launch: TaskLaunch;
  image: FakeImage;
  status: "created" | "running" | "exited";
  exitCode: number;
  lines: string[];
  ready: boolean;
  startedAt: number;
  changed: Set<() => void>;
}

/** The shared state of the runtimes made from it: images, tasks, event watchers. */
export class FakeTaskEngine {
  #images = new Map<string, FakeImage>();
  readonly tasks = new Map<string, FakeTask>();
  readonly watchers = new Set<(e: TaskEvent) => void>();
  #serial = 0;
  #runs = 0;
  #starts = 0;

  constructor(images: Record<string, FakeImage> = {}) {
    for (const [ref, image] of Object.entries(images)) this.#images.set(normaliseRef(ref), image);
  }

  image(ref: string): FakeImage | undefined {
    return this.#images.get(normaliseRef(ref));
  }

  nextId(): string {
    return `fake${(++this.#serial).toString().padStart(8, "0")}`;
  }

  nextRun(): number {
    return ++this.#runs;
  }

  nextStart(): number {
    return ++this.#starts;
  }

  /** Stops a running task from outside, as a crash or `docker kill` does. */
  kill(id: string, exitCode = 137): void {
    const t = this.tasks.get(id);
    if (!t || t.status !== "running") return;
    t.status = "exited";
    t.exitCode = exitCode;
    for (const fn of [...t.changed]) fn();
    for (const w of [...this.watchers]) w({ id, action: "die", exitCode });
  }

  /** A task uses `cpuMs` of CPU and touches `mb` (its peak rises to it), as a request's work would. */
  use(id: string, cpuMs: number, mb: number): void {
    const t = this.tasks.get(id);
    if (!t) return;
    t.cpuMs += cpuMs;
    t.peakMB = Math.max(t.peakMB, mb);
  }

  /** Peak resets made, and meter readings taken, all tasks together. */
  peakResets = 0;
  reads = 0;

  /** A meter over a task's counters, as the Docker runtime's over its cgroup (v1: the peak resets). */
  meter(id: string): TaskMeter {
    return {
      source: "fake",
      peakResettable: true,
      read: () => {
        this.reads++;
        const t = this.tasks.get(id);
        return t && { cpuMs: t.cpuMs, memPeakMB: t.peakMB };
      },
      resetPeak: () => {
        const t = this.tasks.get(id);
        if (t) t.peakMB = 1;
        if (t) this.peakResets++;
        return t !== undefined;
      },
    };
  }

  /** Prints a line in a task's output; the ready mark makes it ready. */
  print(id: string, line: string): void {
    const t = this.tasks.get(id);
    if (!t) return;
    t.lines.push(line);
    if (line.includes("meca-init-done")) t.ready = true;
    for (const fn of [...t.changed]) fn();
  }

  /** A TaskClient over the tasks: a running task answers (its image's `respond`, echo by default). */
  client(): TaskClient {
    return {
      send: async (req: TaskRequest): Promise<TaskResponse> => {
        req.signal?.throwIfAborted();
        const id = new URL(req.endpoint).pathname.slice(1);
        const t = this.tasks.get(id);
        if (!t || t.status !== "running")
          throw new TaskConnectError("Cannot connect to the task (ECONNREFUSED)");
        const respond = t.image.respond ?? ((body: string) => ({ status: 200, body }));
        return withBytes(req, await respond(req.body ?? "", { ...req, path: req.path }));
      },
      forget() {},
      close: async () => {},
    };
  }
}

export class FakeTasks implements TaskRuntime {
  readonly help = { name: "Fake engine", unreachable: "It is a fake." };
  readonly placement: Placement = { name: "published", isolated: false };
  #e: FakeTaskEngine;
  #run: number;
  #down: boolean;
  /** Started or adopted by this runtime and not removed. */
  #mine = new Set<string>();

  constructor(engine: FakeTaskEngine, opts: { unreachable?: boolean } = {}) {
    this.#e = engine;
    this.#run = engine.nextRun();
    this.#down = opts.unreachable === true;
  }

  async info(signal?: AbortSignal): Promise<EngineInfo> {
    this.#enter();
    signal?.throwIfAborted();
    return {
      version: "fake",
      apiVersion: "1.41",
      runtimes: ["runc"],
      defaultRuntime: "runc",
      transport: "memory",
    };
  }

  async hasImage(ref: string): Promise<boolean> {
    this.#enter();
    return this.#e.image(ref) !== undefined;
  }

  async pullImage(ref: string): Promise<void> {
    this.#enter();
    if (!this.#e.image(ref)) throw new ImageNotFoundError(ref, "no such image in the fake");
  }

  async start(
    launch: TaskLaunch,
    opts: {
      signal: AbortSignal;
      onCreated?: (id: string) => void;
      onStarted?: () => AbortSignal;
    },
  ): Promise<StartedTask> {
    this.#enter();
    let signal = opts.signal;
    const image = this.#e.image(launch.spec.image);
    if (!image) throw new ImageNotFoundError(launch.spec.image, "no such image in the fake");
    signal.throwIfAborted();
    const t: FakeTask = {
      id: this.#e.nextId(),
      name: launch.name,
      run: this.#run,
      launch,
      image,
      status: "created",
      exitCode: 0,
      lines: [],
      ready: false,
      startedAt: 0,
      changed: new Set(),
      cpuMs: 0,
      peakMB: 1,
    };
    this.#e.tasks.set(t.id, t);
    this.#mine.add(t.id);
    opts.onCreated?.(t.id);
    try {
      signal.throwIfAborted();
      t.status = "running";
      t.startedAt = this.#e.nextStart();
      signal = opts.onStarted?.() ?? signal;
      const how = image.ready ?? true;
      if (how === true) this.#e.print(t.id, "meca-init-done");
      else if (how !== "never") {
        for (const l of how.lines) this.#e.print(t.id, typeof l === "string" ? l : l.line);
        this.#e.kill(t.id, how.exitCode);
      }
      await new Promise<void>((resolve, reject) => {
        const check = () => {
          if (signal.aborted) reject(new StartAbortedError(signal.reason, t.lines.slice(-10)));
          else if (t.status === "exited")
            reject(new ContainerExitedError(t.exitCode, t.lines.slice(-10)));
          else if (t.ready) resolve();
          else return;
          t.changed.delete(check);
          signal.removeEventListener("abort", check);
        };
        t.changed.add(check);
        const bound = signal;
        bound.addEventListener("abort", check);
        check();
      });
      return {
        id: t.id,
        endpoint: `http://fake-task/${t.id}`,
        placement: this.placement,
        steps: {},
        meter: this.#e.meter(t.id),
      };
    } catch (e) {
      await this.remove(t.id);
      throw signal.aborted && !(e instanceof StartAbortedError)
        ? new StartAbortedError(signal.reason, t.lines.slice(-10))
        : e;
    }
  }

  async remove(id: string): Promise<void> {
    this.#enter();
    this.#mine.delete(id);
    const t = this.#e.tasks.get(id);
    if (!t) return;
    this.#e.kill(id);
    this.#e.tasks.delete(id);
    for (const w of [...this.#e.watchers]) w({ id, action: "destroy" });
  }

  async inspect(id: string): Promise<TaskState | undefined> {
    this.#enter();
    const t = this.#e.tasks.get(id);
    return (
      t && {
        running: t.status === "running",
        status: t.status,
        exitCode: t.exitCode,
        oomKilled: false,
      }
    );
  }

  watch(opts: { onEvent: (event: TaskEvent) => void; signal: AbortSignal }): Promise<void> {
    this.#enter();
    return new Promise((resolve) => {
      const w = (e: TaskEvent) => opts.onEvent(e);
      this.#e.watchers.add(w);
      opts.signal.addEventListener(
        "abort",
        () => {
          this.#e.watchers.delete(w);
          resolve();
        },
        { once: true },
      );
    });
  }

  async leftovers(): Promise<LeftoverTask[]> {
    this.#enter();
    return [...this.#e.tasks.values()]
      .filter((t) => t.run !== this.#run)
      .map((t) => ({
        id: t.id,
        name: t.name,
        running: t.status === "running",
        status: t.status,
        keyHash: t.launch.keyHash,
        specLabel: t.launch.specLabel,
        nanoCpus: t.launch.spec.cpuTenths * 100_000_000,
        memoryBytes: t.launch.spec.memMB * 2 ** 20,
        runtime: t.launch.spec.runtime ?? "",
        gpus: [...t.launch.gpus],
        ready: t.ready,
        startedAt: t.startedAt,
      }));
  }

  async adopt(id: string): Promise<StartedTask> {
    this.#enter();
    const t = this.#e.tasks.get(id);
    if (!t || t.status !== "running") throw new Error("it is not running");
    t.run = this.#run;
    this.#mine.add(id);
    return {
      id,
      endpoint: `http://fake-task/${id}`,
      placement: this.placement,
      steps: {},
      meter: this.#e.meter(id),
    };
  }

  async sweep(): Promise<void> {
    this.#enter();
  }

  async close(): Promise<void> {}

  #enter(): void {
    if (this.#down) throw new EngineUnavailableError("Fake engine unreachable");
  }
}
