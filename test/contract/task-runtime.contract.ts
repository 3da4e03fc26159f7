/**
 * One set of cases for every TaskRuntime, the engine's port to where tasks run: the in-memory fake
 * (unit project) and the Docker runtime on the real engine (integration project: over node:http
 * published and isolated, over dockerode with TLS, and under Deno), so that engine tests on the
 * fake mean something. What each case checks is a promise of the port (src/engine/ports.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ContainerExitedError,
  EngineUnavailableError,
  ImageNotFoundError,
  StartAbortedError,
} from "../../src/engine/errors.ts";
import type { TaskClient, TaskEvent, TaskLaunch, TaskRuntime } from "../../src/engine/ports.ts";
import { keyHash, specLabel, taskKey, type TaskSpec } from "../../src/engine/task-spec.ts";
import { CRASH_EXIT_CODE, CRASH_LOG_LINES } from "../support/fixtures.ts";
import { until } from "../support/until.ts";

export interface RuntimeSubject {
  /** A runtime on the subject's engine, as one run of an executor; a second call is the next run. */
  runtime(): TaskRuntime;
  client: TaskClient;
  /** `echo` answers `POST /` with its body; `crash` exits before its mark; `neverReady` never prints it. */
  images: { echo: string; crash: string; neverReady: string; missing: string };
  /** Stops a running task from outside, as a crash or `docker kill` does. */
  kill(id: string): Promise<void>;
  /** A runtime of the same kind whose engine does not answer. */
  unreachable(): TaskRuntime;
  cleanup(): Promise<void>;
}

