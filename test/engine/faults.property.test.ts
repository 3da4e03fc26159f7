/**
 * The scheduler under faults, replayable: every timer runs on the fake clock, a failure can be
 * injected at every backend call a start or removal makes (pull, create, start, the ready wait,
 * endpoint, remove) and a client can leave at every phase (in line, pulling, creating, starting,
 * waiting for the mark, forwarding). Each outcome is an answer, the client's own abort reason, or
 * one of the documented error codes; after every run the ledger is at zero and no task is left.
 * A failing run prints its seed and path: `fc.assert(..., { seed, path })` replays it exactly.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ExecutorError } from "../../src/engine/errors.ts";
import { deferred } from "../fakes/fake-backend.ts";
import { fakeExecutor, flush } from "../support/fake-executor.ts";

/** The codes README documents for an execute request. */
const DOCUMENTED = new Set([
  "EXCEEDS_CAPACITY",
  "IMAGE_NOT_FOUND",
  "IMAGE_PULL_FAILED",
  "PAUSED",
  "NO_CAPACITY",
  "ENGINE_UNAVAILABLE",
  "TASK_EXITED",
  "TASK_NOT_READY",
  "TASK_START_FAILED",
  "TASK_FAILED",
  "TASK_UNREACHABLE",
  "TASK_TIMEOUT",
]);

const FAULT_AT = [
  "none",
  "pullImage",
  "create",
  "start",
  "waitForMark",
  "endpoint",
  "remove",
] as const;
const LEAVE_AT = [
  "never",
  "in-line",
  "pullImage",
  "create",
  "start",
  "waitForMark",
  "forwarding",
] as const;
const IMAGES = ["echo:1", "pull:1", "never:1", "crash:1", "slow:1"] as const;

type Action =
  | {
      kind: "request";
      image: (typeof IMAGES)[number];
      cpu: number;
      fault: (typeof FAULT_AT)[number];
      leave: (typeof LEAVE_AT)[number];
    }
  | { kind: "advance"; ms: number }
  | { kind: "release" }
  | { kind: "kill"; index: number }
  | { kind: "update"; cpu: number }
  | { kind: "pause" }
  | { kind: "unpause" };

const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("request" as const),
      image: fc.constantFrom(...IMAGES),
      cpu: fc.integer({ min: 1, max: 10 }).map((t) => t / 10),
      fault: fc.constantFrom(...FAULT_AT),
      leave: fc.constantFrom(...LEAVE_AT),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("advance" as const),
      ms: fc.integer({ min: 100, max: 30_000 }),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: "release" as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("kill" as const), index: fc.nat(5) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("update" as const),
      cpu: fc.integer({ min: 5, max: 20 }).map((t) => t / 10),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "pause" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "unpause" as const }) },
);

const scenario = fc.tuple(
  fc.constantFrom(0, 1, 2),
  fc.array(action, { minLength: 1, maxLength: 30 }),
);

