/**
 * An in-memory ContainerBackend for fast engine tests. Same semantics as
 * DockerBackend, checked by test/contract/container-backend.contract.ts:
 * the same errors, the same events (die with its exit code on kill and
 * remove), `http://fake/<id>` endpoints served by FakeTaskClient.
 */
import {
  ContainerExitedError,
  EngineUnavailableError,
  ImageNotFoundError,
  InternalError,
  TaskStartError,
} from "../../src/engine/errors.ts";
import type { EngineInfo, PullProgress } from "../../src/engine/ports.ts";
import type {
  ContainerBackend,
  ContainerEvent,
  ContainerSpec,
  ContainerState,
  ContainerSummary,
  NetworkSpec,
  NetworkSummary,
} from "../../src/platform/docker/backend.ts";
import { overlaps, parseCidr, type Cidr } from "../../src/platform/docker/subnets.ts";
import { DEFAULT_MARK, FakeContainer, normaliseRef, type FakeImage } from "./fake-container.ts";

export { deferred, FakeContainer, type FakeImage } from "./fake-container.ts";

type Method = Exclude<keyof ContainerBackend, "close">;
type Hook = (...args: unknown[]) => unknown;

interface Watcher {
  labels: Record<string, string>;
  onEvent: (e: ContainerEvent) => void;
  end: (err?: unknown) => void;
}

export class FakeBackend implements ContainerBackend {
  /** Every spec passed to create(), in order. */
  readonly created: ContainerSpec[] = [];
  /** Every call, in order. */
  readonly calls: { method: Method; args: unknown[] }[] = [];
  runtimes = ["runc", "runsc"];
  /** The engine host's machine its info() names; none by default (so spares go without holders). */
  machine: string | undefined;
  #images = new Map<string, FakeImage>();
  #pullable = new Map<string, FakeImage>();
  #containers = new Map<string, FakeContainer>();
  #networks = new Map<
    string,
    {
      id: string;
      name: string;
      labels: Record<string, string>;
      subnets: string[];
      internal: boolean;
      members: Set<string>;
    }
  >();
  #hooks = new Map<Method, { fn: Hook; once: boolean }[]>();
  #watchers = new Set<Watcher>();
  #unavailable = false;
  #serial = 0;
  #starts = 0;

  constructor(
    opts: {
      images?: Record<string, FakeImage>;
      pullable?: Record<string, FakeImage>;
      machine?: string;
    } = {},
  ) {
    this.machine = opts.machine;
    for (const [ref, image] of Object.entries(opts.images ?? {})) this.addImage(ref, image);
    for (const [ref, image] of Object.entries(opts.pullable ?? {})) this.addPullable(ref, image);
  }

  addImage(ref: string, image: FakeImage = {}): this {
    this.#images.set(normaliseRef(ref), image);
    return this;
  }

  /** An image absent locally that pullImage() can fetch. */
  addPullable(ref: string, image: FakeImage = {}): this {
    this.#pullable.set(normaliseRef(ref), image);
    return this;
  }

  /** Takes an image out of the local store (a pullable one stays pullable). */
  removeImage(ref: string): this {
    this.#images.delete(normaliseRef(ref));
    return this;
  }

  /** Runs `fn` before every call of `method` (or the next one only): throw to fail it, return a promise to hold it. */
  before(method: Method, fn: Hook, opts: { once?: boolean } = {}): () => void {
    const entry = { fn, once: opts.once === true };
    this.#hooks.set(method, [...(this.#hooks.get(method) ?? []), entry]);
    return () =>
      this.#hooks.set(
        method,
        (this.#hooks.get(method) ?? []).filter((h) => h !== entry),
      );
  }

