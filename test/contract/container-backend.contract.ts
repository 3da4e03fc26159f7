/**
 * One set of cases for every ContainerBackend: the in-memory fake (unit
 * project) and the real Docker backend (integration project: over node:http on
 * Node, over dockerode, and over Deno's fetch) must agree, so that engine
 * tests on the fake mean something. Every fake behaviour a unit test relies
 * on has a case here: errors, events (die, oom, the end of the stream), an
 * engine that does not answer, pulls, a task that dies between requests or
 * under one.
 */
import { HOLDER_CHANGES, holderSpec, holderTar } from "../../src/platform/docker/netns-holder.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ContainerExitedError,
  EngineUnavailableError,
  ImageNotFoundError,
  TaskConnectError,
  TaskFailedError,
  TaskStartError,
} from "../../src/engine/errors.ts";
import type { PullProgress, TaskClient } from "../../src/engine/ports.ts";
import type {
  ContainerBackend,
  ContainerEvent,
  ContainerSpec,
} from "../../src/platform/docker/backend.ts";
import {
  CRASH_EXIT_CODE,
  CRASH_LOG_LINES,
  READY_MARK,
  TEST_LABEL,
  taskBody,
} from "../support/fixtures.ts";

export interface ContractSubject {
  backend: ContainerBackend;
  /**
   * `echo` answers `POST /` with its body, and with `taskBody.exit(n)` exits with `n` without
   * answering, and with `taskBody.oom` outgrows its memory; `pullable` is absent locally and
   * the registry has it; `missing` is nowhere.
   */
  images: { echo: string; crash: string; neverReady: string; missing: string; pullable: string };
  client: TaskClient;
  /** A backend of the same kind whose engine does not answer. */
  unreachable(): Promise<ContainerBackend>;
  /** Stops a running container from outside the backend, as a crash or `docker kill` does. */
  kill(id: string): Promise<void>;
  /** Removes an image from the local store, as the set-up left `pullable`. */
  removeImage(ref: string): Promise<void>;
  /**
   * A backend of the same kind on an engine that a test can make end its open streams cleanly
   * (as when it restarts) or go away (drop every connection, answer no more).
   */
  controlled?: () => Promise<{
    backend: ContainerBackend;
    endStreams(): void;
    goAway(): Promise<void>;
    cleanup(): Promise<void>;
  }>;
  cleanup(): Promise<void>;
}