export function taskRuntimeContract(name: string, setup: () => Promise<RuntimeSubject>): void {
  describe(`TaskRuntime contract: ${name}`, () => {
    let s: RuntimeSubject;
    let rt: TaskRuntime;
    const made: TaskRuntime[] = [];
    const run = Math.random().toString(36).slice(2, 8);
    let serial = 0;

    const launch = (image: string, cpuTenths = 5): TaskLaunch => {
      const spec: TaskSpec = {
        image,
        runtimeKind: "container",
        cpuTenths,
        memMB: 64,
        gpuCount: 0,
        sgx: false,
      };
      return {
        name: `meca-contract-${run}-${++serial}`,
        spec,
        gpus: [],
        keyHash: keyHash(taskKey(spec)),
        specLabel: specLabel(spec),
      };
    };
    const newRuntime = () => {
      const r = s.runtime();
      made.push(r);
      return r;
    };
    const answer = (endpoint: string, body: string) =>
      s.client.send({ method: "POST", endpoint, path: "/", body });
    const bound = () => AbortSignal.timeout(30_000);

    beforeAll(async () => {
      s = await setup();
      rt = newRuntime();
    });
    afterAll(async () => {
      for (const r of made) await r.close().catch(() => {});
      await s?.cleanup();
    });

    it("start() resolves with a ready task whose endpoint answers; remove() takes it away, twice is no error", async () => {
      let created: string | undefined;
      const t = await rt.start(launch(s.images.echo), {
        signal: bound(),
        onCreated: (id) => (created = id),
      });
      expect(created).toBe(t.id);
      expect(await answer(t.endpoint, "hello")).toEqual({
        status: 200,
        body: "hello",
        sent: 5,
        received: 5,
      });
      expect(await rt.inspect(t.id)).toMatchObject({ running: true, oomKilled: false });
      await rt.remove(t.id);
      expect(await rt.inspect(t.id)).toBeUndefined();
      await rt.remove(t.id);
    });

    it("start() of a task that exits before its mark rejects with ContainerExitedError (exit code, last lines) and leaves nothing", async () => {
      let created: string | undefined;
      const err = await rt
        .start(launch(s.images.crash), { signal: bound(), onCreated: (id) => (created = id) })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ContainerExitedError);
      expect((err as ContainerExitedError).exitCode).toBe(CRASH_EXIT_CODE);
      expect((err as ContainerExitedError).lastLines).toEqual(
        expect.arrayContaining([...CRASH_LOG_LINES]),
      );
      expect(created).toBeDefined();
      expect(await rt.inspect(created!)).toBeUndefined();
    });

    it("start() called off through its signal rejects with StartAbortedError carrying the signal's reason, and leaves nothing", async () => {
      const ac = new AbortController();
      let created: string | undefined;
      const starting = rt.start(launch(s.images.neverReady), {
        signal: ac.signal,
        onCreated: (id) => (created = id),
      });
      await until(() => created !== undefined, "the task was created");
      const why = new Error("ready timeout, say");
      ac.abort(why);
      const err = await starting.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StartAbortedError);
      expect((err as StartAbortedError).reason).toBe(why);
      expect(await rt.inspect(created!)).toBeUndefined();
    });

    it("the signal onStarted() gives bounds the wait for readiness once the task runs: its reason comes back, nothing is left", async () => {
      const ready = new AbortController();
      const order: string[] = [];
      let created: string | undefined;
      const starting = rt.start(launch(s.images.neverReady), {
        signal: bound(),
        onCreated: (id) => {
          created = id;
          order.push("created");
        },
        onStarted: () => {
          order.push("started");
          return ready.signal;
        },
      });
      await until(() => order.includes("started"), "the task runs");
      const why = new Error("not ready in time, say");
      ready.abort(why);
      const err = await starting.catch((e: unknown) => e);
      expect(order).toEqual(["created", "started"]);
      expect(err).toBeInstanceOf(StartAbortedError);
      expect((err as StartAbortedError).reason).toBe(why);
      expect(await rt.inspect(created!)).toBeUndefined();
    });

    it("hasImage() tells a local image from a missing one; pulling a missing one rejects with ImageNotFoundError", async () => {
      expect(await rt.hasImage(s.images.echo)).toBe(true);
      expect(await rt.hasImage(s.images.missing)).toBe(false);
      await expect(rt.pullImage(s.images.missing)).rejects.toBeInstanceOf(ImageNotFoundError);
    });

    it("watch() reports a task stopped from outside as died, with its exit code", async () => {
      const t = await rt.start(launch(s.images.echo), { signal: bound() });
      const ac = new AbortController();
      const events: TaskEvent[] = [];
      const watching = rt.watch({ onEvent: (e) => events.push(e), signal: ac.signal });
      // The stream is open once an event of another task arrives: start and remove one.
      const probe = await rt.start(launch(s.images.echo, 6), { signal: bound() });
      await rt.remove(probe.id);
      await until(() => events.some((e) => e.id === probe.id), "the stream is open");
      await s.kill(t.id);
      await until(
        () => events.some((e) => e.id === t.id && e.action === "die"),
        "the task's die event",
      );
      expect(events.find((e) => e.id === t.id && e.action === "die")!.exitCode).toBeGreaterThan(0);
      expect(await rt.inspect(t.id)).toMatchObject({ running: false });
      ac.abort();
      await watching.catch(() => {});
      await rt.remove(t.id);
    });

    it("leftovers() gives an earlier run's tasks as facts (what the launch kept, ready) but not this run's; adopt() makes one reachable again", async () => {
      const earlier = newRuntime();
      const l = launch(s.images.echo, 7);
      const left = await earlier.start(l, { signal: bound() });
      // The next run of the instance, on the same engine: `earlier` and `rt` are earlier runs now.
      const next = newRuntime();
      const found = await next.leftovers();
      const it = found.find((c) => c.id === left.id);
      expect(it).toMatchObject({
        name: l.name,
        running: true,
        keyHash: l.keyHash,
        specLabel: l.specLabel,
        nanoCpus: 700_000_000,
        memoryBytes: 64 * 2 ** 20,
        ready: true,
      });
      expect(it!.unreachable).toBeUndefined();
      expect(it!.startedAt).toBeGreaterThan(0);
      // The earlier run's only: none of what `next` started itself.
      const mine = await next.start(launch(s.images.echo, 9), { signal: bound() });
      expect((await next.leftovers()).map((c) => c.id)).not.toContain(mine.id);
      const back = await next.adopt(left.id);
      expect(back.id).toBe(left.id);
      expect(await answer(back.endpoint, "again")).toEqual({
        status: 200,
        body: "again",
        sent: 5,
        received: 5,
      });
      // Adopted, it is the next run's own: no longer a leftover of it, and its sweep keeps it.
      expect((await next.leftovers()).map((c) => c.id)).not.toContain(left.id);
      await next.sweep({ earlierRuns: true });
      expect(await answer(back.endpoint, "kept")).toEqual({
        status: 200,
        body: "kept",
        sent: 4,
        received: 4,
      });
      for (const id of [left.id, mine.id]) await next.remove(id);
      rt = next; // the cases after this one run on the current run
    });

    it("sweep() never touches a task started and not removed", async () => {
      const t = await rt.start(launch(s.images.echo, 11), { signal: bound() });
      await rt.sweep();
      await rt.sweep({ earlierRuns: true });
      expect(await answer(t.endpoint, "still")).toEqual({
        status: 200,
        body: "still",
        sent: 5,
        received: 5,
      });
      await rt.remove(t.id);
    });

    it("a runtime whose engine does not answer rejects info() with EngineUnavailableError", async () => {
      await expect(s.unreachable().info(AbortSignal.timeout(10_000))).rejects.toBeInstanceOf(
        EngineUnavailableError,
      );
    });
  });
}
