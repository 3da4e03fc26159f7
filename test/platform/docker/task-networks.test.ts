/**
 * Isolation on the fake engine: each task on a network of its own, from the pool, kept ready
 * ahead of demand, removed with its task, swept at start-up, waited for when the pool is spent.
 */
import { describe, expect, it } from "vitest";
import { LABELS } from "../../../src/platform/docker/labels.ts";
import { bridgeName, TaskNetworks } from "../../../src/platform/docker/task-networks.ts";
import { DockerTasks } from "../../../src/platform/docker/docker-tasks.ts";
import { FakeBackend } from "../../fakes/fake-backend.ts";
import { FakeClock } from "../../fakes/fake-clock.ts";
import { memoryLogger } from "../../fakes/fake-logger.ts";
import { Executor } from "../../../src/engine/executor.ts";
import { FakeHost } from "../../fakes/fake-host.ts";
import { FakeTaskClient } from "../../fakes/fake-task-client.ts";
import {
  BASE_SETTINGS,
  fakeExecutor,
  flush,
  settleWithClock,
} from "../../support/fake-executor.ts";
import { until } from "../../support/until.ts";

const isolated = { isolate: true, taskSubnetPool: "10.201.0.0/24" };
const taskNets = (backend: Awaited<ReturnType<typeof fakeExecutor>>["backend"]) =>
  backend.networks().filter((n) => n.labels[LABELS.network] === "task");

