import { describe, expect, it } from "vitest";
import { TaskConnectError } from "../../src/engine/errors.ts";
import { deferred } from "../fakes/fake-backend.ts";
import { fakeExecutor, flush } from "../support/fake-executor.ts";

const intent = (cpu: number, image = "echo:1") => ({ image, cpu, mem: 64 });

describe("Executor with fake ports", () => {
  it("execute() reuses the warm task and starts one per key", async () => {
    const { executor, backend } = await fakeExecutor();
    expect(await executor.execute(intent(1), "a")).toBe("a");
    expect(await executor.execute(intent(1), "b")).toBe("b");
    expect(await executor.execute(intent(2), "c")).toBe("c");
    expect(backend.created).toHaveLength(2);
  });

  it("execute() waits for the start already under way instead of starting another", async () => {
    const { executor, backend } = await fakeExecutor();
    const hold = deferred();
    backend.before("start", () => hold.promise, { once: true });
    const all = Promise.all([1, 2, 3, 4, 5].map((i) => executor.execute(intent(1), `r${i}`)));
    await flush();
    hold.resolve();
    expect(await all).toEqual(["r1", "r2", "r3", "r4", "r5"]);
    expect(backend.created).toHaveLength(1);
  });

  it("evicts the least recently used idle task on a shortage, never a busy one", async () => {
    const slow = deferred<{ status: number; body: string }>();
    const { executor, backend } = await fakeExecutor({
      settings: { cpu: 3 },
      images: { "slow:1": { respond: () => slow.promise } },
    });
    await executor.execute(intent(1), "x"); // a: idle, oldest
    const busy = executor.execute(intent(1, "slow:1"), "y"); // b: busy
    await flush();
    await executor.execute(intent(1.5, "echo:1"), "z"); // needs 1.5 of the 1 free: evicts a, not b
    const removed = backend.calls.filter((c) => c.method === "remove").length;
    expect(removed).toBe(1);
    expect(
      executor
        .tasks()
        .map((t) => t.image)
        .sort(),
    ).toEqual(["echo:1", "slow:1"]);
    expect(executor.tasks().find((t) => t.image === "slow:1")?.in_flight).toBe(1);
    slow.resolve({ status: 200, body: "y" });
    expect(await busy).toBe("y");
  });

  it("queues in FIFO order when busy tasks hold everything, then 503 after the queue timeout", async () => {
    const slow = deferred<{ status: number; body: string }>();
    const { executor } = await fakeExecutor({
      settings: { cpu: 1, queueTimeoutMs: 1_000 },
      images: { "slow:1": { respond: () => slow.promise } },
    });
    const busy = executor.execute(intent(1, "slow:1"), "y");
    await flush();
    const order: string[] = [];
    const first = executor.execute(intent(0.5), "first").then((r) => order.push(r));
    const second = executor.execute(intent(0.6), "second").then((r) => order.push(r));
    await flush();
    expect(executor.queueLength).toBe(2);
    slow.resolve({ status: 200, body: "y" });
    await busy;
    await first;
    // second (0.6) does not fit beside first (0.5): it waits until first is idle, then evicts it.
    await second;
    expect(order).toEqual(["first", "second"]);

    const hold = deferred<{ status: number; body: string }>();
    const ex2 = await fakeExecutor({
      settings: { cpu: 1, queueTimeoutMs: 1_000 },
      images: { "slow:1": { respond: () => hold.promise } },
    });
    const b2 = ex2.executor.execute(intent(1, "slow:1"), "y");
    await flush();
    const waiting = ex2.executor.execute(intent(1), "late");
    await flush();
    ex2.clock.advance(1_000);
    await expect(waiting).rejects.toMatchObject({ code: "NO_CAPACITY", retryAfter: 1 });
    expect(ex2.executor.ledger.used().cpuTenths).toBe(10);
    hold.resolve({ status: 200, body: "y" });
    await b2;
  });

  it("applies update-config at once while running: idle replicas go, busy ones finish, starts wait until the reservations fit", async () => {
    const slow = deferred<{ status: number; body: string }>();
    const { executor, backend } = await fakeExecutor({
      settings: { cpu: 4 },
      images: { "slow:1": { respond: () => slow.promise } },
    });
    await executor.execute(intent(1), "idle"); // idle replica
    const busy = executor.execute(intent(2, "slow:1"), "y");
    await flush();
    expect(executor.ledger.used().cpuTenths).toBe(30);
    const r = await executor.updateConfig({ cpu: 1, idleTimeoutMinutes: 1 });
    expect(r.changed).toEqual({ cpu: { from: 4, to: 1 } });
    expect(executor.ledger.capacity.cpuTenths).toBe(10);
    // The idle one went; the busy one (2 cores, over the new capacity) finishes.
    expect(executor.tasks().map((t) => t.image)).toEqual(["slow:1"]);
    const waiting = executor.execute(intent(1), "after");
    await flush();
    expect(executor.queueLength).toBe(1);
    expect(backend.created).toHaveLength(2);
    slow.resolve({ status: 200, body: "y" });
    expect(await busy).toBe("y");
    // The busy replica went idle: it is evicted so that the reservations fit, then the start goes.
    expect(await waiting).toBe("after");
    expect(executor.tasks().map((t) => t.image)).toEqual(["echo:1"]);
    expect(executor.ledger.used().cpuTenths).toBe(10);
  });

  it("update-config after a pause works as before", async () => {
    const { executor } = await fakeExecutor();
    await executor.execute(intent(1), "a");
    await executor.pause();
    expect((await executor.updateConfig({ cpu: 0.1, memMB: 4096 })).changed).toEqual({
      cpu: { from: 4, to: 0.1 },
    });
    expect(executor.ledger.capacity.cpuTenths).toBe(1);
    executor.unpause();
    await expect(executor.execute(intent(1), "b")).rejects.toMatchObject({
      code: "EXCEEDS_CAPACITY",
    });
  });

  it("a changed microVM_runtime applies to replicas started afterwards, never to a warm one", async () => {
    const { executor, backend } = await fakeExecutor({ settings: { microVMRuntime: "runsc" } });
    backend.runtimes.push("kata");
    const vm = { image: "echo:1", runtime: "microVM" };
    expect(await executor.execute(vm, "a")).toBe("a");
    await executor.updateConfig({ microVMRuntime: "kata" });
    expect(await executor.execute(vm, "b")).toBe("b");
    expect(backend.created.map((c) => c.runtime)).toEqual(["runsc", "kata"]);
  });

  it("a container that dies leaves the pool at once and the next request starts a fresh one", async () => {
    const { executor, backend } = await fakeExecutor();
    await executor.execute(intent(1), "a");
    const [first] = backend.containers();
    backend.kill(first!.id, { oom: true });
    await flush();
    expect(executor.tasks()).toEqual([]);
    expect(executor.ledger.used().cpuTenths).toBe(0);
    expect(await executor.execute(intent(1), "b")).toBe("b");
    expect(backend.created).toHaveLength(2);
  });

  it("retries once on a fresh container when the request never reached a dead one", async () => {
    const { executor, backend } = await fakeExecutor();
    await executor.execute(intent(1), "a");
    const [first] = backend.containers();
    first!.exit(137); // died without the executor hearing of it yet
    expect(await executor.execute(intent(1), "b")).toBe("b");
    expect(backend.created).toHaveLength(2);
  });

  it("a task removed while a refused request waits to try again: the request goes to a fresh container, never to no address", async () => {
    const { executor, backend, client, clock } = await fakeExecutor();
    await executor.execute(intent(1), "a");
    const [first] = backend.containers();
    // Its port is not open yet though its container runs: the forward waits a moment and tries again.
    const send = client.send.bind(client);
    client.send = async (req) => {
      client.send = send;
      throw new TaskConnectError(
        `Cannot connect to the task at "${req.endpoint}": connect ECONNREFUSED`,
      );
    };
    const answer = executor.execute(intent(1), "b");
    await flush();
    backend.kill(first!.id); // meanwhile it exits, and the pool removes it
    await flush();
    expect(executor.tasks().map((t) => t.container_id)).not.toContain(first!.id);
    clock.advance(250);
    await flush();
    expect(await answer).toBe("b");
    expect(backend.created).toHaveLength(2);
    expect(client.sent.every((r) => typeof r.endpoint === "string" && r.endpoint !== "")).toBe(
      true,
    );
  });

  it("a start that fails returns its reservation and removes the container", async () => {
    const { executor, backend } = await fakeExecutor({
      images: { "crash:1": { ready: { exitCode: 3, lines: ["boom"] } } },
    });
    await expect(executor.execute(intent(1, "crash:1"), "x")).rejects.toMatchObject({
      code: "TASK_EXITED",
      exitCode: 3,
    });
    await flush();
    expect(executor.ledger.used()).toEqual({ cpuTenths: 0, memMB: 0, gpus: [] });
    expect(backend.containers()).toEqual([]);
  });

  it("a task's error answer carries its status and body apart from the message", async () => {
    const { executor } = await fakeExecutor({
      images: { "fail:1": { respond: (body) => ({ status: 500, body: `kaputt ${body}` }) } },
    });
    const e = await executor.execute(intent(1, "fail:1"), "secret").catch((x) => x);
    expect(e).toMatchObject({ code: "TASK_FAILED", status: 500, body: "kaputt secret" });
    expect(e.message).toBe('Task "fail:1" answered 500');
  });

  it("removes tasks idle past the timeout", async () => {
    const { executor, backend, clock } = await fakeExecutor({
      settings: { idleTimeoutMinutes: 0.5 },
    });
    await executor.execute(intent(1), "a");
    clock.advance(29_000);
    expect(executor.tasks()).toHaveLength(1);
    clock.advance(6_000);
    await flush();
    expect(executor.tasks()).toEqual([]);
    expect(backend.containers()).toEqual([]);
  });

  it("refuses microVM when the engine does not list the configured runtime", async () => {
    const { executor } = await fakeExecutor({ settings: { microVMRuntime: "kata" } });
    await expect(executor.execute({ image: "echo:1", runtime: "microVM" }, "x")).rejects.toThrow(
      /"kata".*not registered/,
    );
    const ok = await fakeExecutor({ settings: { microVMRuntime: "runsc" } });
    expect(await ok.executor.execute({ image: "echo:1", runtime: "microVM" }, "x")).toBe("x");
    expect(ok.backend.created[0]!.runtime).toBe("runsc");
  });

  it("sends SGX inputs to /ra and /run", async () => {
    const { executor, client } = await fakeExecutor({
      settings: { sgx: { enable: true, device: "/dev/null", aesmdPath: "/tmp" } },
      images: {
        "sgx:1": {
          respond: (body, req) => ({ status: 200, body: `${req.method} ${req.path} ${body}` }),
        },
      },
    });
    expect(await executor.execute({ image: "sgx:1", useSgx: true }, "SGXRAREQUEST")).toBe(
      "GET /ra ",
    );
    expect(await executor.execute({ image: "sgx:1", useSgx: true }, "data")).toBe("POST /run data");
    expect(client.sent.map((r) => r.method)).toEqual(["GET", "POST"]);
  });
});
