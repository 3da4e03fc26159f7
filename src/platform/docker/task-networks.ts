/**
 * One network per task container (see docs/architecture.md, "Isolation"): a bridge network the
 * executor creates from a /28 of `task_subnet_pool`, `Internal` unless egress is on, labelled
 * like the task's container. A few are kept ready ahead of demand, so that a cold start does not
 * wait for one. In a container the executor joins each network to call its task by name; on a
 * host it calls the task at its address there.
 *
 * Subnets are checked at each create by the engine itself: one that overlaps any network (another
 * executor's on the same engine included) is refused there, and the next block is tried.
 */
import { ImageNotFoundError, NoCapacityError, TaskStartError } from "../../engine/errors.ts";
import type { Clock, Logger } from "../../engine/ports.ts";
import { wakeOrTimeout } from "../../engine/waits.ts";
import type { ContainerBackend, NetworkSummary } from "./backend.ts";
import type { DockerTaskSettings } from "./task-settings.ts";
import { holderLabels, LABELS, ownership, TASK_SUBNET_BITS } from "./labels.ts";
import {
  HOLDER_CHANGES,
  HOLDER_IMAGE,
  HOLDER_MACHINES,
  holderSpec,
  holderTar,
} from "./netns-holder.ts";
import { block, blockCount, formatCidr, overlaps, parseCidr, type Cidr } from "./subnets.ts";

export interface TaskNet {
  id: string;
  name: string;
  subnet: string;
  /** Index of its block in the pool. */
  index: number;
  /**
   * The container holding the network's namespace (netns-holder.ts), which a task may join instead
   * of having one set up on its start; where the task there answers. Spares have one when they can.
   */
  holder?: { id: string; endpoint: string };
}

export interface TaskNetworksDeps {
  backend: ContainerBackend;
  clock: Clock;
  logger: Logger;
  settings: () => DockerTaskSettings;
  /** Tells this run's networks from an earlier run's, like the pool's container names. */
  run: string;
  /** The executor's own container, which joins every task network; undefined on a host. */
  self?: string;
}

/**
 * Every task network's bridge interface on the host starts with this, so that one firewall rule
 * (`-i mecat+`) covers them all (see docs/architecture.md, "The host's own resources").
 */
export const TASK_BRIDGE_PREFIX = "mecat";

/**
 * The bridge's interface name: the prefix, the subnet's address in hex (unique on one engine, whose
 * subnets never overlap) and two characters of the instance and run (two engines on one host
 * seldom meet); 15 characters, the kernel's limit.
 */
export function bridgeName(subnet: string, instance: string, run: string): string {
  const [address = ""] = subnet.split("/");
  const hex = address
    .split(".")
    .map((o) => Number(o).toString(16).padStart(2, "0"))
    .join("");
  return `${TASK_BRIDGE_PREFIX}${hex}${(hash(`${instance}/${run}`) % 1296).toString(36).padStart(2, "0")}`;
}

export class TaskNetworks {
  #d: TaskNetworksDeps;
  #log: Logger;
  #pool: Cidr;
  #blocks: number;
  /** Blocks this executor holds: spares and task networks, and those being created. */
  #held = new Set<number>();
  #cursor: number;
  #spares: TaskNet[] = [];
  #filling?: Promise<void>;
  #waiters = new Set<() => void>();
  #serial = 0;
  #closed = false;
  /** Networks whose removal failed (the engine was away): removed when it is back, or at close. */
  #orphans = new Map<string, string>();
  /**
   * Whether spares get holders: settled once (the engine's machine, the image); undefined until
   * then, or again after the engine could not be asked.
   */
  #holding?: Promise<boolean | undefined>;
  /** Holders that failed in a row; at HOLDER_TRIES spares go without them for this run. */
  #holderFailures = 0;

  constructor(deps: TaskNetworksDeps) {
    this.#d = deps;
    this.#log = deps.logger.child({ component: "networks" });
    const s = deps.settings();
    const pool = parseCidr(s.taskSubnetPool);
    if ("error" in pool) throw new TaskStartError(`Invalid task_subnet_pool: ${pool.error}`);
    this.#pool = pool;
    this.#blocks = blockCount(pool, TASK_SUBNET_BITS);
    // Executors of other instances start elsewhere in the pool, so they seldom meet at a create.
    this.#cursor = hash(s.instance) % this.#blocks;
  }

