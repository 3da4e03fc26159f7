import { describe, expect, it } from "vitest";
import { BadRequestError } from "../../src/engine/errors.ts";
import type { PrewarmEntry } from "../../src/engine/settings.ts";
import { deferred } from "../fakes/fake-backend.ts";
import { fakeExecutor, flush } from "../support/fake-executor.ts";

const warmEcho = (count = 1, cpu = 1): PrewarmEntry => ({
  intent: { image: "echo:1", cpu, mem: 64 },
  count,
});
const ready = (ex: Awaited<ReturnType<typeof fakeExecutor>>["executor"]) =>
  ex.tasks().filter((t) => t.state === "ready");

describe("prewarm", () => {
  it("starts each entry's replicas at start-up; the first request is served by one, with no start after it came", async () => {
    const { executor, backend } = await fakeExecutor({ settings: { prewarm: [warmEcho(2)] } });
    await flush();
    expect(ready(executor)).toHaveLength(2);
    expect(executor.tasks().every((t) => t.prewarmed)).toBe(true);
    const created = backend.created.length;
    expect(await executor.execute({ image: "echo:1", cpu: 1, mem: 64 }, "first")).toBe("first");
    expect(backend.created).toHaveLength(created);
    expect(executor.metrics.prewarmHits.value).toBe(1);
    expect(executor.metrics.prewarmStarts.value).toBe(2);
    // Another key is not prewarmed, and its requests are no hits, warm ones included.
    await executor.execute({ image: "echo:1", cpu: 2, mem: 64 }, "other");
    await executor.execute({ image: "echo:1", cpu: 2, mem: 64 }, "other, warm");
    expect(executor.tasks().find((t) => t.cpu === 2)?.prewarmed).toBe(false);
    expect(executor.metrics.prewarmHits.value).toBe(1);
    await executor.shutdown();
  });

  it("holds its replicas past the idle timeout, within the count; others go as before", async () => {
    const { executor, clock } = await fakeExecutor({
      settings: { idleTimeoutMinutes: 0.5, prewarm: [warmEcho(1)], taskConcurrency: 1 },
    });
    await flush();
    // Two at once: the second request gets a second replica of the prewarmed key.
    await Promise.all([
      executor.execute({ image: "echo:1", cpu: 1, mem: 64 }, "a"),
      executor.execute({ image: "echo:1", cpu: 1, mem: 64 }, "b"),
    ]);
    await executor.execute({ image: "echo:1", cpu: 0.5, mem: 64 }, "c");
    expect(executor.tasks()).toHaveLength(3);
    clock.advance(40_000);
    await flush();
    expect(executor.tasks().map((t) => [t.cpu, t.prewarmed])).toEqual([[1, true]]);
    await executor.shutdown();
  });

  it("demand wins: a shortage evicts a prewarmed replica like an idle one, and prewarm starts it again once there is room", async () => {
    const { executor, clock } = await fakeExecutor({
      settings: { cpu: 1, idleTimeoutMinutes: 0.5, prewarm: [warmEcho(1)] },
    });
    await flush();
    expect(ready(executor).map((t) => t.cpu)).toEqual([1]);
    expect(await executor.execute({ image: "echo:1", cpu: 0.8, mem: 64 }, "needs room")).toBe(
      "needs room",
    );
    expect(executor.tasks().map((t) => t.cpu)).toEqual([0.8]);
    expect(executor.metrics.evictions.value).toBe(1);
    clock.advance(40_000); // the other key idles out
    await flush();
    expect(ready(executor).map((t) => [t.cpu, t.prewarmed])).toEqual([[1, true]]);
    expect(executor.ledger.used().cpuTenths).toBe(10);
    await executor.shutdown();
  });

  it("never takes room while a request waits in line for capacity, and starts once the line is empty", async () => {
    const slow = deferred<{ status: number; body: string }>();
    const { executor, backend } = await fakeExecutor({
      settings: { cpu: 2, prewarm: [] },
      images: { "slow:1": { respond: () => slow.promise } },
    });
    const busy = executor.execute({ image: "slow:1", cpu: 1, mem: 64 }, "busy");
    await flush();
    const waiting = executor.execute({ image: "echo:1", cpu: 1.5, mem: 64 }, "waits");
    await flush();
    expect(executor.queueLength).toBe(1);
    await executor.updateConfig({
      prewarm: [{ intent: { image: "echo:1", cpu: 0.5, mem: 32 }, count: 1 }],
    });
    await flush();
    const prewarmed = () => backend.created.filter((s) => s.memoryBytes === 32 * 2 ** 20).length;
    expect(prewarmed()).toBe(0); // 0.5 of the 1 free core would fit, but a request is in line
    slow.resolve({ status: 200, body: "busy" });
    expect(await busy).toBe("busy");
    expect(await waiting).toBe("waits");
    await flush();
    expect(prewarmed()).toBe(1);
    await executor.shutdown();
  });

  it("pause removes prewarmed replicas with the rest, unpause brings them back", async () => {
    const { executor } = await fakeExecutor({ settings: { prewarm: [warmEcho(1)] } });
    await flush();
    await executor.pause();
    expect(executor.tasks()).toEqual([]);
    executor.unpause();
    await flush();
    expect(ready(executor).map((t) => t.prewarmed)).toEqual([true]);
    await executor.shutdown();
  });

  it("update-config changes the list live, and refuses an entry that cannot be served, naming it, changing nothing", async () => {
    const { executor } = await fakeExecutor({ settings: { prewarm: [] } });
    const r = await executor.updateConfig({
      prewarm: [warmEcho(1), { intent: { image: "echo:1", cpu: 0.5, mem: 32 }, count: 1 }],
    });
    expect(Object.keys(r.changed)).toEqual(["prewarm"]);
    await flush();
    expect(ready(executor)).toHaveLength(2);
    const e = await executor
      .updateConfig({
        cpu: 2,
        prewarm: [warmEcho(1), { intent: { image: "echo:1", cpu: 3 }, count: 1 }],
      })
      .catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BadRequestError);
    expect((e as Error).message).toBe(
      'prewarm[1] ("echo:1"): Field "resource.cpu" asks for 3 cores but tasks may use at most 2 on this host',
    );
    expect(executor.settings.cpu).toBe(4);
    expect(executor.settings.prewarm).toHaveLength(2);
    // An entry off the list loses its hold: its replica idles out like any other.
    await executor.updateConfig({ prewarm: [warmEcho(1)] });
    expect(
      executor
        .tasks()
        .filter((t) => t.prewarmed)
        .map((t) => t.cpu),
    ).toEqual([1]);
    await executor.shutdown();
  });

  it("refuses at start-up an entry that can never fit, or an image outside allowed_images, naming the entry", async () => {
    await expect(fakeExecutor({ settings: { cpu: 1, prewarm: [warmEcho(1, 2)] } })).rejects.toThrow(
      'prewarm[0] ("echo:1"): Field "resource.cpu" asks for 2 cores but tasks may use at most 1',
    );
    await expect(
      fakeExecutor({ settings: { allowedImages: ["other:*"], prewarm: [warmEcho(1)] } }),
    ).rejects.toThrow('prewarm[0] ("echo:1"): Image "echo:1" is not in allowed_images');
  });

  it("a start that fails is retried with a backoff that doubles, never in a tight loop, and other keys are served meanwhile", async () => {
    const { executor, backend, clock, logger } = await fakeExecutor({
      settings: { prewarm: [{ intent: { image: "crash:1", cpu: 1, mem: 64 }, count: 1 }] },
      images: { "crash:1": { ready: { exitCode: 3, lines: ["fatal: cannot open model file"] } } },
    });
    const starts = () => backend.created.filter((s) => s.image === "crash:1").length;
    await flush();
    expect(starts()).toBe(1);
    for (let s = 0; s < 20; s++) {
      clock.advance(1_000);
      await flush();
    }
    // 20 s: tries at 0, 1, 3, 7 and 15 s (1, 2, 4, 8 s apart), not one a tick.
    expect(starts()).toBe(5);
    expect(
      logger.records.some(
        (r) =>
          r.msg.includes("Prewarm start failed") &&
          String(r.fields.error).includes("cannot open model file"),
      ),
    ).toBe(true);
    expect(await executor.execute({ image: "echo:1", cpu: 1, mem: 64 }, "served")).toBe("served");
    expect(executor.ledger.used().cpuTenths).toBe(10);
    await executor.shutdown();
  });
});