describe("task networks", () => {
  it("puts each task on an internal network of its own from the pool, reached at its address, labelled like its container", async () => {
    const { executor, backend } = await fakeExecutor({ settings: isolated });
    expect(await executor.execute({ image: "echo:1", cpu: 1, mem: 128 }, "a")).toBe("a");
    expect(await executor.execute({ image: "echo:1", cpu: 2, mem: 128 }, "b")).toBe("b");
    const [t1, t2] = backend.created;
    expect(t1!.network).not.toBe(t2!.network);
    for (const spec of [t1!, t2!]) {
      const net = backend.networks().find((n) => n.name === spec.network)!;
      expect(net.internal).toBe(true);
      expect(net.subnets[0]).toMatch(/^10\.201\.0\.\d+\/28$/);
      expect(net.labels).toMatchObject({
        [LABELS.managed]: "1",
        [LABELS.instance]: "unit",
        [LABELS.network]: "task",
        [LABELS.run]: spec.labels[LABELS.run],
      });
    }
    const endpoints = backend.calls.filter((c) => c.method === "endpoint").map((c) => c.args[1]);
    expect(endpoints).toEqual([
      { network: t1!.network, byAddress: true },
      { network: t2!.network, byAddress: true },
    ]);
    expect(backend.created.every((s) => s.capDrop?.includes("NET_RAW") && s.nofile === 4096)).toBe(
      true,
    );
  });

  it("keeps spare networks ready, removes a task's network with the task, and every network once stopped", async () => {
    const { executor, backend } = await fakeExecutor({ settings: isolated });
    await flush(20);
    expect(taskNets(backend)).toHaveLength(2); // spares, before any request
    await executor.execute({ image: "echo:1" }, "x");
    await flush(20);
    expect(taskNets(backend)).toHaveLength(3); // the task's, and the spares topped up
    await executor.pause();
    await flush(20);
    expect(taskNets(backend)).toHaveLength(2); // the task's went with it
    await executor.shutdown();
    expect(taskNets(backend)).toEqual([]);
  });

  it("keeps task_network_spares networks ready: none at 0 (each start creates its own), three at 3, and a start takes one", async () => {
    for (const spares of [0, 3]) {
      const { executor, backend } = await fakeExecutor({
        settings: { ...isolated, taskNetworkSpares: spares },
      });
      await flush(20);
      expect(taskNets(backend)).toHaveLength(spares);
      const ready = new Set(taskNets(backend).map((n) => n.name));
      await executor.execute({ image: "echo:1" }, "x");
      // With spares the start took one of them (the refill comes after); without, it made its own.
      expect(ready.has(backend.created[0]!.network!)).toBe(spares > 0);
      await flush(20);
      expect(taskNets(backend)).toHaveLength(spares + 1);
      await executor.shutdown();
      expect(taskNets(backend)).toEqual([]);
    }
  });

  it("with egress on, the task networks have a route out", async () => {
    const { executor, backend } = await fakeExecutor({
      settings: { ...isolated, taskEgress: true },
    });
    await executor.execute({ image: "echo:1" }, "x");
    expect(backend.networks().find((n) => n.name === backend.created[0]!.network)!.internal).toBe(
      false,
    );
  });

  it("in a container, the executor joins each task network (spares too) and calls the task by name, and leaves before removal", async () => {
    const self = "e".repeat(64);
    const { executor, backend } = await fakeExecutor({ settings: isolated, selfContainer: self });
    await executor.execute({ image: "echo:1" }, "x");
    const net = backend.networks().find((n) => n.name === backend.created[0]!.network)!;
    expect(net.members.has(self)).toBe(true);
    expect(taskNets(backend).every((n) => n.members.has(self))).toBe(true);
    expect(backend.calls.find((c) => c.method === "endpoint")!.args[1]).toEqual({
      network: net.name,
      byAddress: false,
    });
    await executor.shutdown();
    const order = backend.calls
      .filter(
        (c) =>
          (c.method === "disconnectNetwork" || c.method === "removeNetwork") &&
          c.args[0] === net.id,
      )
      .map((c) => c.method);
    expect(order).toEqual(["disconnectNetwork", "removeNetwork"]);
    expect(taskNets(backend)).toEqual([]);
  });

  it("skips subnets another network already holds", async () => {
    const { backend, executor } = await fakeExecutor({
      settings: { ...isolated, instance: "other", taskSubnetPool: "10.201.0.0/27" },
    });
    await flush(20);
    expect(
      taskNets(backend)
        .map((n) => n.subnets[0])
        .sort(),
    ).toEqual(["10.201.0.0/28", "10.201.0.16/28"]);
    await executor.shutdown();
  });

  it("waits when every subnet of the pool is taken, then answers NO_CAPACITY after the queue timeout; a released one is reused", async () => {
    // A /28 pool: one network. The first task holds it; a second key can only wait for it.
    const { executor, backend, clock } = await fakeExecutor({
      settings: { ...isolated, taskSubnetPool: "10.201.0.0/28", queueTimeoutMs: 3_000 },
    });
    await flush(20);
    expect(await executor.execute({ image: "echo:1", cpu: 1, mem: 128 }, "first")).toBe("first");
    const second = executor.execute({ image: "echo:1", cpu: 2, mem: 128 }, "second");
    await expect(settleWithClock(second, clock, 500)).rejects.toMatchObject({
      code: "NO_CAPACITY",
    });
    expect(executor.ledger.used()).toMatchObject({ cpuTenths: 10 }); // the waiter's reservation came back
    await executor.pause();
    executor.unpause();
    expect(
      await settleWithClock(
        executor.execute({ image: "echo:1", cpu: 2, mem: 128 }, "third"),
        clock,
        500,
      ),
    ).toBe("third");
    expect(taskNets(backend).map((n) => n.subnets[0])).toEqual(["10.201.0.0/28"]);
  });

  it("a stop during the start-up sweep waits for it, so no leftover network stays behind", async () => {
    const backend = new FakeBackend({ images: { "echo:1": {} } });
    const old = {
      [LABELS.managed]: "1",
      [LABELS.instance]: "unit",
      [LABELS.run]: "old0",
      [LABELS.network]: "task",
    };
    await backend.createNetwork({
      name: "left-1",
      subnet: "10.201.0.16/28",
      internal: true,
      labels: old,
    });
    await backend.createNetwork({
      name: "left-2",
      subnet: "10.201.0.32/28",
      internal: true,
      labels: old,
    });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const unhold = backend.before("removeNetwork", () => held, { once: true });
    const clock = new FakeClock();
    const logger = memoryLogger();
    const settings = { ...BASE_SETTINGS, ...isolated };
    const executor = await Executor.create({
      runtime: new DockerTasks({ backend, clock, logger, settings }),
      client: new FakeTaskClient(backend),
      host: new FakeHost(8, 16_384),
      clock,
      logger,
      settings,
    });
    await until(
      () => backend.calls.some((c) => c.method === "removeNetwork"),
      "the sweep reached the engine",
    );
    let stopped = false;
    const stopping = executor.shutdown().then(() => (stopped = true));
    await flush(20);
    expect(stopped).toBe(false); // still sweeping
    release();
    unhold();
    await stopping;
    expect(taskNets(backend)).toEqual([]);
  });

  it("a network whose removal failed is removed once the engine's events reconnect, and at the latest at stop", async () => {
    for (const how of ["reconnect", "stop"] as const) {
      const { executor, backend } = await fakeExecutor({ settings: isolated });
      await executor.execute({ image: "echo:1" }, "x");
      const own = backend.created[0]!.network!;
      const fail = backend.before("removeNetwork", () => Promise.reject(new Error("engine away")), {
        once: true,
      });
      await executor.pause(); // the task goes; its network's removal fails
      await flush(20);
      expect(taskNets(backend).map((n) => n.name)).toContain(own);
      fail();
      if (how === "reconnect") {
        backend.endEvents();
        await until(
          () => !taskNets(backend).some((n) => n.name === own),
          "the network removed after the reconnection",
        );
        await executor.shutdown();
      } else {
        await executor.shutdown();
      }
      expect(taskNets(backend)).toEqual([]);
    }
  });

  it("at stop, a network of this run the executor does not know of (a create whose answer was lost) is removed too", async () => {
    const { executor, backend } = await fakeExecutor({ settings: isolated });
    await executor.execute({ image: "echo:1" }, "x");
    const run = backend.created[0]!.labels[LABELS.run]!;
    await backend.createNetwork({
      name: "lost",
      subnet: "10.201.0.240/28",
      internal: true,
      labels: {
        [LABELS.managed]: "1",
        [LABELS.instance]: "unit",
        [LABELS.run]: run,
        [LABELS.network]: "task",
      },
    });
    await executor.shutdown();
    expect(taskNets(backend)).toEqual([]);
  });

  it("sweep() removes task networks an earlier run of this instance left, and no other", async () => {
    const backend = new FakeBackend();
    const labels = (run: string, instance = "unit") => ({
      [LABELS.managed]: "1",
      [LABELS.instance]: instance,
      [LABELS.run]: run,
      [LABELS.network]: "task",
    });
    await backend.createNetwork({
      name: "old",
      subnet: "10.201.0.16/28",
      internal: true,
      labels: labels("old0"),
    });
    await backend.createNetwork({
      name: "theirs",
      subnet: "10.201.0.32/28",
      internal: true,
      labels: labels("old0", "someone-else"),
    });
    await backend.createNetwork({
      name: "mine",
      subnet: "10.201.0.48/28",
      internal: true,
      labels: labels("now1"),
    });
    const nets = new TaskNetworks({
      backend,
      clock: new FakeClock(),
      logger: memoryLogger(),
      settings: () => ({ ...BASE_SETTINGS, ...isolated }),
      run: "now1",
    });
    expect(await nets.sweep()).toBe(1);
    expect(
      backend
        .networks()
        .map((n) => n.name)
        .sort(),
    ).toEqual(["mine", "theirs"]);
  });
});

