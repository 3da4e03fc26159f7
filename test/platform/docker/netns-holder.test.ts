/**
 * Spare networks with their namespace held (docs/architecture.md, "Spare networks and their
 * holders"): the holder's program and image, and on the fake engine how spares get holders, tasks
 * join their namespace, and holders go with their network, at stop and at the next start.
 */
import { spawn } from "node:child_process";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LABELS } from "../../../src/platform/docker/labels.ts";
import {
  HOLDER_CHANGES,
  HOLDER_IMAGE,
  holderProgram,
  holderTar,
  ustar,
} from "../../../src/platform/docker/netns-holder.ts";
import { FakeBackend } from "../../fakes/fake-backend.ts";
import { fakeExecutor, flush } from "../../support/fake-executor.ts";
import { scratchDir } from "../../support/scratch.ts";
import { until } from "../../support/until.ts";

const isolated = { isolate: true, taskSubnetPool: "10.201.0.0/24" };
const holders = (b: FakeBackend) => b.containers().filter((c) => c.spec.image === HOLDER_IMAGE);
const tasks = (b: FakeBackend) => b.containers().filter((c) => c.spec.image !== HOLDER_IMAGE);

describe("the holder's program and image", () => {
  it("is a 129-byte static x86-64 ELF executable whose entry is its code", () => {
    const elf = holderProgram();
    const v = new DataView(elf.buffer);
    expect(elf.length).toBe(129);
    expect([...elf.subarray(0, 4)]).toEqual([0x7f, 0x45, 0x4c, 0x46]);
    expect(v.getUint16(16, true)).toBe(2); // executable
    expect(v.getUint16(18, true)).toBe(0x3e); // x86-64
    expect(Number(v.getBigUint64(24, true))).toBe(0x400000 + 120);
    expect(Number(v.getBigUint64(96, true))).toBe(129);
    expect([...elf.subarray(120)]).toEqual([0xb8, 0x22, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7]);
  });

  it.runIf(process.platform === "linux" && process.arch === "x64")(
    "runs and sleeps until it is killed",
    async () => {
      const file = join(scratchDir("meca-holder-"), "hold");
      writeFileSync(file, holderProgram());
      chmodSync(file, 0o755);
      const child = spawn(file, { stdio: "ignore" });
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        child.on("exit", (_code, signal) => resolve(signal)),
      );
      // Asleep in the kernel (state S), not spinning and not gone.
      await until(
        () => readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1]?.startsWith("S"),
        "the holder asleep",
      );
      child.kill("SIGKILL");
      expect(await exited).toBe("SIGKILL");
    },
  );

  it("the image's layer is a ustar of /hold (mode 755, owned by root) with a valid checksum; tagged by the program's hash", () => {
    const tar = holderTar();
    const header = tar.subarray(0, 512);
    const text = (at: number, len: number) =>
      new TextDecoder().decode(header.subarray(at, at + len)).replace(/\0.*$/s, "");
    expect(text(0, 100)).toBe("hold");
    expect(parseInt(text(100, 8), 8)).toBe(0o755);
    expect(parseInt(text(108, 8), 8)).toBe(0);
    expect(parseInt(text(124, 12), 8)).toBe(129);
    expect(text(257, 6)).toBe("ustar");
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
    expect(parseInt(text(148, 8), 8)).toBe(sum);
    expect([...tar.subarray(512, 512 + 129)]).toEqual([...holderProgram()]);
    expect(tar.length).toBe(512 * 4); // header, one block of data, two empty blocks
    expect(ustar("x", new Uint8Array(513), 0o644).length).toBe(512 * 5);
    expect(HOLDER_IMAGE).toMatch(/^meca-executor\/netns-holder:[0-9a-f]{8}$/);
  });
});