  /** Whether the executor joins task networks (in a container) or calls tasks by address (on a host). */
  get joins(): boolean {
    return this.#d.self !== undefined;
  }

  get spareCount(): number {
    return this.#spares.length;
  }

  /**
   * A network for a task: a spare when there is one, else a new one. Waits while every block of
   * the pool is taken, up to the queue timeout (NoCapacityError) or until `signal` aborts. The
   * caller tops the spares up (fill) once its start is over, so that the engine's work on a new
   * spare does not slow the start that took one.
   */
  async acquire(signal: AbortSignal): Promise<TaskNet> {
    const deadline = this.#d.clock.now() + this.#d.settings().queueTimeoutMs;
    for (;;) {
      signal.throwIfAborted();
      const spare = this.#spares.shift();
      if (spare) return spare;
      const net = await this.#create();
      if (net) return net;
      const left = deadline - this.#d.clock.now();
      if (left <= 0) {
        throw new NoCapacityError(
          `No free subnet in task_subnet_pool ${this.#d.settings().taskSubnetPool}: every /${TASK_SUBNET_BITS} is taken`,
        );
      }
      await this.#freed(Math.min(left, 1000), signal);
    }
  }

  /**
   * Takes the network away: its holder goes, the executor leaves it, the engine removes it, its
   * block is free.
   */
  async release(net: TaskNet): Promise<void> {
    try {
      if (net.holder) await this.#d.backend.remove(net.holder.id);
      if (this.#d.self !== undefined) await this.#d.backend.disconnectNetwork(net.id, this.#d.self);
      await this.#d.backend.removeNetwork(net.id);
    } catch (e) {
      this.#orphans.set(net.id, net.name);
      this.#log.warn("Cannot remove task network; trying again once the engine answers", {
        network: net.name,
        error: (e as Error).message,
      });
    } finally {
      this.#held.delete(net.index);
      for (const wake of [...this.#waiters]) wake();
    }
  }

  /** Tops the spares up in the background; one fill at a time. */
  fill(): void {
    if (this.#closed || this.#filling) return;
    const target = this.#d.settings().taskNetworkSpares;
    this.#filling = (async () => {
      while (!this.#closed && this.#spares.length < target) {
        const net = await this.#create().catch((e: unknown) => {
          this.#log.warn("Cannot create a spare task network", { error: (e as Error).message });
          return undefined;
        });
        if (!net) break;
        if (!this.#closed) await this.#hold(net);
        if (this.#closed) await this.release(net);
        else this.#spares.push(net);
      }
    })().finally(() => (this.#filling = undefined));
  }

  /**
   * An earlier run's network as one of ours, if its subnet is a block of the pool as configured now
   * and no network of ours holds that block; undefined otherwise. Holds the block until released.
   */
  adopt(n: NetworkSummary, holder?: TaskNet["holder"]): TaskNet | undefined {
    const index = this.#indexOf(n.subnets[0] ?? "");
    if (index === undefined || this.#held.has(index)) return undefined;
    this.#held.add(index);
    return { id: n.id, name: n.name, subnet: n.subnets[0]!, index, ...(holder ? { holder } : {}) };
  }

  /** Where a task in the namespace of `holder` (a container on `net`) answers. */
  holderEndpoint(holder: string, net: { name: string }): Promise<string> {
    return this.#d.backend.endpoint(holder, { network: net.name, byAddress: !this.joins });
  }

  /** Gives back the block of a network adopted and then given up (its task was not adopted after all). */
  unhold(net: TaskNet): void {
    this.#held.delete(net.index);
    for (const wake of [...this.#waiters]) wake();
  }

  #indexOf(subnet: string): number | undefined {
    const c = parseCidr(subnet);
    if (
      "error" in c ||
      c.bits !== TASK_SUBNET_BITS ||
      !overlaps(c, this.#pool) ||
      c.bits < this.#pool.bits
    )
      return undefined;
    return (c.base - this.#pool.base) / 2 ** (32 - TASK_SUBNET_BITS);
  }

  /** The task networks of this instance, any run. */
  list(): Promise<NetworkSummary[]> {
    const s = this.#d.settings();
    return this.#d.backend.listNetworks(ownership(s.instance, { taskNetwork: true }));
  }

  /**
   * Removes networks an earlier run of this instance left behind (leaving them first, in a
   * container), except those of adopted tasks (`keep`, by id).
   */
  async sweep(keep: ReadonlySet<string> = new Set()): Promise<number> {
    const found = await this.list();
    const stale = found.filter((n) => n.labels[LABELS.run] !== this.#d.run && !keep.has(n.id));
    const kept = new Set(found.filter((n) => keep.has(n.id)).map((n) => n.name));
    await this.#removeHolders(
      (h) => h.labels[LABELS.run] !== this.#d.run && !kept.has(h.labels[LABELS.holds] ?? ""),
    );
    for (const n of stale) {
      if (this.#d.self !== undefined)
        await this.#d.backend.disconnectNetwork(n.id, this.#d.self).catch(() => {});
      await this.#d.backend.removeNetwork(n.id).catch((e: unknown) =>
        this.#log.warn("Cannot remove a leftover task network", {
          network: n.name,
          error: (e as Error).message,
        }),
      );
    }
    if (stale.length > 0)
      this.#log.info("Removed task networks left by an earlier run", { count: stale.length });
    return stale.length;
  }

  /** Tries again to remove the networks whose removal failed, e.g. once the engine is back. */
  async removeOrphans(): Promise<void> {
    if (this.#orphans.size === 0) return;
    const names = new Set(this.#orphans.values());
    await this.#removeHolders(
      (h) => h.labels[LABELS.run] === this.#d.run && names.has(h.labels[LABELS.holds] ?? ""),
    ).catch(() => {});
    for (const [id, name] of [...this.#orphans]) {
      try {
        if (this.#d.self !== undefined) await this.#d.backend.disconnectNetwork(id, this.#d.self);
        await this.#d.backend.removeNetwork(id);
        this.#orphans.delete(id);
        this.#log.info("Removed a task network whose removal had failed", { network: name });
      } catch {
        // Still away: the next reconnection, or the close, tries again.
      }
    }
  }

  /**
   * Stops keeping spares and removes them, then every other network of this run but those of tasks
   * kept for the next start (`keep`, by id): once the tasks are gone, one is left only where a
   * removal failed, or a create reached the engine but its answer did not.
   */
  async close(keep: ReadonlySet<string> = new Set()): Promise<void> {
    this.#closed = true;
    await this.#filling;
    await Promise.all(this.#spares.splice(0).map((n) => this.release(n)));
    const s = this.#d.settings();
    const left = await this.#d.backend
      .listNetworks(ownership(s.instance, { run: this.#d.run, taskNetwork: true }))
      .catch(() => []);
    for (const n of left) if (!keep.has(n.id)) this.#orphans.set(n.id, n.name);
    // Their holders go first (removeOrphans).
    await this.removeOrphans();
  }

  /** Removes the holders of this instance that `stale` picks (they go before their networks can). */
  async #removeHolders(stale: (h: { labels: Record<string, string> }) => boolean): Promise<void> {
    const holders = await this.#d.backend.list(holderLabels(this.#d.settings().instance));
    for (const h of holders.filter(stale))
      await this.#d.backend.remove(h.id).catch((e: unknown) =>
        this.#log.warn("Cannot remove a task network's holder", {
          container: h.name,
          error: (e as Error).message,
        }),
      );
  }

  /**
   * Gives a new spare its holder, where the engine can run one: the image (made once, by import),
   * then the container, started, and its address. A spare whose holder fails stays a plain network;
   * after HOLDER_TRIES failures in a row, spares go without holders for this run (said once).
   */
  async #hold(net: TaskNet): Promise<void> {
    const can = await (this.#holding ??= this.#canHold());
    if (can === undefined) this.#holding = undefined;
    if (!can) return;
    const s = this.#d.settings();
    let id: string | undefined;
    try {
      id = await this.#d.backend.create(
        holderSpec({
          name: `${net.name}-holder`,
          network: net.name,
          labels: holderLabels(s.instance, { run: this.#d.run, network: net.name }),
          cgroupParent: s.cgroupParent || undefined,
        }),
      );
      await this.#d.backend.start(id);
      net.holder = { id, endpoint: await this.holderEndpoint(id, net) };
      this.#holderFailures = 0;
    } catch (e) {
      if (id !== undefined) await this.#d.backend.remove(id).catch(() => {});
      // The image was removed behind the executor's back: made again for the next spare.
      if (e instanceof ImageNotFoundError) this.#holding = undefined;
      const off = ++this.#holderFailures >= HOLDER_TRIES;
      if (off) this.#holding = Promise.resolve(false);
      this.#log.warn(
        off
          ? "Cannot start a holder for a spare task network; spares go without holders from now on (tasks get a namespace set up at their start)"
          : "Cannot start a holder for a spare task network; this spare goes without one",
        { network: net.name, error: (e as Error).message },
      );
    }
  }

  /**
   * Whether the engine can run holders: its machine is one the holder is written for, and runc is
   * there; undefined when the engine could not be asked or the image not made (asked again later).
   */
  async #canHold(): Promise<boolean | undefined> {
    const backend = this.#d.backend;
    try {
      const info = await backend.info();
      const why =
        info.machine === undefined || !HOLDER_MACHINES.has(info.machine)
          ? `the holder's program is written for x86-64, and the engine runs on ${info.machine ?? "a machine it does not name"}`
          : !info.runtimes.includes("runc")
            ? "the engine has no runc runtime"
            : undefined;
      if (why !== undefined) {
        this.#log.info(
          "Spare task networks go without holders: tasks get a namespace set up at their start",
          { reason: why },
        );
        return false;
      }
      if (!(await backend.hasImage(HOLDER_IMAGE)))
        await backend.importImage(HOLDER_IMAGE, holderTar(), HOLDER_CHANGES);
      return true;
    } catch (e) {
      this.#log.warn(
        "Cannot make the image of task networks' holders; this spare goes without one",
        {
          error: (e as Error).message,
        },
      );
      return undefined;
    }
  }

  /** A new network in the next free block; undefined when every block is taken. */
  async #create(): Promise<TaskNet | undefined> {
    const s = this.#d.settings();
    for (let tried = 0; tried < this.#blocks; tried++) {
      const index = this.#cursor;
      this.#cursor = (this.#cursor + 1) % this.#blocks;
      if (this.#held.has(index)) continue;
      this.#held.add(index);
      const subnet = formatCidr(block(this.#pool, TASK_SUBNET_BITS, index));
      const name = `meca-${s.instance}-net-${this.#d.run}n${++this.#serial}`;
      try {
        const id = await this.#d.backend.createNetwork({
          name,
          subnet,
          bridge: bridgeName(subnet, s.instance, this.#d.run),
          internal: !s.taskEgress,
          // Joined from the executor's own container, an egress-off network needs no host address:
          // without one, no address of the host is reachable from it (docs/architecture.md).
          hostless: this.#d.self !== undefined && !s.taskEgress,
          labels: ownership(s.instance, { run: this.#d.run, taskNetwork: true }),
        });
        const net = { id, name, subnet, index };
        if (this.#d.self !== undefined) {
          try {
            await this.#d.backend.connectNetwork(id, this.#d.self);
          } catch (e) {
            await this.release(net);
            throw e;
          }
        }
        return net;
      } catch (e) {
        this.#held.delete(index);
        if ((e as { code?: string }).code === "SUBNET_TAKEN") continue; // someone else's: the next block
        throw e;
      }
    }
    return undefined;
  }

  /** Resolves when a block is released or after `ms`; rejects when `signal` aborts. */
  #freed(ms: number, signal: AbortSignal): Promise<void> {
    return wakeOrTimeout(
      this.#d.clock,
      ms,
      (wake) => {
        this.#waiters.add(wake);
        return () => this.#waiters.delete(wake);
      },
      { signal },
    );
  }
}

/** Holders that may fail in a row before spares go without them. */
const HOLDER_TRIES = 3;

/** FNV-1a of a string, as an unsigned 32-bit number. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}
