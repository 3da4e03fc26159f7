import { describe, expect, it } from "vitest";
import { ImageNotPresentError, ImagePullFailedError } from "../../src/engine/errors.ts";
import type { PullProgress } from "../../src/engine/ports.ts";
import { FakeBackend } from "../fakes/fake-backend.ts";
import { fakeExecutor, flush } from "../support/fake-executor.ts";

const intent = (image: string) => ({ image, cpu: 1, mem: 64 });
type PullOpts = { onProgress?: (p: PullProgress) => void; signal?: AbortSignal };

/** A pull that hangs until its signal aborts, sending progress only when the test says. */
function hangingPull(backend: FakeBackend) {
  const seen: { opts?: PullOpts } = {};
  backend.before("pullImage", (_ref, opts) => {
    seen.opts = opts as PullOpts;
    return new Promise<void>((_resolve, reject) => {
      const signal = seen.opts!.signal!;
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
  });
  return seen;
}

describe("image pulls (pull_policy, bounds, visibility)", () => {
  it("never: an absent image is IMAGE_NOT_PRESENT at once, naming it; nothing is pulled or reserved", async () => {
    const backend = new FakeBackend({ images: { "echo:1": {} }, pullable: { "built-here:1": {} } });
    const { executor } = await fakeExecutor({ backend, settings: { pullPolicy: "never" } });
    const error = await executor.execute(intent("built-here:1"), "x").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImageNotPresentError);
    expect((error as ImageNotPresentError).code).toBe("IMAGE_NOT_PRESENT");
    expect((error as Error).message).toContain('"built-here:1"');
    expect((error as Error).message).toContain("must be built or pulled on this host");
    expect(backend.calls.filter((c) => c.method === "pullImage")).toEqual([]);
    expect(await executor.execute(intent("echo:1"), "present")).toBe("present");
    expect(executor.ledger.used().cpuTenths).toBe(10);
    await executor.shutdown();
  });

  it("always: every cold start a request causes pulls first, one pull for all who wait; a warm task is never held up", async () => {
    const backend = new FakeBackend({ images: { "echo:1": {} }, pullable: { "echo:1": {} } });
    const { executor } = await fakeExecutor({ backend, settings: { pullPolicy: "always" } });
    expect(
      await Promise.all([
        executor.execute(intent("echo:1"), "a"),
        executor.execute(intent("echo:1"), "b"),
      ]),
    ).toEqual(["a", "b"]);
    expect(backend.calls.filter((c) => c.method === "pullImage")).toHaveLength(1);
    expect(await executor.execute(intent("echo:1"), "warm")).toBe("warm");
    expect(backend.calls.filter((c) => c.method === "pullImage")).toHaveLength(1);
    await executor.shutdown();
  });

  it("missing: a pull with no progress for pull_stall_timeout fails every waiter naming the bound, and the engine's pull is cancelled", async () => {
    const backend = new FakeBackend({ images: { "echo:1": {} }, pullable: { "slow:1": {} } });
    const { executor, clock } = await fakeExecutor({
      backend,
      settings: { pullStallTimeoutMs: 5_000, pullTimeoutMs: 60_000 },
    });
    const seen = hangingPull(backend);
    const waiters = [
      executor.execute(intent("slow:1"), "a"),
      executor.execute(intent("slow:1"), "b"),
    ].map((p) => p.catch((e: unknown) => e));
    await flush();
    expect(executor.pulls()).toMatchObject([{ image: "slow:1", waiting: 2, layers: 0 }]);
    // Progress keeps it alive past the stall bound.
    clock.advance(4_000);
    seen.opts!.onProgress!({
      line: "a: Downloading",
      layers: 2,
      layersDone: 1,
      bytesDone: 10,
      bytesTotal: 100,
    });
    clock.advance(4_000);
    await flush();
    expect(executor.pulls()).toMatchObject([
      { image: "slow:1", waiting: 2, layers: 2, layers_done: 1, bytes_done: 10, bytes_total: 100 },
    ]);
    // A warm key is served meanwhile, and the pull holds no reservation.
    expect(await executor.execute(intent("echo:1"), "served")).toBe("served");
    expect(executor.ledger.used().cpuTenths).toBe(10);
    clock.advance(1_000);
    await flush();
    const errors = await Promise.all(waiters);
    for (const e of errors) {
      expect(e).toBeInstanceOf(ImagePullFailedError);
      expect((e as Error).message).toContain("no progress for 5 s (pull_stall_timeout)");
    }
    expect(seen.opts!.signal!.aborted).toBe(true);
    expect(executor.pulls()).toEqual([]);
    expect(executor.ledger.used().cpuTenths).toBe(10);
    await executor.shutdown();
  });

  it("a pull that trickles progress ends at pull_timeout; a waiter that leaves leaves nothing reserved", async () => {
    const backend = new FakeBackend({ images: { "echo:1": {} }, pullable: { "trickle:1": {} } });
    const { executor, clock } = await fakeExecutor({
      backend,
      settings: { pullStallTimeoutMs: 5_000, pullTimeoutMs: 20_000 },
    });
    const seen = hangingPull(backend);
    const leaving = new AbortController();
    const left = executor
      .execute(intent("trickle:1"), "a", { signal: leaving.signal })
      .catch((e: unknown) => e);
    const stays = executor.execute(intent("trickle:1"), "b").catch((e: unknown) => e);
    await flush();
    leaving.abort(new Error("client gone"));
    expect(((await left) as Error).message).toBe("client gone");
    await flush();
    expect(executor.pulls()).toMatchObject([{ image: "trickle:1", waiting: 1 }]);
    expect(executor.ledger.used()).toEqual({ cpuTenths: 0, memMB: 0, gpus: [] });
    for (let t = 0; t < 20_000; t += 2_000) {
      seen.opts!.onProgress!({ layers: 1, layersDone: 0, bytesDone: t, bytesTotal: 100_000_000 });
      clock.advance(2_000);
      await flush();
    }
    const error = await stays;
    expect(error).toBeInstanceOf(ImagePullFailedError);
    expect((error as Error).message).toContain("not done within pull_timeout (20 s)");
    expect(seen.opts!.signal!.aborted).toBe(true);
    expect(executor.ledger.used()).toEqual({ cpuTenths: 0, memMB: 0, gpus: [] });
    await executor.shutdown();
  });
});
