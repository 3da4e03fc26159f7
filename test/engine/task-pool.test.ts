import { describe, expect, it } from "vitest";
import { Ledger } from "../../src/engine/ledger.ts";
import { TaskPool } from "../../src/engine/task-pool.ts";
import type { TaskSpec } from "../../src/engine/task-spec.ts";
import { FakeBackend } from "../fakes/fake-backend.ts";
import { FakeClock } from "../fakes/fake-clock.ts";
import { memoryLogger } from "../fakes/fake-logger.ts";
import { FakeTaskClient } from "../fakes/fake-task-client.ts";
import { BASE_SETTINGS } from "../support/fake-executor.ts";
import { DockerTasks } from "../../src/platform/docker/docker-tasks.ts";

const spec: TaskSpec = {
  image: "echo:1",
  runtimeKind: "container",
  cpuTenths: 10,
  memMB: 128,
  gpuCount: 0,
  sgx: false,
};

function pool() {
  const backend = new FakeBackend({ images: { "echo:1": {} } });
  const ledger = new Ledger({ cpuTenths: 40, memMB: 4096, gpus: [] });
  const clock = new FakeClock();
  const logger = memoryLogger();
  const p = new TaskPool({
    runtime: new DockerTasks({ backend, clock, logger, settings: BASE_SETTINGS }),
    client: new FakeTaskClient(backend),
    clock,
    logger,
    ledger,
    settings: () => BASE_SETTINGS,
  });
  return { p, backend, ledger };
}

describe("TaskPool", () => {
  it("keeps replicas per key and returns a reservation the moment a replica is removed", async () => {
    const { p, ledger, backend } = pool();
    const a = p.add("k", spec, ledger.tryReserve({ cpuTenths: 10, memMB: 128, gpuCount: 0 })!);
    const b = p.add("k", spec, ledger.tryReserve({ cpuTenths: 10, memMB: 128, gpuCount: 0 })!);
    expect(await p.launch(a)).toEqual({ kind: "ready" });
    expect(await p.launch(b)).toEqual({ kind: "ready" });
    expect(p.replicas("k").map((t) => t.state.kind)).toEqual(["ready", "ready"]);
    const r = p.remove(a, "idle timeout");
    expect(r.outcome).toBe("removing");
    expect(ledger.used().cpuTenths).toBe(10);
    expect(p.replicas("k")).toEqual([b]);
    await r.done;
    expect(a.state).toEqual({ kind: "gone", reason: "idle timeout" });
    expect(backend.containers()).toHaveLength(1);
  });

  it("removing a replica that is already leaving is an explicit outcome that changes nothing", async () => {
    const { p, ledger } = pool();
    const a = p.add("k", spec, ledger.tryReserve({ cpuTenths: 10, memMB: 128, gpuCount: 0 })!);
    await p.launch(a);
    const first = p.remove(a, "evicted");
    expect(p.remove(a, "idle timeout")).toMatchObject({ outcome: "already_leaving" });
    await first.done;
    expect(p.remove(a, "again")).toMatchObject({ outcome: "already_leaving" });
    expect(a.state).toEqual({ kind: "gone", reason: "evicted" });
    expect(ledger.reservations).toBe(0);
  });

  it("a replica removed while its container is being created: the launch says so and the container goes", async () => {
    const { p, ledger, backend } = pool();
    const a = p.add("k", spec, ledger.tryReserve({ cpuTenths: 10, memMB: 128, gpuCount: 0 })!);
    backend.before("create", () => void p.remove(a, "paused"), { once: true });
    expect(await p.launch(a)).toEqual({ kind: "removed" });
    expect(backend.containers()).toEqual([]);
    expect(ledger.reservations).toBe(0);
  });

  it("a failed start says why, returns the reservation and removes the container", async () => {
    const { p, ledger, backend } = pool();
    const a = p.add("k", spec, ledger.tryReserve({ cpuTenths: 10, memMB: 128, gpuCount: 0 })!);
    backend.before(
      "endpoint",
      () => {
        throw new Error("no port");
      },
      { once: true },
    );
    const out = await p.launch(a);
    expect(out).toMatchObject({ kind: "failed", error: { code: "TASK_START_FAILED" } });
    expect(a.state.kind).toBe("failed");
    expect(ledger.reservations).toBe(0);
    expect(backend.containers()).toEqual([]);
  });
});
