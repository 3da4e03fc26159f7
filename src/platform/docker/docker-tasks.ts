/**
 * The Docker task runtime: the engine's TaskRuntime carried out on a Docker engine, step by step
 * (see docs/architecture.md, "The task runtime"). A start is: a network of the task's own (a
 * spare, or a new one), the container (labels, limits, runtime, devices), its start, the ready
 * mark in its log, its endpoint. Every Docker detail lives here and below: labels, networks,
 * subnets, bridge names, the mark's log stream, how a task is reached. The engine decides, and
 * bounds every wait through the signal it passes.
 */
import { ExecutorError, StartAbortedError, TaskStartError } from "../../engine/errors.ts";
import type {
  Clock,
  EngineInfo,
  LeftoverTask,
  Logger,
  Placement,
  PullProgress,
  StartedTask,
  TaskEvent,
  TaskLaunch,
  TaskMeter,
  TaskRuntime,
  TaskState,
} from "../../engine/ports.ts";
import { READY_MARK } from "../../engine/settings.ts";
import type { ContainerBackend, NetworkSummary } from "./backend.ts";
import { containerSpecFor } from "./container-spec.ts";
import { holderLabels, LABELS, ownership } from "./labels.ts";
import { TaskNetworks, type TaskNet } from "./task-networks.ts";
import { openMeter } from "./cgroup-meter.ts";
import { StatsMeter } from "./stats-meter.ts";
import type { DockerTaskSettings } from "./task-settings.ts";

export type { DockerTaskSettings };

export interface DockerTasksDeps {
  backend: ContainerBackend;
  clock: Clock;
  logger: Logger;
  settings: DockerTaskSettings;
  /** The executor's own container, which joins each task's network; undefined on a host. */
  selfContainer?: string;
  /** Where the cgroup file system is mounted (default /sys/fs/cgroup); tests point it elsewhere. */
  cgroupRoot?: string;
}

/** Lines of a task's output an aborted start gives back. */
const LAST_LINES = 10;

export class DockerTasks implements TaskRuntime {
  readonly help = {
    name: "Docker engine",
    unreachable:
      "Install one with `apt-get install docker.io` and start dockerd, or point DOCKER_HOST at one",
  };
  #d: DockerTasksDeps;
  #s: DockerTaskSettings;
  #log: Logger;
  /** Tells this run's containers and networks from an earlier run's. */
  readonly run = Math.floor(Math.random() * 36 ** 4)
    .toString(36)
    .padStart(4, "0");
  /** One network per task (settings.isolate); undefined when tasks share one or publish. */
  #networks?: TaskNetworks;
  /** This run's tasks, started or adopted and not removed, by container id: their own networks. */
  #tasks = new Map<string, TaskNet | undefined>();
  /** The meters of this run's tasks, by container id: closed at remove. */
  #meters = new Map<string, { close(): void }>();
  /** The log has said once that meters fall back to the engine's statistics. */
  #sampledSaid = false;
  /** Names of containers whose create() has not answered yet. */
  #creating = new Set<string>();
  /**
   * The networks of the leftovers the last leftovers() found, by container id, and the holders of
   * those that run in one's namespace: what adopt() takes back.
   */
  #leftoverNets = new Map<string, { net: NetworkSummary; holder?: string; shares: boolean }>();