export function containerBackendContract(
  name: string,
  setup: () => Promise<ContractSubject>,
): void {
  describe(`ContainerBackend contract: ${name}`, () => {
    let s: ContractSubject;
    const run = Math.random().toString(36).slice(2, 8);
    const labels = { ...TEST_LABEL, "meca.contract": run };
    let serial = 0;

    const spec = (image: string, extra: Partial<ContainerSpec> = {}): ContainerSpec => ({
      name: `meca-contract-${run}-${++serial}`,
      image,
      labels,
      nanoCpus: 500_000_000,
      memoryBytes: 64 * 2 ** 20,
      pidsLimit: 64,
      securityOpt: ["no-new-privileges"],
      privileged: false,
      ...extra,
    });
    const ready = () => AbortSignal.timeout(15_000);
    const startReady = async (extra?: Partial<ContainerSpec>) => {
      const id = await s.backend.create(spec(s.images.echo, extra));
      await s.backend.start(id);
      await s.backend.waitForMark(id, { mark: READY_MARK, signal: ready() });
      return id;
    };

    beforeAll(async () => {
      s = await setup();
    });

    afterAll(async () => {
      if (s === undefined) return;
      for (const c of await s.backend.list(labels)) await s.backend.remove(c.id);
      for (const n of await s.backend.listNetworks(labels)) await s.backend.removeNetwork(n.id);
      await s.cleanup();
    });

    it("creates, starts and waits for the mark, then the task answers on its endpoint", async () => {
      const id = await startReady();
      const endpoint = await s.backend.endpoint(id);
      const res = await sendWithRetry(s.client, {
        method: "POST",
        endpoint,
        path: "/",
        body: "hello contract",
      });
      expect(res).toEqual({ status: 200, body: "hello contract", sent: 14, received: 14 });
      expect(await s.backend.inspect(id)).toMatchObject({ id, running: true, status: "running" });
    });

    it("watchStats() gives a running container's CPU time as the engine samples it, and ends when aborted", async () => {
      if (!s.backend.watchStats) return; // optional: the in-memory backend has none
      const id = await startReady();
      const stop = new AbortController();
      const samples: { cpuNs: number }[] = [];
      await s.backend.watchStats(id, {
        signal: AbortSignal.any([stop.signal, AbortSignal.timeout(15_000)]),
        onSample: (x) => {
          samples.push(x);
          if (samples.length === 2) stop.abort();
        },
      });
      expect(samples).toHaveLength(2);
      expect(samples[0]!.cpuNs).toBeGreaterThan(0); // it printed its mark, at least
      expect(samples[1]!.cpuNs).toBeGreaterThanOrEqual(samples[0]!.cpuNs);
    });

    it("list() finds containers by every label given, running or not", async () => {
      const id = await s.backend.create(spec(s.images.echo));
      const found = await s.backend.list(labels);
      expect(found.find((c) => c.id === id)).toMatchObject({
        labels: expect.objectContaining(labels),
        state: "created",
      });
      expect(found.find((c) => c.id === id)?.name).toMatch(/^meca-contract-/);
      expect(await s.backend.list({ ...labels, "meca.contract.other": "x" })).toEqual([]);
    });

    it("hasImage() tells a local image from a missing one", async () => {
      expect(await s.backend.hasImage(s.images.echo)).toBe(true);
      expect(await s.backend.hasImage(s.images.missing)).toBe(false);
    });

    it("pullImage() of a missing image rejects with ImageNotFoundError", async () => {
      await expect(s.backend.pullImage(s.images.missing)).rejects.toBeInstanceOf(
        ImageNotFoundError,
      );
    });

    it("create() of an image that is not there rejects with ImageNotFoundError", async () => {
      await expect(s.backend.create(spec(s.images.missing))).rejects.toBeInstanceOf(
        ImageNotFoundError,
      );
    });

    it("create() with a name in use rejects with CONTAINER_NAME_CONFLICT", async () => {
      const first = spec(s.images.echo);
      await s.backend.create(first);
      const err = await s.backend.create({ ...first }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TaskStartError);
      expect(err).toMatchObject({ code: "CONTAINER_NAME_CONFLICT" });
    });

    it("waitForMark() rejects with ContainerExitedError, exit code and last lines when the task crashes", async () => {
      const id = await s.backend.create(spec(s.images.crash));
      await s.backend.start(id);
      const err = await s.backend
        .waitForMark(id, { mark: READY_MARK, signal: ready() })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ContainerExitedError);
      expect(err).toMatchObject({
        exitCode: CRASH_EXIT_CODE,
        lastLines: expect.arrayContaining([...CRASH_LOG_LINES]),
      });
      expect(await s.backend.inspect(id)).toMatchObject({
        running: false,
        exitCode: CRASH_EXIT_CODE,
      });
      // stdout and stderr are copied apart, so which one Docker logs last may vary.
      const tail = await s.backend.logsTail(id, 1);
      expect(tail).toHaveLength(1);
      expect(CRASH_LOG_LINES).toContain(tail[0]);
    });

    it("waitForMark() rejects with the signal's reason when it aborts", async () => {
      const id = await s.backend.create(spec(s.images.neverReady));
      await s.backend.start(id);
      const ac = new AbortController();
      const reason = new Error("ready timeout");
      setTimeout(() => ac.abort(reason), 300);
      await expect(s.backend.waitForMark(id, { mark: READY_MARK, signal: ac.signal })).rejects.toBe(
        reason,
      );
    });

    it("waitForMark() of a container that does not exist rejects with ContainerExitedError", async () => {
      const id = await s.backend.create(spec(s.images.echo));
      await s.backend.remove(id);
      await expect(
        s.backend.waitForMark(id, { mark: READY_MARK, signal: ready() }),
      ).rejects.toBeInstanceOf(ContainerExitedError);
    });

    it("remove() twice is fine, and a removed container inspects as undefined", async () => {
      const id = await startReady();
      await s.backend.remove(id);
      await s.backend.remove(id);
      expect(await s.backend.inspect(id)).toBeUndefined();
      expect(await s.backend.logsTail(id, 5)).toEqual([]);
    });

    it("endpoint() on Docker's default bridge, which has no DNS, is the container's address on port 8080, and the task answers there", async () => {
      const id = await startReady({ network: "bridge" });
      const endpoint = await s.backend.endpoint(id, { network: "bridge" });
      expect(endpoint).toMatch(/^http:\/\/\d+\.\d+\.\d+\.\d+:8080$/);
      expect(
        await s.client.send({ method: "POST", endpoint, path: "/", body: "on the bridge" }),
      ).toEqual({ status: 200, body: "on the bridge", sent: 13, received: 13 });
    });

    it("createNetwork() makes a labelled internal network; a task on it is reached at its address there; removeNetwork() needs it empty", async () => {
      // A /28 of 10.214.0.0/16 of this run's own (test networks never use the executor's pool).
      const third = Number.parseInt(run.slice(0, 4), 36) % 256;
      const subnet = `10.214.${third}.${16 * (serial % 16)}/28`;
      const name = `meca-contract-net-${run}-${serial}`;
      const id = await s.backend.createNetwork({ name, subnet, internal: true, labels });
      expect(await s.backend.listNetworks(labels)).toContainEqual({
        id,
        name,
        labels,
        subnets: [subnet],
      });
      const taken = await s.backend
        .createNetwork({ name: `${name}-2`, subnet, internal: true, labels })
        .catch((e: unknown) => e);
      expect(taken).toBeInstanceOf(TaskStartError);
      expect(taken).toMatchObject({ code: "SUBNET_TAKEN" });

      const task = await startReady({ network: name });
      const endpoint = await s.backend.endpoint(task, { network: name, byAddress: true });
      expect(endpoint).toMatch(
        new RegExp(`^http://${subnet.split(".").slice(0, 3).join("\\.")}\\.\\d+:8080$`),
      );
      expect(
        await sendWithRetry(s.client, {
          method: "POST",
          endpoint,
          path: "/",
          body: "on its own network",
        }),
      ).toEqual({ status: 200, body: "on its own network", sent: 18, received: 18 });
      expect(await s.backend.endpoint(task, { network: name })).toMatch(
        /^http:\/\/meca-contract-[^:]+:8080$/,
      );

      const other = await s.backend.create(spec(s.images.echo));
      await s.backend.connectNetwork(id, other);
      await s.backend.connectNetwork(id, other); // already attached: fine
      await s.backend.disconnectNetwork(id, other);
      await s.backend.disconnectNetwork(id, other); // not attached: fine
      await expect(s.backend.removeNetwork(id)).rejects.toThrow(/active endpoints/);
      await s.backend.remove(task);
      await s.backend.removeNetwork(id);
      await s.backend.removeNetwork(id); // already gone: fine
      expect((await s.backend.listNetworks(labels)).map((n) => n.id)).not.toContain(id);
    });

    it("importImage() makes an image from a tar; a container of it holds a network's namespace, where a task created with sharesNetworkOf answers at the holder's address", async () => {
      if (process.arch !== "x64") return; // the holder's program is x86-64
      const ref = `meca-contract/netns-holder:${run}`;
      await s.backend.importImage(ref, holderTar(), HOLDER_CHANGES);
      expect(await s.backend.hasImage(ref)).toBe(true);
      const third = (Number.parseInt(run.slice(0, 4), 36) + 128) % 256;
      const subnet = `10.214.${third}.${16 * (serial % 16)}/28`;
      const name = `meca-contract-net-${run}-${serial}`;
      const net = await s.backend.createNetwork({ name, subnet, internal: true, labels });
      const holder = await s.backend.create({
        ...holderSpec({ name: `${name}-holder`, network: name, labels }),
        image: ref,
      });
      await s.backend.start(holder);
      expect(await s.backend.inspect(holder)).toMatchObject({ running: true, networks: [name] });
      const endpoint = await s.backend.endpoint(holder, { network: name, byAddress: true });

      const task = await startReady({ sharesNetworkOf: holder });
      expect(await s.backend.inspect(task)).toMatchObject({
        running: true,
        networks: [],
        sharesNetworkOf: holder,
      });
      expect(
        await sendWithRetry(s.client, { method: "POST", endpoint, path: "/", body: "held" }),
      ).toEqual({ status: 200, body: "held", sent: 4, received: 4 });
      await s.backend.remove(task);
      await s.backend.remove(holder);
      await s.backend.removeNetwork(net);
    });

    it("a container with CPU, memory and pids limits runs, and inspect() reads back what adoption checks", async () => {
      const id = await startReady({
        nanoCpus: 300_000_000,
        memoryBytes: 48 * 2 ** 20,
        pidsLimit: 32,
      });
      const st = await s.backend.inspect(id);
      expect(st).toMatchObject({
        running: true,
        oomKilled: false,
        nanoCpus: 300_000_000,
        memoryBytes: 48 * 2 ** 20,
        labels: expect.objectContaining(labels),
      });
      expect(st?.name).toMatch(/^meca-contract-/);
      expect(st?.gpuIds).toEqual([]);
      expect(st?.startedAt).toBeGreaterThan(0);
    });

    it("hasMark() says whether the mark is in a container's output so far, without waiting", async () => {
      const id = await startReady();
      expect(await s.backend.hasMark(id, READY_MARK)).toBe(true);
      expect(await s.backend.hasMark(id, "no-such-mark-in-the-output")).toBe(false);
      const quiet = await s.backend.create(spec(s.images.neverReady));
      await s.backend.start(quiet);
      expect(await s.backend.hasMark(quiet, READY_MARK)).toBe(false);
      await s.backend.remove(quiet);
      expect(await s.backend.hasMark(quiet, READY_MARK)).toBe(false);
    });

    /**
     * Starts watching, then creates and removes labelled probe containers until one's event
     * arrives: from then on the stream is connected and sees every later event.
     */
    const watch = async () => {
      const events: ContainerEvent[] = [];
      const ac = new AbortController();
      const watching = s.backend.watchEvents({
        labels,
        onEvent: (e) => events.push(e),
        signal: ac.signal,
      });
      const deadline = Date.now() + 30_000;
      for (;;) {
        const probe = await s.backend.create(spec(s.images.echo));
        await s.backend.remove(probe);
        if (await eventually(() => events.some((e) => e.id === probe), 1_000)) break;
        if (Date.now() > deadline) throw new Error("The event stream did not connect within 30 s");
      }
      return { events, watching, stop: () => ac.abort() };
    };

    it("watchEvents() delivers die with the exit code, for a crash and for a removal", async () => {
      const { events, watching, stop } = await watch();
      const crashed = await s.backend.create(spec(s.images.crash));
      await s.backend.start(crashed);
      await until(() => events.some((e) => e.id === crashed && e.action === "die"));
      const running = await startReady();
      await s.backend.remove(running);
      await until(() => events.some((e) => e.id === running && e.action === "destroy"));
      stop();
      await expect(watching).resolves.toBeUndefined();
      expect(events.find((e) => e.id === crashed && e.action === "die")).toMatchObject({
        exitCode: CRASH_EXIT_CODE,
        labels: expect.objectContaining(labels),
      });
      expect(events.find((e) => e.id === running && e.action === "die")).toMatchObject({
        exitCode: 137,
      });
      expect(events.every((e) => e.labels["meca.contract"] === run)).toBe(true);
    });

    it("watchEvents() reports oom before die 137, and inspect() says OOMKilled, when a task outgrows its memory", async () => {
      const { events, watching, stop } = await watch();
      const id = await startReady({ memoryBytes: 32 * 2 ** 20 });
      const endpoint = await s.backend.endpoint(id);
      await sendWithRetry(s.client, { method: "POST", endpoint, path: "/", body: "warm" });
      await s.client
        .send({ method: "POST", endpoint, path: "/", body: taskBody.oom })
        .catch(() => {});
      await until(() => events.some((e) => e.id === id && e.action === "die"), 30_000);
      stop();
      await watching;
      const mine = events.filter((e) => e.id === id).map((e) => e.action);
      expect(mine).toContain("oom");
      expect(mine.indexOf("oom")).toBeLessThan(mine.indexOf("die"));
      expect(events.find((e) => e.id === id && e.action === "die")).toMatchObject({
        exitCode: 137,
      });
      expect(await s.backend.inspect(id)).toMatchObject({
        running: false,
        exitCode: 137,
        oomKilled: true,
      });
    });

    it("a task that exits under a request on a kept-alive connection is TaskFailedError (it may have seen the request), then TaskConnectError", async () => {
      const id = await startReady();
      const endpoint = await s.backend.endpoint(id);
      expect(
        await sendWithRetry(s.client, { method: "POST", endpoint, path: "/", body: "first" }),
      ).toEqual({ status: 200, body: "first", sent: 5, received: 5 });
      // The first connection after the mark may be one the task closes: the second answer is on a kept-alive one.
      expect(await s.client.send({ method: "POST", endpoint, path: "/", body: "second" })).toEqual({
        status: 200,
        body: "second",
        sent: 6,
        received: 6,
      });
      const err = await s.client
        .send({ method: "POST", endpoint, path: "/", body: taskBody.exit(5) })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TaskFailedError);
      await untilAsync(async () => (await s.backend.inspect(id))?.running === false);
      expect(await s.backend.inspect(id)).toMatchObject({ running: false, exitCode: 5 });
      const after = await s.client
        .send({ method: "POST", endpoint, path: "/", body: "after" })
        .catch((e: unknown) => e);
      expect(after).toBeInstanceOf(TaskConnectError);
    });

    it("a container that died between requests refuses the next one with TaskConnectError: nothing reached it", async () => {
      const id = await startReady();
      const endpoint = await s.backend.endpoint(id);
      expect(
        await sendWithRetry(s.client, { method: "POST", endpoint, path: "/", body: "first" }),
      ).toEqual({ status: 200, body: "first", sent: 5, received: 5 });
      await s.kill(id);
      await untilAsync(async () => (await s.backend.inspect(id))?.running === false);
      const err = await s.client
        .send({
          method: "POST",
          endpoint,
          path: "/",
          body: "second",
          signal: AbortSignal.timeout(30_000),
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TaskConnectError);
    });

    it("pullImage() of an image the registry has fetches it, with readable progress lines", async () => {
      await s.removeImage(s.images.pullable);
      try {
        expect(await s.backend.hasImage(s.images.pullable)).toBe(false);
        const lines: string[] = [];
        let last: PullProgress | undefined;
        await s.backend.pullImage(s.images.pullable, {
          onProgress: (p) => {
            last = p;
            if (p.line !== undefined) lines.push(p.line);
          },
        });
        // Every layer counted, and done (none is sent when the engine has every layer already).
        expect(last?.layersDone).toBe(last?.layers);
        expect(await s.backend.hasImage(s.images.pullable)).toBe(true);
        expect(
          lines.some((l) => l.includes(`Downloaded newer image for ${s.images.pullable}`)),
        ).toBe(true);
        expect(lines.every((l) => !l.includes("{"))).toBe(true);
        const id = await s.backend.create(spec(s.images.pullable));
        expect(await s.backend.inspect(id)).toMatchObject({ running: false, status: "created" });
      } finally {
        // Other cases and files expect the image absent, as the set-up left it.
        for (const c of await s.backend.list(labels)) await s.backend.remove(c.id);
        await s.removeImage(s.images.pullable);
      }
    });

    it("an engine that does not answer: every call rejects with EngineUnavailableError, and so does watchEvents()", async () => {
      const down = await s.unreachable();
      try {
        await expect(down.info()).rejects.toBeInstanceOf(EngineUnavailableError);
        await expect(down.hasImage(s.images.echo)).rejects.toBeInstanceOf(EngineUnavailableError);
        await expect(down.pullImage(s.images.pullable)).rejects.toBeInstanceOf(
          EngineUnavailableError,
        );
        await expect(down.create(spec(s.images.echo))).rejects.toBeInstanceOf(
          EngineUnavailableError,
        );
        await expect(down.inspect("0123456789ab")).rejects.toBeInstanceOf(EngineUnavailableError);
        await expect(down.list(labels)).rejects.toBeInstanceOf(EngineUnavailableError);
        await expect(down.remove("0123456789ab")).rejects.toBeInstanceOf(EngineUnavailableError);
        const watching = down.watchEvents({
          labels,
          onEvent: () => {},
          signal: AbortSignal.timeout(30_000),
        });
        await expect(watching).rejects.toBeInstanceOf(EngineUnavailableError);
      } finally {
        await down.close();
      }
    });

    /** Watches events on a controlled engine, once it answers; `settled` says how the watch ended. */
    const controlledWatch = async (ctx: { skip(): void }) => {
      if (s.controlled === undefined) {
        ctx.skip();
        throw new Error("skipped");
      }
      const engine = await s.controlled();
      const ac = new AbortController();
      const state: { settled?: { resolved: true } | { rejected: unknown } } = {};
      const watching = engine.backend
        .watchEvents({ labels, onEvent: () => {}, signal: ac.signal })
        .then(
          () => void (state.settled = { resolved: true }),
          (err: unknown) => void (state.settled = { rejected: err }),
        );
      await engine.backend.list(labels); // the engine answers
      return { engine, state, watching, stop: () => ac.abort() };
    };

    it("watchEvents() resolves when the engine ends the stream (it restarts), and the engine still answers", async (ctx) => {
      const { engine, state, watching, stop } = await controlledWatch(ctx);
      try {
        // The request may still be on its way: end streams until the watch sees its end.
        await untilAsync(async () => {
          engine.endStreams();
          await sleep(50);
          return state.settled !== undefined;
        }, 30_000);
        expect(state.settled).toEqual({ resolved: true });
        expect(await engine.backend.list(labels)).toEqual(expect.any(Array));
      } finally {
        stop();
        await watching;
        await engine.cleanup();
      }
    });

    it("when the engine goes away, an open event stream ends or fails with EngineUnavailableError, and calls reject with it", async (ctx) => {
      const { engine, state, watching, stop } = await controlledWatch(ctx);
      try {
        await engine.goAway();
        await untilAsync(async () => state.settled !== undefined, 30_000);
        // The engine watch reconnects after either; a failure must say the engine is unreachable.
        if (state.settled !== undefined && "rejected" in state.settled)
          expect(state.settled.rejected).toBeInstanceOf(EngineUnavailableError);
        await expect(engine.backend.list(labels)).rejects.toBeInstanceOf(EngineUnavailableError);
        await expect(engine.backend.info()).rejects.toBeInstanceOf(EngineUnavailableError);
      } finally {
        stop();
        await watching;
        await engine.cleanup();
      }
    });
  });
}

/** The task may open its port a moment after the mark: retry refused connections briefly. */
async function sendWithRetry(client: TaskClient, req: Parameters<TaskClient["send"]>[0]) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await client.send(req);
    } catch (err) {
      if (attempt >= 20 || (err as { code?: string }).code !== "TASK_UNREACHABLE") throw err;
      await sleep(100);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function until(check: () => boolean, timeoutMs = 20_000): Promise<void> {
  if (!(await eventually(check, timeoutMs)))
    throw new Error(`Condition not met within ${timeoutMs} ms`);
}

async function untilAsync(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Condition not met within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** Polls `check` for up to `ms`; whether it came true. */
async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}
