import { describe, expect, it } from "vitest";
import { DiskLowError, TaskConnectError, TaskDiskExceededError } from "../../src/engine/errors.ts";
import { deferred } from "../fakes/fake-backend.ts";
import { FakeDisk } from "../fakes/fake-disk.ts";
import { fakeExecutor, flush } from "../support/fake-executor.ts";

const MB = 1024 * 1024;
const intent = (cpu: number, image = "echo:1") => ({ image, cpu, mem: 64 });

describe("the disk bound held by the executor (DiskGuard)", () => {
  it("removes a task over task_disk_mb at the next check: its in-flight request gets 507 naming the bound, the ledger gets its share back", async () => {
    const disk = new FakeDisk();
    const slow = deferred<{ status: number; body: string }>();
    const { executor, clock, logger } = await fakeExecutor({
      disk,
      settings: { taskDiskMB: 100, diskCheckIntervalMs: 1_000 },
      images: { "slow:1": { respond: () => slow.promise } },
    });
    await executor.execute(intent(1), "warm"); // another task, under its bound
    const busy = executor.execute(intent(1, "slow:1"), "x");
    busy.catch(() => undefined);
    await flush();
    const [echo, filler] = [
      executor.tasks().find((t) => t.image === "echo:1")!,
      executor.tasks().find((t) => t.image === "slow:1")!,
    ];
    disk.layers.set(echo.container_id!, 99 * MB);
    disk.layers.set(filler.container_id!, 101 * MB);
    clock.advance(1_000);
    await flush();
    expect(executor.tasks().map((t) => t.image)).toEqual(["echo:1"]);
    // Its container goes, and with it the connection of the request it was serving.
    slow.reject(new TaskConnectError("socket hang up"));
    const error = await busy.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TaskDiskExceededError);
    expect((error as TaskDiskExceededError).kind).toBe("insufficient_storage");
    expect((error as TaskDiskExceededError).code).toBe("TASK_DISK_EXCEEDED");
    expect((error as Error).message).toContain("task_disk_mb (100 MB)");
    expect((error as Error).message).toContain("101 MB");
    expect(executor.tasks().map((t) => t.image)).toEqual(["echo:1"]);
    expect(executor.tasks()[0]!.disk_mb).toBe(99);
    expect(executor.ledger.used().cpuTenths).toBe(10);
    expect(executor.metrics.diskExceeded.value).toBe(1);
    expect(
      logger.records.some(
        (r) => r.level === "warn" && r.msg.includes("task_disk_mb") && r.fields.boundMB === 100,
      ),
    ).toBe(true);
    // The one under the bound still serves.
    expect(await executor.execute(intent(1), "again")).toBe("again");
    await executor.shutdown();
  });

  it("a task exactly at its bound stays; the checks go on at the interval", async () => {
    const disk = new FakeDisk();
    const { executor, clock, logger } = await fakeExecutor({
      disk,
      settings: { taskDiskMB: 10, diskCheckIntervalMs: 500 },
    });
    await executor.execute(intent(1), "a");
    const id = executor.tasks()[0]!.container_id!;
    disk.layers.set(id, 10 * MB);
    clock.advance(500);
    await flush();
    expect(executor.tasks()).toHaveLength(1);
    const reads = disk.reads;
    clock.advance(500);
    await flush();
    expect(disk.reads).toBeGreaterThan(reads);
    disk.layers.set(id, 10 * MB + 1);
    clock.advance(500);
    await flush();
    expect(executor.tasks()).toHaveLength(0);
    // Just past the bound reads as past it, never as "wrote 10 MB, more than 10 MB".
    expect(logger.records.find((r) => r.msg.includes("task_disk_mb"))?.fields.usedMB).toBe(11);
    await executor.shutdown();
  });

  it("a layer slow to measure is measured less often, within the guard's share of a core, and never holds up another task's check", async () => {
    const disk = new FakeDisk();
    const { executor, clock } = await fakeExecutor({
      disk,
      settings: { taskDiskMB: 100, diskCheckIntervalMs: 500, cpu: 4 },
      images: { "many:1": {}, "writer:1": {} },
    });
    await executor.execute(intent(1, "many:1"), "a");
    await executor.execute(intent(1, "writer:1"), "b");
    const [heavy, light] = ["many:1", "writer:1"].map(
      (image) => executor.tasks().find((t) => t.image === image)!.container_id!,
    );
    let walked!: () => void;
    disk.hold.set(heavy!, new Promise<void>((r) => (walked = r)));
    disk.layers.set(heavy!, 50 * MB);
    disk.costs.set(heavy!, 1_000);
    disk.layers.set(light!, 10 * MB);
    clock.advance(500);
    await flush();
    // The heavy walk is under way; the light task is measured again at each interval regardless.
    clock.advance(500);
    await flush();
    expect([disk.readsOf.get(heavy!), disk.readsOf.get(light!)]).toEqual([1, 2]);
    expect(disk.stops.every((s) => s === 100 * MB)).toBe(true);
    disk.layers.set(light!, 101 * MB);
    clock.advance(500);
    await flush();
    expect(executor.tasks().map((t) => t.image)).toEqual(["many:1"]);
    // The heavy walk took 1 s of work with 2 tasks to measure: the next comes 1 s x 2 / 0.05 = 40 s after its start.
    walked();
    await flush();
    expect(executor.tasks()[0]!.disk_mb).toBe(50);
    disk.hold.delete(heavy!);
    for (let t = 0; t < 38_000; t += 500) {
      clock.advance(500);
      await flush();
    }
    expect(disk.readsOf.get(heavy!)).toBe(1);
    clock.advance(1_000);
    await flush();
    expect(disk.readsOf.get(heavy!)).toBe(2);
    await executor.shutdown();
  });

  it("reads nothing where the engine holds the bound, or where there is none", async () => {
    for (const [engine, taskDiskMB] of [
      [true, 100],
      [false, 0],
    ] as const) {
      const disk = new FakeDisk();
      disk.engine = engine;
      const { executor, clock } = await fakeExecutor({
        disk,
        settings: { taskDiskMB, diskCheckIntervalMs: 1_000 },
      });
      await executor.execute(intent(1), "a");
      disk.layers.set(executor.tasks()[0]!.container_id!, 10_000 * MB);
      clock.advance(5_000);
      await flush();
      expect(disk.reads).toBe(0);
      expect(executor.tasks()).toHaveLength(1);
      expect(executor.diskStatus().held_by).toBe(engine ? "engine" : "none");
      expect(executor.tasks()[0]!.disk_mb).toBeNull();
      await executor.shutdown();
    }
  });

  it("says who holds the bound", async () => {
    const { executor } = await fakeExecutor({
      disk: new FakeDisk(),
      settings: { taskDiskMB: 1024, diskCheckIntervalMs: 2_000, minFreeDiskMB: 2048 },
    });
    expect(executor.diskStatus()).toEqual({
      task_disk_mb: 1024,
      held_by: "executor",
      check_interval_s: 2,
      min_free_disk_mb: 2048,
    });
    await executor.shutdown();
  });
});

describe("min_free_disk_mb", () => {
  it("refuses a new start with 503 DISK_LOW and the figure while the data root is short; a warm task still serves; the ledger stays balanced", async () => {
    const disk = new FakeDisk();
    const { executor } = await fakeExecutor({ disk, settings: { minFreeDiskMB: 2048 } });
    await executor.execute(intent(1), "warm");
    disk.free = 2047;
    const error = await executor.execute(intent(2), "cold").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DiskLowError);
    expect((error as DiskLowError).kind).toBe("unavailable");
    expect((error as DiskLowError).code).toBe("DISK_LOW");
    expect((error as Error).message).toContain(
      "2047 MB free, less than min_free_disk_mb (2048 MB)",
    );
    expect(executor.metrics.diskLow.value).toBe(1);
    expect(executor.ledger.used().cpuTenths).toBe(10);
    expect(await executor.execute(intent(1), "still")).toBe("still");
    // Room again, or a data root it cannot see: starts go on.
    disk.free = undefined;
    expect(await executor.execute(intent(2), "cold")).toBe("cold");
    await executor.shutdown();
  });
});