  /** While set, every call throws EngineUnavailableError and open event streams fail. */
  setUnavailable(down: boolean): void {
    this.#unavailable = down;
    if (down) this.failEvents(this.#down());
  }

  /** Ends every open event stream (watchEvents resolves), as when the engine restarts. */
  endEvents(): void {
    for (const w of [...this.#watchers]) w.end();
  }

  failEvents(err: unknown): void {
    for (const w of [...this.#watchers]) w.end(err);
  }

  /** Stops a running container: `oom` adds an oom event and OOMKilled; the exit code defaults to 137. */
  kill(id: string, opts: { oom?: boolean; exitCode?: number } = {}): void {
    const c = this.#get(id);
    if (!c.running) return;
    if (opts.oom) this.#emit(c, "oom");
    else this.#emit(c, "kill");
    c.exit(opts.exitCode ?? 137, { oom: opts.oom });
    this.#emit(c, "die", c.exitCode);
  }

  /** Prints a line in a container's log, e.g. a late `meca-init-done`. */
  log(id: string, line: string, stream: "stdout" | "stderr" = "stdout"): void {
    this.#get(id).print(line, stream);
  }

  container(id: string): FakeContainer | undefined {
    return this.#containers.get(id);
  }

  #addresses = new Map<string, string>();

  /** A fake address: on a network of the fake's own, in its subnet; else on the default bridge. One per container. */
  #address(id: string): string {
    const holder = this.#containers.get(id)?.spec.sharesNetworkOf;
    if (holder !== undefined) return this.#address(holder);
    let a = this.#addresses.get(id);
    const net = this.#networkNamed(this.#containers.get(id)?.spec.network ?? "");
    if (a === undefined && net !== undefined) {
      const base = (parseCidr(net.subnets[0]!) as Cidr).base + 2 + [...net.members].indexOf(id);
      this.#addresses.set(
        id,
        (a = [24, 16, 8, 0].map((shift) => (base >>> shift) & 255).join(".")),
      );
    }
    if (a === undefined)
      this.#addresses.set(
        id,
        (a = `172.17.${Math.floor((this.#addresses.size + 2) / 256)}.${(this.#addresses.size + 2) % 256}`),
      );
    return a;
  }

  containers(): FakeContainer[] {
    return [...this.#containers.values()];
  }

  /** The running container an endpoint points at, for FakeTaskClient. */
  resolve(url: URL): { container: FakeContainer | undefined; path: string } {
    if (url.hostname === "fake") {
      const [, id = "", ...rest] = url.pathname.split("/");
      return { container: this.#containers.get(id), path: `/${rest.join("/")}` };
    }
    const found = this.containers().find(
      (c) =>
        c.spec.network !== undefined &&
        (c.name === url.hostname || this.#address(c.id) === url.hostname),
    );
    // In a shared namespace, whoever listens there answers: the container that joined it.
    const container =
      this.containers().find((c) => found !== undefined && c.spec.sharesNetworkOf === found.id) ??
      found;
    return { container, path: url.pathname };
  }

  async info(signal?: AbortSignal): Promise<EngineInfo> {
    await this.#enter("info", [signal]);
    return {
      version: "20.10.24-fake",
      apiVersion: "1.41",
      runtimes: [...this.runtimes],
      defaultRuntime: "runc",
      transport: "fake://",
      ...(this.machine === undefined ? {} : { machine: this.machine }),
    };
  }

  async hasImage(ref: string): Promise<boolean> {
    await this.#enter("hasImage", [ref]);
    return this.#images.has(normaliseRef(ref));
  }

  async pullImage(
    ref: string,
    opts?: { onProgress?: (p: PullProgress) => void; signal?: AbortSignal },
  ): Promise<void> {
    await this.#enter("pullImage", [ref, opts]);
    opts?.signal?.throwIfAborted();
    const image = this.#pullable.get(normaliseRef(ref));
    if (image === undefined)
      throw new ImageNotFoundError(ref, `manifest for ${ref} not found: manifest unknown`);
    opts?.onProgress?.({
      line: `Pulling ${ref}`,
      layers: 1,
      layersDone: 0,
      bytesDone: 0,
      bytesTotal: 100,
    });
    this.#images.set(normaliseRef(ref), image);
    opts?.onProgress?.({
      line: `Status: Downloaded newer image for ${ref}`,
      layers: 1,
      layersDone: 1,
      bytesDone: 100,
      bytesTotal: 100,
    });
  }

  /** Every image made by importImage(), by ref: its tar and changes. */
  readonly imported = new Map<string, { tar: Uint8Array; changes: string[] }>();

  async importImage(ref: string, tar: Uint8Array, changes: string[]): Promise<void> {
    await this.#enter("importImage", [ref, tar, changes]);
    this.imported.set(normaliseRef(ref), { tar, changes: [...changes] });
    // A process that holds on and prints nothing.
    this.#images.set(normaliseRef(ref), { ready: "never" });
  }

  async create(spec: ContainerSpec): Promise<string> {
    await this.#enter("create", [spec]);
    if (spec.sharesNetworkOf !== undefined && !this.#containers.get(spec.sharesNetworkOf)?.running)
      throw new TaskStartError(
        `Cannot create container "${spec.name}": cannot join network of a non running container: ${spec.sharesNetworkOf}`,
      );
    const image = this.#images.get(normaliseRef(spec.image));
    if (image === undefined)
      throw new ImageNotFoundError(spec.image, `No such image: ${spec.image}`);
    if (this.containers().some((c) => c.name === spec.name)) {
      throw new TaskStartError(
        `Cannot create container "${spec.name}": the name is already in use`,
        {
          code: "CONTAINER_NAME_CONFLICT",
        },
      );
    }
    if (spec.runtime !== undefined && !this.runtimes.includes(spec.runtime)) {
      throw new TaskStartError(
        `Cannot create container "${spec.name}": unknown or invalid runtime name: ${spec.runtime}`,
      );
    }
    this.created.push(structuredClone(spec));
    const id = (++this.#serial).toString(16).padStart(12, "0").padEnd(64, "f");
    const c = new FakeContainer(id, structuredClone(spec), image);
    this.#containers.set(id, c);
    if (spec.network !== undefined) this.#networkNamed(spec.network)?.members.add(id);
    this.#emit(c, "create");
    return id;
  }

  async start(id: string): Promise<void> {
    await this.#enter("start", [id]);
    const c = this.#containers.get(id);
    if (c === undefined)
      throw new TaskStartError(
        `Cannot start the task's container: No such container: <container>`,
        { where: id },
      );
    if (c.running) return;
    c.status = "running";
    c.startedAt = ++this.#starts;
    this.#emit(c, "start");
    const ready = c.image.ready ?? true;
    if (ready === true) c.print(DEFAULT_MARK);
    else if (ready === "never") c.print("starting");
    else {
      for (const l of ready.lines) {
        if (typeof l === "string") c.print(l);
        else c.print(l.line, l.stream);
      }
      c.exit(ready.exitCode);
      this.#emit(c, "die", ready.exitCode);
    }
  }

  async endpoint(id: string, opts?: { network?: string; byAddress?: boolean }): Promise<string> {
    await this.#enter("endpoint", [id, opts]);
    const c = this.#containers.get(id);
    // Docker's default bridge has no DNS: the container's address there; another network: its name.
    if (c !== undefined && (opts?.network === "bridge" || (opts?.network && opts.byAddress)))
      return `http://${this.#address(c.id)}:8080`;
    if (c !== undefined && opts?.network) return `http://${c.name}:8080`;
    if (c === undefined || !c.running)
      throw new TaskStartError(`Cannot reach the task's container: port 8080 is not published`, {
        where: id,
      });
    return `http://fake/${id}`;
  }

  async waitForMark(id: string, opts: { mark: string; signal: AbortSignal }): Promise<void> {
    await this.#enter("waitForMark", [id, opts]);
    opts.signal.throwIfAborted();
    return new Promise<void>((resolve, reject) => {
      const c = this.#containers.get(id);
      let off = () => {};
      const onAbort = () => settle(() => reject(opts.signal.reason));
      const settle = (fn: () => void) => {
        off();
        opts.signal.removeEventListener("abort", onAbort);
        fn();
      };
      const check = () => {
        if (c === undefined || !this.#containers.has(id)) {
          const lines = c?.lastLines(20) ?? [];
          return settle(() =>
            reject(
              new ContainerExitedError(
                -1,
                lines,
                `Task container "${id}" was removed before it was ready`,
              ),
            ),
          );
        }
        if (c.logs.some((l) => l.stream === "stdout" && l.line.includes(opts.mark)))
          return settle(resolve);
        const tail = c.lastLines(20);
        if (!c.running) settle(() => reject(new ContainerExitedError(c.exitCode, tail)));
      };
      opts.signal.addEventListener("abort", onAbort, { once: true });
      if (c !== undefined) off = c.onChange(check);
      check();
    });
  }

  async inspect(id: string): Promise<ContainerState | undefined> {
    await this.#enter("inspect", [id]);
    const c = this.#containers.get(id);
    if (c === undefined) return undefined;
    const spec = c.spec;
    return {
      ...c.state(),
      name: c.name,
      labels: { ...spec.labels },
      nanoCpus: spec.nanoCpus,
      memoryBytes: spec.memoryBytes,
      runtime: spec.runtime ?? "",
      gpuIds: [...(spec.gpus ?? [])],
      networks: [...this.#networks.values()].filter((n) => n.members.has(id)).map((n) => n.name),
      sharesNetworkOf: spec.sharesNetworkOf,
      startedAt: c.startedAt,
    };
  }

  async hasMark(id: string, mark: string): Promise<boolean> {
    await this.#enter("hasMark", [id, mark]);
    return (
      this.#containers.get(id)?.logs.some((l) => l.stream === "stdout" && l.line.includes(mark)) ??
      false
    );
  }

  async logsTail(id: string, lines: number): Promise<string[]> {
    await this.#enter("logsTail", [id, lines]);
    return this.#containers.get(id)?.lastLines(lines) ?? [];
  }

  async remove(id: string): Promise<void> {
    await this.#enter("remove", [id]);
    const c = this.#containers.get(id);
    if (c === undefined) return;
    if (c.running) this.kill(id);
    this.#containers.delete(id);
    for (const n of this.#networks.values()) n.members.delete(id);
    this.#emit(c, "destroy");
    c.changed();
  }

  async createNetwork(spec: NetworkSpec): Promise<string> {
    await this.#enter("createNetwork", [spec]);
    if (this.#networkNamed(spec.name))
      throw new InternalError(
        `Cannot create network "${spec.name}": network with name ${spec.name} already exists`,
      );
    const subnet = parseCidr(spec.subnet) as Cidr;
    if (
      [...this.#networks.values()].some((n) =>
        n.subnets.some((x) => overlaps(parseCidr(x) as Cidr, subnet)),
      )
    ) {
      throw new TaskStartError(
        `Cannot create network "${spec.name}": subnet ${spec.subnet} is taken (Pool overlaps with other one on this address space)`,
        {
          code: "SUBNET_TAKEN",
        },
      );
    }
    const id = `net${(++this.#serial).toString(16).padStart(9, "0")}`.padEnd(64, "e");
    this.#networks.set(id, {
      id,
      name: spec.name,
      labels: { ...spec.labels },
      subnets: [spec.subnet],
      internal: spec.internal,
      members: new Set(),
    });
    return id;
  }

  async removeNetwork(id: string): Promise<void> {
    await this.#enter("removeNetwork", [id]);
    const n = this.#networks.get(id) ?? this.#networkNamed(id);
    if (n === undefined) return;
    if (n.members.size > 0)
      throw new InternalError(
        `Cannot remove network "${id}": error while removing network: network ${n.name} id ${n.id} has active endpoints`,
      );
    this.#networks.delete(n.id);
  }

  async listNetworks(labels: Record<string, string>): Promise<NetworkSummary[]> {
    await this.#enter("listNetworks", [labels]);
    return [...this.#networks.values()]
      .filter((n) => matches(n.labels, labels))
      .map((n) => ({ id: n.id, name: n.name, labels: { ...n.labels }, subnets: [...n.subnets] }));
  }

  async connectNetwork(network: string, container: string): Promise<void> {
    await this.#enter("connectNetwork", [network, container]);
    const n = this.#networks.get(network) ?? this.#networkNamed(network);
    if (n === undefined)
      throw new InternalError(
        `Cannot connect container "${container}" to network "${network}": network ${network} not found`,
      );
    n.members.add(container);
  }

  async disconnectNetwork(network: string, container: string): Promise<void> {
    await this.#enter("disconnectNetwork", [network, container]);
    (this.#networks.get(network) ?? this.#networkNamed(network))?.members.delete(container);
  }

  /** Networks as the fake engine holds them, with the containers attached to each. */
  networks(): {
    id: string;
    name: string;
    labels: Record<string, string>;
    subnets: string[];
    internal: boolean;
    members: Set<string>;
  }[] {
    return [...this.#networks.values()];
  }

  #networkNamed(name: string) {
    return [...this.#networks.values()].find((n) => n.name === name);
  }

  async list(labels: Record<string, string>): Promise<ContainerSummary[]> {
    await this.#enter("list", [labels]);
    return this.containers()
      .filter((c) => matches(c.spec.labels, labels))
      .map((c) => ({ id: c.id, name: c.name, labels: { ...c.spec.labels }, state: c.status }));
  }

  /** Resolves when the signal aborts or endEvents() runs; rejects on failEvents() or setUnavailable(true). */
  async watchEvents(opts: {
    labels: Record<string, string>;
    onEvent: (event: ContainerEvent) => void;
    signal: AbortSignal;
  }): Promise<void> {
    await this.#enter("watchEvents", [opts]);
    if (opts.signal.aborted) return;
    await new Promise<void>((resolve, reject) => {
      const w: Watcher = {
        labels: opts.labels,
        onEvent: opts.onEvent,
        end: (err) => {
          this.#watchers.delete(w);
          opts.signal.removeEventListener("abort", onAbort);
          if (err === undefined) resolve();
          else reject(err);
        },
      };
      const onAbort = () => w.end();
      opts.signal.addEventListener("abort", onAbort, { once: true });
      this.#watchers.add(w);
    });
  }

  async close(): Promise<void> {
    this.endEvents();
  }

  async #enter(method: Method, args: unknown[]): Promise<void> {
    this.calls.push({ method, args });
    if (this.#unavailable) throw this.#down();
    const hooks = this.#hooks.get(method) ?? [];
    this.#hooks.set(
      method,
      hooks.filter((h) => !h.once),
    );
    for (const h of hooks) await h.fn(...args);
  }

  #down(): EngineUnavailableError {
    return new EngineUnavailableError(
      'Cannot reach the Docker engine at "fake://": connect ECONNREFUSED',
    );
  }

  #get(id: string): FakeContainer {
    const c = this.#containers.get(id);
    if (c === undefined) throw new Error(`No fake container "${id}"`);
    return c;
  }

  #emit(c: FakeContainer, action: string, exitCode?: number): void {
    const event: ContainerEvent = { id: c.id, action, labels: { ...c.spec.labels } };
    if (exitCode !== undefined) event.exitCode = exitCode;
    for (const w of [...this.#watchers]) if (matches(c.spec.labels, w.labels)) w.onEvent(event);
  }
}

function matches(have: Record<string, string>, want: Record<string, string>): boolean {
  return Object.entries(want).every(([k, v]) => have[k] === v);
}
