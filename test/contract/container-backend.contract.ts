/**
 * One set of cases for every ContainerBackend: the in-memory fake (unit
 * project) and the real Docker backend (integration project) must agree,
 * so that engine tests on the fake mean something.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContainerExitedError, ImageNotFoundError, TaskStartError } from "../../src/engine/errors.ts";
import type { ContainerBackend, ContainerEvent, ContainerSpec, TaskClient } from "../../src/engine/ports.ts";
import { CRASH_EXIT_CODE, CRASH_LOG_LINES, READY_MARK, TEST_LABEL } from "../support/fixtures.ts";

export interface ContractSubject {
  backend: ContainerBackend;
  images: { echo: string; crash: string; neverReady: string; missing: string };
  client: TaskClient;
  cleanup(): Promise<void>;
}

export function containerBackendContract(name: string, setup: () => Promise<ContractSubject>): void {
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
      const res = await sendWithRetry(s.client, { method: "POST", endpoint, path: "/", body: "hello contract" });
      expect(res).toEqual({ status: 200, body: "hello contract" });
      expect(await s.backend.inspect(id)).toMatchObject({ id, running: true, status: "running" });
    });

    it("list() finds containers by every label given, running or not", async () => {
      const id = await s.backend.create(spec(s.images.echo));
      const found = await s.backend.list(labels);
      expect(found.find((c) => c.id === id)).toMatchObject({ labels: expect.objectContaining(labels), state: "created" });
      expect(found.find((c) => c.id === id)?.name).toMatch(/^meca-contract-/);
      expect(await s.backend.list({ ...labels, "meca.contract.other": "x" })).toEqual([]);
    });

    it("hasImage() tells a local image from a missing one", async () => {
      expect(await s.backend.hasImage(s.images.echo)).toBe(true);
      expect(await s.backend.hasImage(s.images.missing)).toBe(false);
    });

    it("pullImage() of a missing image rejects with ImageNotFoundError", async () => {
      await expect(s.backend.pullImage(s.images.missing)).rejects.toBeInstanceOf(ImageNotFoundError);
    });

    it("create() of an image that is not there rejects with ImageNotFoundError", async () => {
      await expect(s.backend.create(spec(s.images.missing))).rejects.toBeInstanceOf(ImageNotFoundError);
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
      const err = await s.backend.waitForMark(id, { mark: READY_MARK, signal: ready() }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ContainerExitedError);
      expect(err).toMatchObject({ exitCode: CRASH_EXIT_CODE, lastLines: expect.arrayContaining([...CRASH_LOG_LINES]) });
      expect(await s.backend.inspect(id)).toMatchObject({ running: false, exitCode: CRASH_EXIT_CODE });
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
      await expect(s.backend.waitForMark(id, { mark: READY_MARK, signal: ac.signal })).rejects.toBe(reason);
    });

    it("waitForMark() of a container that does not exist rejects with ContainerExitedError", async () => {
      const id = await s.backend.create(spec(s.images.echo));
      await s.backend.remove(id);
      await expect(s.backend.waitForMark(id, { mark: READY_MARK, signal: ready() })).rejects.toBeInstanceOf(
        ContainerExitedError,
      );
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
      expect(await s.client.send({ method: "POST", endpoint, path: "/", body: "on the bridge" })).toEqual({ status: 200, body: "on the bridge" });
    });

    it("createNetwork() makes a labelled internal network; a task on it is reached at its address there; removeNetwork() needs it empty", async () => {
      // A /28 of 10.214.0.0/16 of this run's own (test networks never use the executor's pool).
      const third = Number.parseInt(run.slice(0, 4), 36) % 256;
      const subnet = `10.214.${third}.${16 * (serial % 16)}/28`;
      const name = `meca-contract-net-${run}-${serial}`;
      const id = await s.backend.createNetwork({ name, subnet, internal: true, labels });
      expect(await s.backend.listNetworks(labels)).toContainEqual({ id, name, labels, subnets: [subnet] });
      const taken = await s.backend.createNetwork({ name: `${name}-2`, subnet, internal: true, labels }).catch((e: unknown) => e);
      expect(taken).toBeInstanceOf(TaskStartError);
      expect(taken).toMatchObject({ code: "SUBNET_TAKEN" });

      const task = await startReady({ network: name });
      const endpoint = await s.backend.endpoint(task, { network: name, byAddress: true });
      expect(endpoint).toMatch(new RegExp(`^http://${subnet.split(".").slice(0, 3).join("\\.")}\\.\\d+:8080$`));
      expect(await sendWithRetry(s.client, { method: "POST", endpoint, path: "/", body: "on its own network" })).toEqual({ status: 200, body: "on its own network" });
      expect(await s.backend.endpoint(task, { network: name })).toMatch(/^http:\/\/meca-contract-[^:]+:8080$/);

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

    it("a container with CPU, memory and pids limits runs", async () => {
      const id = await startReady({ nanoCpus: 300_000_000, memoryBytes: 48 * 2 ** 20, pidsLimit: 32 });
      expect(await s.backend.inspect(id)).toMatchObject({ running: true, oomKilled: false });
    });

    it("watchEvents() delivers die with the exit code, for a crash and for a removal", async () => {
      const events: ContainerEvent[] = [];
      const ac = new AbortController();
      const watching = s.backend.watchEvents({ labels, onEvent: (e) => events.push(e), signal: ac.signal });
      await sleep(300); // let the stream connect
      const crashed = await s.backend.create(spec(s.images.crash));
      await s.backend.start(crashed);
      await until(() => events.some((e) => e.id === crashed && e.action === "die"));
      const running = await startReady();
      await s.backend.remove(running);
      await until(() => events.some((e) => e.id === running && e.action === "destroy"));
      ac.abort();
      await expect(watching).resolves.toBeUndefined();
      expect(events.find((e) => e.id === crashed && e.action === "die")).toMatchObject({
        exitCode: CRASH_EXIT_CODE,
        labels: expect.objectContaining(labels),
      });
      expect(events.find((e) => e.id === running && e.action === "die")).toMatchObject({ exitCode: 137 });
      expect(events.every((e) => e.labels["meca.contract"] === run)).toBe(true);
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

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("Condition not met in time");
    await sleep(20);
  }
}
