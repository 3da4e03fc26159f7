/**
 * Ledger invariants over random interleavings of requests, failures,
 * container deaths, evictions, idle cleaning, pause and update-config at any
 * point (running or paused), with replicas off and on: reservations never
 * exceed the capacity (or, after it shrank below them, only go down), never go negative, always equal
 * what the pool's tasks hold, and return to zero when no task remains.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Executor } from "../../src/engine/executor.ts";
import { deferred } from "../fakes/fake-backend.ts";
import { fakeExecutor, fakeGpus, flush } from "../support/fake-executor.ts";

type Action =
  | {
      kind: "request";
      image: "echo:1" | "crash:1" | "slow:1" | "never:1";
      cpu: number;
      mem: number;
      gpus: number;
    }
  | { kind: "release" }
  | { kind: "kill"; index: number }
  | { kind: "advance"; ms: number }
  | { kind: "pause" }
  | { kind: "update"; cpu: number; mem: number; gpu: boolean }
  | { kind: "unpause" };

const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("request" as const),
      image: fc.constantFrom(
        "echo:1" as const,
        "crash:1" as const,
        "slow:1" as const,
        "never:1" as const,
      ),
      cpu: fc.integer({ min: 1, max: 12 }).map((t) => t / 10),
      mem: fc.integer({ min: 1, max: 8 }).map((m) => m * 64),
      gpus: fc.integer({ min: 0, max: 2 }),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: "release" as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("kill" as const), index: fc.nat(5) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("advance" as const),
      ms: fc.integer({ min: 100, max: 40_000 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "pause" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("update" as const),
      cpu: fc.integer({ min: 1, max: 20 }).map((t) => t / 10),
      mem: fc.integer({ min: 128, max: 2048 }),
      gpu: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "unpause" as const }) },
);

/**
 * What the reservations may reach: the capacity, or after it shrank below them, what they were
 * then. While above the capacity they may only go down (busy replicas finish, no start is admitted).
 */
interface Ceiling {
  cpuTenths: number;
  memMB: number;
  gpus: number;
}

function ceilingAfter(ex: Executor, c: Ceiling | undefined): Ceiling {
  const used = ex.ledger.used();
  const cap = ex.ledger.capacity;
  const lower = (x: number, cap: number, prev?: number) => Math.max(cap, Math.min(x, prev ?? x));
  return {
    cpuTenths: lower(used.cpuTenths, cap.cpuTenths, c?.cpuTenths),
    memMB: lower(used.memMB, cap.memMB, c?.memMB),
    gpus: lower(used.gpus.length, cap.gpus.length, c?.gpus),
  };
}

function checkInvariants(ex: Executor, ceiling: Ceiling): void {
  const used = ex.ledger.used();
  expect(used.cpuTenths).toBeGreaterThanOrEqual(0);
  expect(used.memMB).toBeGreaterThanOrEqual(0);
  expect(used.cpuTenths).toBeLessThanOrEqual(ceiling.cpuTenths);
  expect(used.memMB).toBeLessThanOrEqual(ceiling.memMB);
  expect(used.gpus.length).toBeLessThanOrEqual(ceiling.gpus);
  expect(new Set(used.gpus).size).toBe(used.gpus.length);
  // The ledger holds exactly what the pool's tasks hold, and each holds what its key asks for.
  const held = ex.tasks().flatMap((t) => (t.reservation ? [t] : []));
  for (const t of held) expect(t.reservation).toMatchObject({ cpu: t.cpu, mem: t.mem });
  expect(held.reduce((sum, t) => sum + Math.round(t.cpu * 10), 0)).toBe(used.cpuTenths);
  expect(held.reduce((sum, t) => sum + t.mem, 0)).toBe(used.memMB);
  expect(held.flatMap((t) => t.gpus).sort()).toEqual(used.gpus);
}

describe("ledger invariants (property)", () => {
  it("hold over random interleavings and end at zero", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(0, 1, 2),
        fc.array(action, { minLength: 1, maxLength: 40 }),
        async (taskConcurrency, actions) => {
          let releaseSlow = deferred<{ status: number; body: string }>();
          const { executor, backend, clock } = await fakeExecutor({
            gpus: fakeGpus(2),
            settings: {
              cpu: 1,
              memMB: 1024,
              hasGpu: true,
              queueTimeoutMs: 2_000,
              idleTimeoutMinutes: 0.5,
              readyTimeoutMs: 20,
              taskConcurrency,
            },
            images: {
              "crash:1": { ready: { exitCode: 1, lines: ["boom"] } },
              "slow:1": { respond: () => releaseSlow.promise },
              "never:1": { ready: "never" },
            },
          });
          const pending: Promise<unknown>[] = [];
          let ceiling = ceilingAfter(executor, undefined);
          for (const a of actions) {
            switch (a.kind) {
              case "request":
                pending.push(
                  executor
                    .execute(
                      {
                        image: a.image,
                        cpu: a.cpu,
                        mem: a.mem,
                        useGpu: a.gpus > 0,
                        gpuCount: a.gpus || undefined,
                      },
                      "in",
                    )
                    .catch(() => {}),
                );
                break;
              case "release":
                releaseSlow.resolve({ status: 200, body: "ok" });
                releaseSlow = deferred();
                break;
              case "kill": {
                const running = backend.containers().filter((c) => c.running);
                const c = running[a.index % Math.max(running.length, 1)];
                if (c) backend.kill(c.id, { oom: a.index % 2 === 0 });
                break;
              }
              case "advance":
                clock.advance(a.ms);
                break;
              case "pause":
                pending.push(executor.pause());
                break;
              case "update":
                // Running or paused: applied at once; reservations above a shrunk capacity may only go down.
                await executor.updateConfig({ cpu: a.cpu, memMB: a.mem, hasGpu: a.gpu });
                ceiling = ceilingAfter(executor, {
                  cpuTenths: Infinity,
                  memMB: Infinity,
                  gpus: Infinity,
                });
                break;
              case "unpause":
                executor.unpause();
                break;
            }
            await flush(3);
            checkInvariants(executor, ceiling);
            ceiling = ceilingAfter(executor, ceiling);
          }
          // Let everything finish: release slow tasks, let queues and ready timeouts lapse.
          releaseSlow.resolve({ status: 200, body: "ok" });
          for (let i = 0; i < 10; i++) {
            clock.advance(10_000);
            await flush(3);
          }
          await executor.pause();
          await Promise.allSettled(pending);
          checkInvariants(executor, ceiling);
          expect(executor.tasks()).toEqual([]);
          expect(executor.ledger.used()).toEqual({ cpuTenths: 0, memMB: 0, gpus: [] });
          expect(executor.ledger.reservations).toBe(0);
          expect(backend.containers().filter((c) => c.running)).toEqual([]);
        },
      ),
      { numRuns: 100 },
    );
  }, 120_000);
});
