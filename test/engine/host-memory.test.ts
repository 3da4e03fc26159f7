/**
 * The owner's memory first: while the host's available memory is below min_free_host_mem_mb no
 * task starts (HOST_MEMORY_LOW, both figures) and idle tasks go, least recently used first, until it
 * is back above; busy ones are never touched.
 */
import { describe, expect, it } from "vitest";
import { HostMemoryLowError } from "../../src/engine/errors.ts";
import { HOST_MEMORY_CHECK_MS } from "../../src/engine/host-memory.ts";
import { deferred } from "../fakes/fake-backend.ts";
import { FakeHost } from "../fakes/fake-host.ts";
import { fakeExecutor, flush } from "../support/fake-executor.ts";

const settings = { minFreeHostMemMB: 1_000 };

describe("min_free_host_mem_mb", () => {
  it("refuses a start while the host's available memory is below it, naming both figures; starts again once above", async () => {
    const host = new FakeHost();
    host.availableMB = 600;
    const { executor, backend } = await fakeExecutor({ settings, host });
    const err = await executor.execute({ image: "echo:1" }, "x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostMemoryLowError);
    expect((err as HostMemoryLowError).code).toBe("HOST_MEMORY_LOW");
    expect((err as Error).message).toBe(
      "Cannot start a task: the host has 600 MB of memory available, less than min_free_host_mem_mb (1000 MB)",
    );
    expect(backend.created).toHaveLength(0);
    expect(executor.ledger.used().cpuTenths).toBe(0);
    host.availableMB = 1_000; // at the bound is enough
    expect(await executor.execute({ image: "echo:1" }, "y")).toBe("y");
    await executor.shutdown();
  });

  it("0 turns the guard off, and a host whose memory cannot be read refuses nothing, saying so at start-up", async () => {
    const host = new FakeHost();
    host.availableMB = 10;
    const off = await fakeExecutor({ settings: { minFreeHostMemMB: 0 }, host });
    expect(await off.executor.execute({ image: "echo:1" }, "a")).toBe("a");
    await off.executor.shutdown();
    host.availableMB = undefined;
    const blind = await fakeExecutor({ settings, host });
    expect(await blind.executor.execute({ image: "echo:1" }, "b")).toBe("b");
    expect(
      blind.logger.records.some(
        (r) =>
          r.level === "warn" &&
          r.msg === "Cannot read the host's available memory: min_free_host_mem_mb is not enforced",
      ),
    ).toBe(true);
    await blind.executor.shutdown();
  });

  it("while short, removes idle tasks least recently used first, one reading each, never a busy one, and stops once above", async () => {
    const host = new FakeHost();
    const hold = deferred<{ status: number; body: string }>();
    const { executor, clock, backend } = await fakeExecutor({
      settings: { ...settings, requestTimeoutMs: 60_000 },
      host,
      images: { "busy:1": { respond: () => hold.promise } },
    });
    // One busy task, used first (the least recently used of all), then three idle ones used in the order a, b, c.
    const busy = executor.execute({ image: "busy:1" }, "long");
    await flush(20);
    clock.advance(1_000);
    for (const [cpu, body] of [
      [0.5, "a"],
      [0.6, "b"],
      [0.7, "c"],
    ] as const) {
      await executor.execute({ image: "echo:1", cpu }, body);
      clock.advance(1_000);
    }
    expect(executor.tasks()).toHaveLength(4);
    // Short by what two tasks hold: every reading after a removal gives back 300 MB.
    host.availableMB = 500;
    const removed: number[] = [];
    backend.before("remove", () => {
      host.availableMB! += 300;
    });
    // The guard's next reading comes within two of its periods, whenever its last one began.
    for (let i = 0; i < 2; i++) {
      clock.advance(HOST_MEMORY_CHECK_MS);
      await flush(30);
    }
    for (const t of executor.tasks()) removed.push(t.cpu);
    expect(removed.sort()).toEqual([0.7, 1]); // a (0.5) and b (0.6) went; c and the busy one stay
    expect(host.availableMB).toBe(1_100);
    hold.resolve({ status: 200, body: "done" });
    expect(await busy).toBe("done");
    await executor.shutdown();
  });
});