describe("spares with holders, on the fake engine", () => {
  it("each spare gets a holder (image imported once); a task joins its namespace and is called at the holder's address, with no lookup of its own", async () => {
    const { executor, backend } = await fakeExecutor({ settings: isolated, machine: "x86_64" });
    await until(() => holders(backend).filter((h) => h.running).length === 2, "two holders");
    expect([...backend.imported.keys()]).toEqual([HOLDER_IMAGE]);
    expect(backend.imported.get(HOLDER_IMAGE)!.changes).toEqual(HOLDER_CHANGES);
    const h = holders(backend)[0]!.spec;
    expect(h).toMatchObject({
      runtime: "runc",
      capDrop: ["ALL"],
      readOnlyRoot: true,
      user: "65534:65534",
      securityOpt: ["no-new-privileges:true"],
      labels: {
        [LABELS.managed]: "1",
        [LABELS.holderOf]: "unit",
        [LABELS.holds]: h.network,
      },
    });
    expect(h.labels[LABELS.instance]).toBeUndefined(); // never listed or adopted as a task
    expect(await executor.execute({ image: "echo:1", cpu: 1, mem: 128 }, "a")).toBe("a");
    const [task] = tasks(backend);
    const holder = holders(backend).find((c) => c.id === task!.spec.sharesNetworkOf)!;
    expect(holder.running).toBe(true);
    expect(task!.spec.network).toBeUndefined();
    expect(backend.calls.filter((c) => c.method === "endpoint" && c.args[0] === task!.id)).toEqual(
      [],
    );
    // The spare it took is replaced after its start: two spare holders and the task's.
    await until(() => holders(backend).filter((c) => c.running).length === 3, "spare replaced");
    expect(await executor.execute({ image: "echo:1", cpu: 1, mem: 128 }, "b")).toBe("b");

    await executor.shutdown();
    expect(backend.containers()).toEqual([]);
    expect(backend.networks()).toEqual([]);
  });

  it("a removed task's holder goes before its network; the block is free again", async () => {
    const { executor, backend } = await fakeExecutor({ settings: isolated, machine: "x86_64" });
    await until(() => holders(backend).filter((h) => h.running).length === 2, "two holders");
    await executor.execute({ image: "echo:1", cpu: 1, mem: 128 }, "a");
    const [task] = tasks(backend);
    const holderId = task!.spec.sharesNetworkOf!;
    const netName = holders(backend).find((h) => h.id === holderId)!.spec.network;
    const from = backend.calls.length;
    await executor.pause();
    const after = backend.calls.slice(from);
    const removedHolder = after.findIndex((c) => c.method === "remove" && c.args[0] === holderId);
    const removedNet = after.findIndex((c) => c.method === "removeNetwork");
    expect(removedHolder).toBeGreaterThanOrEqual(0);
    expect(removedNet).toBeGreaterThan(removedHolder);
    expect(backend.networks().some((n) => n.name === netName)).toBe(false);
    await executor.shutdown();
  });

  it("a microVM task takes a spare too but joins the network itself; the holder stays beside it", async () => {
    const { executor, backend } = await fakeExecutor({
      settings: { ...isolated, microVMRuntime: "runsc" },
      machine: "x86_64",
    });
    await until(() => holders(backend).filter((h) => h.running).length === 2, "two holders");
    const spareNets = holders(backend).map((h) => h.spec.network);
    expect(await executor.execute({ image: "echo:1", runtime: "microVM" }, "vm")).toBe("vm");
    const [task] = tasks(backend);
    expect(task!.spec.sharesNetworkOf).toBeUndefined();
    expect(task!.spec.runtime).toBe("runsc");
    expect(spareNets).toContain(task!.spec.network);
    await executor.shutdown();
    expect(backend.containers()).toEqual([]);
  });

  it("a holder found gone: the task joins the network itself, and the holder's leftover is removed", async () => {
    const { executor, backend, logger } = await fakeExecutor({
      settings: { ...isolated, taskNetworkSpares: 1 },
      machine: "x86_64",
    });
    await until(() => holders(backend).some((h) => h.running), "a holder");
    const [h] = holders(backend);
    backend.kill(h!.id);
    expect(await executor.execute({ image: "echo:1" }, "x")).toBe("x");
    const [task] = tasks(backend);
    expect(task!.spec.sharesNetworkOf).toBeUndefined();
    expect(task!.spec.network).toBe(h!.spec.network);
    expect(backend.container(h!.id)).toBeUndefined();
    expect(logger.records.some((r) => r.msg.includes("holder is gone"))).toBe(true);
    await executor.shutdown();
    expect(backend.containers()).toEqual([]);
    expect(backend.networks()).toEqual([]);
  });

  it("holders that fail three times in a row: spares go without them from then on, said once", async () => {
    const backend = new FakeBackend({ images: { "echo:1": {} }, machine: "x86_64" });
    backend.before("start", (id) => {
      if (backend.container(id as string)?.spec.image === HOLDER_IMAGE)
        throw new Error("exec format error");
    });
    const { executor, logger } = await fakeExecutor({
      backend,
      settings: { ...isolated, taskNetworkSpares: 2 },
    });
    for (const key of [1, 2, 3, 4]) await executor.execute({ image: "echo:1", cpu: key / 10 }, "x");
    await until(
      () => logger.records.some((r) => r.msg.includes("spares go without holders from now on")),
      "holders given up",
    );
    await flush(20);
    const holderCreates = backend.created.filter((s) => s.image === HOLDER_IMAGE).length;
    expect(holderCreates).toBe(3);
    expect(holders(backend)).toEqual([]); // each failed one removed
    expect(tasks(backend).every((t) => t.spec.sharesNetworkOf === undefined)).toBe(true);
    await executor.shutdown();
    expect(backend.containers()).toEqual([]);
    expect(backend.networks()).toEqual([]);
  });

  it("a holder image removed behind the executor's back is made again for the next spare", async () => {
    const { executor, backend } = await fakeExecutor({
      settings: { ...isolated, taskNetworkSpares: 1 },
      machine: "x86_64",
    });
    await until(() => holders(backend).some((h) => h.running), "a holder");
    backend.removeImage(HOLDER_IMAGE);
    await executor.execute({ image: "echo:1", cpu: 0.1 }, "a"); // its spare's replacement fails
    await until(() => backend.networks().length === 2, "a spare without a holder");
    await executor.execute({ image: "echo:1", cpu: 0.2 }, "b"); // takes it; the next is held again
    await until(
      () => backend.calls.filter((c) => c.method === "importImage").length === 2,
      "the image made again",
    );
    await until(() => holders(backend).filter((h) => h.running).length === 2, "a held spare");
    await executor.shutdown();
    expect(backend.containers()).toEqual([]);
  });

  it("an engine on another machine: no image made, no holder, the reason said once", async () => {
    const { executor, backend, logger } = await fakeExecutor({
      settings: isolated,
      machine: "aarch64",
    });
    await until(() => backend.networks().length === 2, "two spares");
    expect(await executor.execute({ image: "echo:1" }, "x")).toBe("x");
    expect(backend.imported.size).toBe(0);
    expect(holders(backend)).toEqual([]);
    const said = logger.records.filter((r) => r.msg.startsWith("Spare task networks go without"));
    expect(said).toHaveLength(1);
    expect(String(said[0]!.fields.reason)).toContain("aarch64");
    await executor.shutdown();
  });

  it("a restart adopts tasks in a holder's namespace with their holders, and removes the earlier run's spare holders", async () => {
    const a = await fakeExecutor({
      settings: { ...isolated, keepTasksOnStop: true },
      machine: "x86_64",
    });
    await until(() => holders(a.backend).filter((h) => h.running).length === 2, "two holders");
    for (const tenths of [5, 10])
      await a.executor.execute({ image: "echo:1", cpu: tenths / 10, mem: 64 }, "warm");
    await until(() => holders(a.backend).filter((h) => h.running).length === 4, "spares refilled");
    const kept = tasks(a.backend).map((t) => t.spec.sharesNetworkOf!);
    expect(kept.every((id) => id !== undefined)).toBe(true);
    expect(await a.executor.shutdown()).toBe(2);
    // Kept: the tasks and their holders; the spares' holders went at stop.
    expect(
      holders(a.backend)
        .map((h) => h.id)
        .sort(),
    ).toEqual([...kept].sort());

    const from = a.backend.calls.length;
    const b = await fakeExecutor({ backend: a.backend, settings: isolated });
    expect(b.executor.tasks().map((t) => t.state)).toEqual(["ready", "ready"]);
    for (const tenths of [5, 10])
      expect(
        await b.executor.execute({ image: "echo:1", cpu: tenths / 10, mem: 64 }, `again ${tenths}`),
      ).toBe(`again ${tenths}`);
    const since = b.backend.calls.slice(from);
    expect(
      since.filter(
        (c) => c.method === "create" && (c.args[0] as { image: string }).image !== HOLDER_IMAGE,
      ),
    ).toEqual([]);
    for (const id of kept) expect(b.backend.container(id)?.running).toBe(true);
    await b.executor.shutdown();
    expect(b.backend.containers()).toEqual([]);
    expect(b.backend.networks()).toEqual([]);
  });

  it("a restart adopts a microVM task beside its network's holder, and removes both with the task", async () => {
    const settings = { ...isolated, microVMRuntime: "runsc" };
    const a = await fakeExecutor({
      settings: { ...settings, keepTasksOnStop: true },
      machine: "x86_64",
    });
    await until(() => holders(a.backend).filter((h) => h.running).length === 2, "two holders");
    await a.executor.execute({ image: "echo:1", runtime: "microVM" }, "vm");
    expect(await a.executor.shutdown()).toBe(1);
    expect(holders(a.backend)).toHaveLength(1); // the microVM task's network's

    const b = await fakeExecutor({ backend: a.backend, settings });
    expect(b.executor.tasks().map((t) => t.state)).toEqual(["ready"]);
    expect(await b.executor.execute({ image: "echo:1", runtime: "microVM" }, "again")).toBe(
      "again",
    );
    await b.executor.shutdown();
    expect(b.backend.containers()).toEqual([]);
    expect(b.backend.networks()).toEqual([]);
  });

  it("the start-up sweep removes an earlier run's holders (a crash left them), then their networks", async () => {
    const a = await fakeExecutor({ settings: isolated, machine: "x86_64" });
    await until(() => holders(a.backend).filter((h) => h.running).length === 2, "two holders");
    const old = holders(a.backend).map((h) => h.id);
    // a crashed: nothing stopped. b on the same engine.
    const b = await fakeExecutor({ backend: a.backend, settings: isolated });
    await until(() => old.every((id) => !b.backend.container(id)), "earlier holders removed");
    await until(() => holders(b.backend).filter((h) => h.running).length === 2, "b's own spares");
    await b.executor.shutdown();
    expect(b.backend.containers()).toEqual([]);
    expect(b.backend.networks()).toEqual([]);
  });
});