describe("task bridges", () => {
  it("carry a mecat name of at most 15 characters, unique per subnet, and a host address only where the executor needs one", async () => {
    const names = ["10.201.0.0/28", "10.201.0.16/28", "10.255.255.240/28"].map((s) =>
      bridgeName(s, "default", "r1"),
    );
    expect(new Set(names).size).toBe(3);
    for (const n of names) expect(n).toMatch(/^mecat[0-9a-f]{8}[0-9a-z]{2}$/);
    const onHost = await fakeExecutor({ settings: isolated });
    await onHost.executor.execute({ image: "echo:1", cpu: 1, mem: 128 }, "a");
    const hostCall = onHost.backend.calls.find((c) => c.method === "createNetwork")!.args[0] as {
      hostless?: boolean;
      bridge?: string;
    };
    expect(hostCall.hostless).toBe(false);
    expect(hostCall.bridge).toMatch(/^mecat/);
    const inContainer = await fakeExecutor({ settings: isolated, selfContainer: "self" });
    await inContainer.executor.execute({ image: "echo:1", cpu: 1, mem: 128 }, "a");
    expect(
      (
        inContainer.backend.calls.find((c) => c.method === "createNetwork")!.args[0] as {
          hostless?: boolean;
        }
      ).hostless,
    ).toBe(true);
    const egress = await fakeExecutor({
      settings: { ...isolated, taskEgress: true },
      selfContainer: "self",
    });
    await egress.executor.execute({ image: "echo:1", cpu: 1, mem: 128 }, "a");
    expect(
      (
        egress.backend.calls.find((c) => c.method === "createNetwork")!.args[0] as {
          hostless?: boolean;
        }
      ).hostless,
    ).toBe(false);
  });
});
