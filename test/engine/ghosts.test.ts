/** Nobody waits for a ghost: requests whose clients left hold nothing and delay no one. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { deferred } from "../fakes/fake-backend.ts";
import { fakeExecutor, flush } from "../support/fake-executor.ts";

type Answer = { status: number; body: string };

describe("ghost requests", () => {
  it("a queued start whose requester left is dropped: the next request is not held behind it", async () => {
    const slow = deferred<Answer>();
    const { executor, backend, clock } = await fakeExecutor({
      settings: { cpu: 1, queueTimeoutMs: 30_000 },
      images: { "slow:1": { respond: () => slow.promise } },
    });
    const busy = executor.execute({ image: "slow:1", cpu: 1, mem: 64 }, "y");
    await flush();
    // Three clients with distinct keys hang up at once.
    for (const cpu of [0.5, 0.6, 0.7]) {
      const ac = new AbortController();
      const r = executor.execute({ image: "echo:1", cpu, mem: 64 }, "ghost", { signal: ac.signal });
      r.catch(() => {});
      ac.abort(new Error("client left"));
    }
    await flush();
    expect(executor.queueLength).toBe(0);
    slow.resolve({ status: 200, body: "y" });
    await busy;
    // An ordinary request goes at once: no clock step, no ghost start before it.
    const before = clock.now();
    expect(await executor.execute({ image: "echo:1", cpu: 1, mem: 64 }, "real")).toBe("real");
    expect(clock.now()).toBe(before);
    expect(backend.created.map((c) => c.nanoCpus)).toEqual([1e9, 1e9]);
  });

  it("a replica that becomes ready with no one waiting runs the line again: a waiter evicts it at once", async () => {
    const { executor, backend } = await fakeExecutor({ settings: { cpu: 1 } });
    const hold = deferred();
    backend.before("start", () => hold.promise, { once: true });
    const ac = new AbortController();
    const ghost = executor.execute({ image: "echo:1", cpu: 1, mem: 64 }, "ghost", {
      signal: ac.signal,
    });
    ghost.catch(() => {});
    await flush();
    ac.abort(new Error("client left"));
    const real = executor.execute({ image: "echo:1", cpu: 0.5, mem: 64 }, "real"); // other key, waits for capacity
    await flush();
    expect(executor.queueLength).toBe(1);
    hold.resolve(); // the ghost's replica is ready, idle: the waiter evicts it
    expect(await real).toBe("real");
    expect(executor.tasks().map((t) => t.cpu)).toEqual([0.5]);
  });

  it("abandoned requests never delay the ones that stay (property)", async () => {
    type Req = {
      image: "echo:1" | "slow:1";
      cpu: number;
      abandon: "no" | "at-once" | "after-step";
    };
    type Step = { kind: "send"; req: Req } | { kind: "release" } | { kind: "advance" };
    const step: fc.Arbitrary<Step> = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({
          kind: fc.constant("send" as const),
          req: fc.record({
            image: fc.constantFrom("echo:1" as const, "slow:1" as const),
            cpu: fc.integer({ min: 2, max: 10 }).map((t) => t / 10),
            abandon: fc.constantFrom("no" as const, "at-once" as const, "after-step" as const),
          }),
        }),
      },
      { weight: 1, arbitrary: fc.constant({ kind: "release" as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: "advance" as const }) },
    );

    /** Runs the steps; with `ghosts` false, abandoned requests are never sent. Each kept request's outcome and the step it settled at. */
    async function play(steps: Step[], ghosts: boolean) {
      let slow = deferred<Answer>();
      const { executor, clock } = await fakeExecutor({
        settings: {
          cpu: 1,
          queueTimeoutMs: 2_000,
          requestTimeoutMs: 600_000,
          idleTimeoutMinutes: 10,
        },
        images: { "slow:1": { respond: () => slow.promise } },
      });
      const kept: { outcome?: string; at?: number }[] = [];
      const later: AbortController[] = [];
      let at = 0;
      const settleAll = async () => {
        await flush(4);
      };
      for (const s of steps) {
        at++;
        for (const ac of later.splice(0)) ac.abort(new Error("client left"));
        if (s.kind === "send") {
          if (s.req.abandon !== "no") {
            if (!ghosts) continue;
            const ac = new AbortController();
            executor
              .execute({ image: s.req.image, cpu: s.req.cpu, mem: 64 }, "g", { signal: ac.signal })
              .catch(() => {});
            if (s.req.abandon === "at-once") ac.abort(new Error("client left"));
            else later.push(ac);
          } else {
            const k: { outcome?: string; at?: number } = {};
            kept.push(k);
            executor.execute({ image: s.req.image, cpu: s.req.cpu, mem: 64 }, "k").then(
              (r) => Object.assign(k, { outcome: r, at }),
              (e) => Object.assign(k, { outcome: e.code, at }),
            );
          }
        } else if (s.kind === "release") {
          slow.resolve({ status: 200, body: "k" });
          slow = deferred();
        } else clock.advance(1_000);
        await settleAll();
      }
      for (let i = 0; i < 8; i++) {
        at++;
        for (const ac of later.splice(0)) ac.abort(new Error("client left"));
        slow.resolve({ status: 200, body: "k" });
        slow = deferred();
        clock.advance(1_000);
        await settleAll();
      }
      await executor.pause();
      return kept;
    }

    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), async (steps) => {
        const without = await play(steps, false);
        const withGhosts = await play(steps, true);
        withGhosts.forEach((w, i) => {
          const b = without[i]!;
          // Served, and no later: a ghost may leave a warm replica behind, never a delay.
          if (b.outcome === "k") {
            expect(w.outcome).toBe("k");
            expect(w.at!).toBeLessThanOrEqual(b.at!);
          }
        });
      }),
      { numRuns: 40 },
    );
  }, 120_000);
});