  constructor(deps: DockerTasksDeps) {
    this.#d = deps;
    this.#s = deps.settings;
    this.#log = deps.logger.child({ component: "docker" });
    if (this.#s.isolate) {
      this.#networks = new TaskNetworks({
        backend: deps.backend,
        clock: deps.clock,
        logger: deps.logger,
        settings: () => this.#s,
        run: this.run,
        self: deps.selfContainer,
      });
    }
  }

  get placement(): Placement {
    if (this.#networks) return { name: "", isolated: true }; // its network comes with its start
    return { name: this.#s.network || "published", isolated: false };
  }

  info(signal?: AbortSignal): Promise<EngineInfo> {
    return this.#d.backend.info(signal);
  }

  hasImage(ref: string): Promise<boolean> {
    return this.#d.backend.hasImage(ref);
  }

  pullImage(
    ref: string,
    opts?: { onProgress?: (p: PullProgress) => void; signal?: AbortSignal },
  ): Promise<void> {
    return this.#d.backend.pullImage(ref, opts);
  }

  async start(
    launch: TaskLaunch,
    opts: {
      signal: AbortSignal;
      onCreated?: (id: string) => void;
      onStarted?: () => AbortSignal;
    },
  ): Promise<StartedTask> {
    // `signal` ends the whole start; once the process runs, the engine's readiness bound too.
    let signal = opts.signal;
    const began = this.#d.clock.now();
    const steps: Record<string, number> = {};
    const step = (name: string) => (steps[name] = this.#d.clock.now() - began);
    let net: TaskNet | undefined;
    let id: string | undefined;
    let shared = false;
    try {
      signal.throwIfAborted();
      net = this.#networks ? await this.#networks.acquire(signal) : undefined;
      step("network");
      signal.throwIfAborted();
      this.#creating.add(launch.name);
      try {
        ({ id, shared } = await this.#create(launch, net));
      } finally {
        this.#creating.delete(launch.name);
      }
      this.#tasks.set(id, net);
      step("create");
      opts.onCreated?.(id);
      signal.throwIfAborted();
      await this.#d.backend.start(id);
      step("start");
      signal = opts.onStarted?.() ?? signal;
      await this.#d.backend.waitForMark(id, { mark: READY_MARK, signal });
      step("mark");
      const placement = this.#placementOf(net);
      // In its holder's namespace it answers where the holder is, known since the spare was made.
      const endpoint = shared ? net!.holder!.endpoint : await this.#endpoint(id, net);
      signal.throwIfAborted();
      return { id, endpoint, placement, steps, meter: this.#meter(id) };
    } catch (e) {
      const lines =
        signal.aborted && id !== undefined
          ? await this.#d.backend.logsTail(id, LAST_LINES).catch(() => [])
          : [];
      if (id !== undefined) await this.remove(id);
      else if (net) await this.#networks!.release(net);
      if (signal.aborted) throw new StartAbortedError(signal.reason, lines);
      if (e instanceof ExecutorError) throw e;
      throw new TaskStartError(
        `Cannot start task "${launch.spec.image}": ${(e as Error).message}`,
        {
          cause: e,
        },
      );
    } finally {
      // The spare it took is replaced now that the engine is no longer busy with this start.
      this.#networks?.fill();
    }
  }

  /**
   * The task's container: in its network's held namespace where it can (a container runtime, the
   * engine's default) and the holder still runs (one inspect: an engine restart stops holders, and
   * the engine would refuse only at start), else on the network itself.
   */
  async #create(
    launch: TaskLaunch,
    net: TaskNet | undefined,
  ): Promise<{ id: string; shared: boolean }> {
    let shares =
      net?.holder !== undefined &&
      launch.spec.runtimeKind === "container" &&
      (launch.spec.runtime ?? "") === "";
    if (
      shares &&
      !(await this.#d.backend.inspect(net!.holder!.id).catch(() => undefined))?.running
    ) {
      this.#log.warn("A task network's holder is gone; the task joins the network itself", {
        network: net!.name,
      });
      await this.#d.backend.remove(net!.holder!.id).catch(() => {});
      delete net!.holder;
      shares = false;
    }
    const spec = containerSpecFor(launch, this.#s, { run: this.run, net, sharesNamespace: shares });
    return { id: await this.#d.backend.create(spec), shared: shares };
  }

  async remove(id: string): Promise<void> {
    const net = this.#tasks.get(id);
    this.#meters.get(id)?.close();
    this.#meters.delete(id);
    try {
      await this.#d.backend.remove(id);
    } catch (e) {
      this.#log.warn("Cannot remove container", {
        container: id.slice(0, 12),
        error: (e as Error).message,
      });
    } finally {
      this.#tasks.delete(id);
    }
    if (net) await this.#networks!.release(net);
  }

  async inspect(id: string): Promise<TaskState | undefined> {
    const st = await this.#d.backend.inspect(id);
    return (
      st && {
        running: st.running,
        status: st.status,
        exitCode: st.exitCode,
        oomKilled: st.oomKilled,
      }
    );
  }

  watch(opts: { onEvent: (event: TaskEvent) => void; signal: AbortSignal }): Promise<void> {
    return this.#d.backend.watchEvents({
      labels: ownership(this.#s.instance),
      onEvent: (ev) => {
        if (ev.action === "die" || ev.action === "oom" || ev.action === "destroy")
          opts.onEvent({ id: ev.id, action: ev.action, exitCode: ev.exitCode });
      },
      signal: opts.signal,
    });
  }

  async leftovers(): Promise<LeftoverTask[]> {
    const found = await this.#d.backend.list(ownership(this.#s.instance));
    // Not an earlier run's: this run's own, and those it is creating (not in #tasks until create() answers).
    const theirs = found.filter((c) => c.labels[LABELS.run] !== this.run && !this.#tasks.has(c.id));
    const nets = this.#networks ? await this.#networks.list() : ([] as NetworkSummary[]);
    // Each network's holder, whether its task runs in the holder's namespace or beside it (a microVM).
    const holderOf = new Map(
      this.#networks
        ? (await this.#d.backend.list(holderLabels(this.#s.instance))).map(
            (h) => [h.labels[LABELS.holds] ?? "", h.id] as const,
          )
        : [],
    );
    this.#leftoverNets.clear();
    return Promise.all(
      theirs.map(async (c): Promise<LeftoverTask> => {
        const base = { id: c.id, name: c.name, status: c.state, ready: false, startedAt: 0 };
        if (c.state !== "running") return { ...base, running: false };
        const st = await this.#d.backend.inspect(c.id).catch(() => undefined);
        if (!st?.running) return { ...base, running: false, status: st?.status ?? "gone" };
        const labels = st.labels ?? c.labels;
        let attached = st.networks ?? [];
        let unreachable: string | undefined;
        if (this.#networks) {
          // In a holder's namespace: on the holder's network.
          const holder = st.sharesNetworkOf;
          if (holder !== undefined) {
            const h = await this.#d.backend.inspect(holder).catch(() => undefined);
            attached = h?.running ? (h.networks ?? []) : [];
          }
          const net = nets.find((n) => attached.length === 1 && n.name === attached[0]);
          if (net)
            this.#leftoverNets.set(c.id, {
              net,
              holder: holder ?? holderOf.get(net.name),
              shares: holder !== undefined,
            });
          else unreachable = "it is not on a task network of its own";
        } else if (this.#s.network && !attached.includes(this.#s.network))
          unreachable = `it is not on the network "${this.#s.network}"`;
        return {
          ...base,
          name: st.name ?? c.name,
          running: true,
          status: st.status,
          keyHash: labels[LABELS.key],
          specLabel: labels[LABELS.spec],
          nanoCpus: st.nanoCpus,
          memoryBytes: st.memoryBytes,
          runtime: st.runtime ?? "",
          gpus: st.gpuIds ?? [],
          unreachable,
          ready: await this.#d.backend.hasMark(c.id, READY_MARK).catch(() => false),
          startedAt: st.startedAt ?? 0,
        };
      }),
    );
  }

  async adopt(id: string): Promise<StartedTask> {
    let net: TaskNet | undefined;
    let holder: string | undefined;
    let shares = false;
    if (this.#networks) {
      const found = this.#leftoverNets.get(id);
      if (!found) throw new Error("it is not on a task network of its own");
      net = this.#networks.adopt(found.net);
      if (!net)
        throw new Error(`its network "${found.net.name}" is not a free block of task_subnet_pool`);
      ({ holder, shares } = found);
    }
    try {
      if (net && this.#networks!.joins)
        await this.#d.backend.connectNetwork(net.id, this.#d.selfContainer!);
      if (net && holder !== undefined)
        net.holder = { id: holder, endpoint: await this.#networks!.holderEndpoint(holder, net) };
      const endpoint = shares ? net!.holder!.endpoint : await this.#endpoint(id, net);
      this.#tasks.set(id, net);
      return { id, endpoint, placement: this.#placementOf(net), steps: {}, meter: this.#meter(id) };
    } catch (e) {
      if (net) {
        if (this.#networks!.joins)
          await this.#d.backend.disconnectNetwork(net.id, this.#d.selfContainer!).catch(() => {});
        this.#networks!.unhold(net);
      }
      throw e;
    }
  }

  async sweep(opts: { earlierRuns?: boolean } = {}): Promise<void> {
    await this.#networks?.removeOrphans();
    const mine = await this.#d.backend.list(ownership(this.#s.instance, { run: this.run }));
    for (const c of mine) {
      if (this.#tasks.has(c.id) || this.#creating.has(c.name)) continue;
      this.#log.warn(
        "Removing a container the executor does not know (its create answer was lost)",
        { container: c.name },
      );
      await this.remove(c.id);
    }
    if (opts.earlierRuns && this.#networks) {
      // Earlier runs' networks (a network goes only once no container is on it), then spares of our own.
      const keep = new Set([...this.#tasks.values()].flatMap((n) => n?.id ?? []));
      await this.#networks.sweep(keep);
      this.#networks.fill();
    }
    if (opts.earlierRuns) this.#leftoverNets.clear();
  }

  async close(): Promise<void> {
    // A create whose answer was lost left a container nobody removes otherwise.
    const mine = await this.#d.backend
      .list(ownership(this.#s.instance, { run: this.run }))
      .catch((e: unknown) => {
        this.#log.warn("Cannot list this run's containers at stop", {
          error: (e as Error).message,
        });
        return [];
      });
    for (const c of mine)
      if (!this.#tasks.has(c.id) && !this.#creating.has(c.name)) await this.remove(c.id);
    const kept = new Set([...this.#tasks.values()].flatMap((n) => n?.id ?? []));
    await this.#networks?.close(kept);
  }

  /**
   * The task's meter: from its cgroup, where this process can see it; otherwise (the executor in a
   * container of its own, a remote engine) from the engine's statistics, coarser (docs/usage.md).
   */
  #meter(id: string) {
    if (!this.#s.usage) return undefined;
    const backend = this.#d.backend;
    let meter: (TaskMeter & { close(): void }) | undefined = openMeter(id, {
      driver: this.#s.cgroupDriver,
      version: this.#s.cgroupVersion,
      parent: this.#s.cgroupParent,
      root: this.#d.cgroupRoot,
    });
    if (!meter && backend.watchStats) {
      if (!this.#sampledSaid) {
        this.#sampledSaid = true;
        this.#log.info(
          "The tasks' cgroups cannot be read from here: their usage comes from the engine's statistics, sampled about once a second (coarser, never exact; see docs/usage.md)",
        );
      }
      meter = new StatsMeter(id, { watchStats: backend.watchStats.bind(backend) }, this.#d.clock);
    }
    if (meter) this.#meters.set(id, meter);
    return meter;
  }

  #placementOf(net: TaskNet | undefined): Placement {
    if (net) return { name: net.name, isolated: true, details: { subnet: net.subnet } };
    return this.placement;
  }

  /** On its own network: by name where the executor joined it (in a container), else by address. */
  #endpoint(id: string, net: TaskNet | undefined): Promise<string> {
    return this.#d.backend.endpoint(
      id,
      net
        ? { network: net.name, byAddress: !this.#networks!.joins }
        : { network: this.#s.network || undefined },
    );
  }
}