/** Plays one scenario and checks it; returns its trace (backend calls and outcomes, in order). */
async function play(taskConcurrency: number, actions: Action[]): Promise<string[]> {
  const trace: string[] = [];
  let slow = deferred<{ status: number; body: string }>();
  /** Clients that leave while their request is forwarded, by the input they sent. */
  const leaveOnForward = new Map<string, AbortController>();
  const { executor, backend, clock } = await fakeExecutor({
    settings: {
      cpu: 1.5,
      memMB: 1024,
      queueTimeoutMs: 5_000,
      readyTimeoutMs: 10_000,
      requestTimeoutMs: 20_000,
      idleTimeoutMinutes: 0.5,
      drainTimeoutMs: 5_000,
      taskConcurrency,
    },
    images: {
      "never:1": { ready: "never" },
      "crash:1": { ready: { exitCode: 2, lines: ["boom"] } },
      "slow:1": {
        respond: (body) => (
          leaveOnForward.get(body)?.abort(new Error(`client ${body} left`)),
          slow.promise
        ),
      },
      "echo:1": {
        respond: (body) => (
          leaveOnForward.get(body)?.abort(new Error(`client ${body} left`)),
          { status: 200, body }
        ),
      },
    },
  });
  backend.addPullable("pull:1", {});
  const outcomes: Promise<void>[] = [];
  let n = 0;
  for (const a of actions) {
    switch (a.kind) {
      case "request": {
        const input = `in-${n++}`;
        const ac = new AbortController();
        const reason = new Error(`client ${input} left`);
        if (a.fault !== "none") {
          backend.before(
            a.fault,
            () => {
              throw new Error(`injected ${a.fault} failure`);
            },
            { once: true },
          );
        }
        if (a.leave === "forwarding") leaveOnForward.set(input, ac);
        else if (a.leave !== "never" && a.leave !== "in-line")
          backend.before(a.leave, () => ac.abort(reason), { once: true });
        const p = executor.execute({ image: a.image, cpu: a.cpu, mem: 64 }, input, {
          signal: ac.signal,
        });
        if (a.leave === "in-line") ac.abort(reason);
        outcomes.push(
          p.then(
            (body) => {
              trace.push(`${input} -> ${body}`);
              expect(body === input || body === "ok").toBe(true);
            },
            (e) => {
              trace.push(`${input} -> ${(e as ExecutorError).code ?? (e as Error).message}`);
              if (e === ac.signal.reason || (e instanceof Error && e.message.startsWith("client ")))
                return;
              expect(e).toBeInstanceOf(ExecutorError);
              expect(DOCUMENTED, `${(e as ExecutorError).code}: ${(e as Error).message}`).toContain(
                (e as ExecutorError).code,
              );
            },
          ),
        );
        break;
      }
      case "advance":
        clock.advance(a.ms);
        break;
      case "release":
        slow.resolve({ status: 200, body: "ok" });
        slow = deferred();
        break;
      case "kill": {
        const running = backend.containers().filter((c) => c.running);
        const c = running[a.index % Math.max(running.length, 1)];
        if (c) backend.kill(c.id, { oom: a.index % 2 === 0 });
        break;
      }
      case "update":
        await executor.updateConfig({ cpu: a.cpu });
        break;
      case "pause":
        outcomes.push(executor.pause());
        break;
      case "unpause":
        executor.unpause();
        break;
    }
    await flush(3);
  }
  // Let everything end on the clock: release slow answers, let every timeout lapse.
  for (let i = 0; i < 12; i++) {
    slow.resolve({ status: 200, body: "ok" });
    slow = deferred();
    clock.advance(10_000);
    await flush(3);
  }
  const paused = executor.pause();
  for (let i = 0; i < 5; i++) {
    clock.advance(10_000);
    await flush(3);
  }
  await paused;
  await Promise.all(outcomes);
  expect(executor.tasks()).toEqual([]);
  expect(executor.queueLength).toBe(0);
  expect(executor.ledger.used()).toEqual({ cpuTenths: 0, memMB: 0, gpus: [] });
  expect(executor.ledger.reservations).toBe(0);
  // A container stays only where its removal was made to fail (the next run's leftover sweep takes it).
  const failedRemovals =
    backend.calls.filter((c) => c.method === "remove").length -
    backend.calls.filter((c) => c.method === "remove" && !backend.container(c.args[0] as string))
      .length;
  expect(backend.containers().filter((c) => c.running).length).toBeLessThanOrEqual(failedRemovals);
  return [...trace, ...backend.calls.map((c) => c.method), `t=${clock.now()}`];
}

describe("scheduler under injected faults (property, replayable)", () => {
  it("every outcome is documented; the ledger ends at zero with no task left", async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ([taskConcurrency, actions]) => {
        await play(taskConcurrency, actions);
      }),
      { numRuns: 100 },
    );
  }, 120_000);

  it("a seed replays exactly: the same scenario gives the same trace", async () => {
    for (const [taskConcurrency, actions] of fc.sample(scenario, { seed: 1234, numRuns: 5 })) {
      expect(await play(taskConcurrency, actions)).toEqual(await play(taskConcurrency, actions));
    }
  });
});
