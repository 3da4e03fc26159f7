/**
 * `prewarm` on the real engine: the declared task is warm before its first request, that request
 * causes no create or start in the engine's events, the replica outlives the idle timeout, and a
 * shortage evicts it and prewarm brings it back.
 */
import { afterEach, describe, expect, it } from "vitest";
import { LABELS } from "../../src/platform/docker/labels.ts";
import { containerEvents, engineNow } from "../support/docker-events.ts";
import { ECHO_IMAGE } from "../support/fixtures.ts";
import { startExecutor, until, type Harness } from "../support/harness.ts";

let h: Harness | undefined;
afterEach(async () => {
  if (h) expect(await h.close()).toEqual([]);
  h = undefined;
});

const resource = { cpu: 0.3, mem: 43 };
const warm = () => h!.executor.tasks().filter((t) => t.prewarmed && t.state === "ready");

describe("prewarm", () => {
  it("the first request of a prewarmed key is served by the warm replica: no create or start after it came", async () => {
    h = await startExecutor({ timeout: 0.05, prewarm: [{ id: ECHO_IMAGE, resource, count: 1 }] });
    await until(() => warm().length === 1, "the prewarmed replica ready");
    const since = engineNow();
    const r = await h.execute({ id: ECHO_IMAGE, resource: { resource }, input: "first" }); // the host actor's shape
    expect(r.body).toEqual({ success: true, msg: "first" });
    expect(
      containerEvents({
        since,
        labels: { [LABELS.instance]: h.instance },
        actions: ["create", "start"],
      }),
    ).toEqual([]);
    expect((await h.call("GET", "/metrics")).text).toMatch(/^meca_prewarm_hits_total 1$/m);
    // Past the idle timeout (3 s) it stays: a task of another key, idle as long, is removed first.
    const id = warm()[0]!.container_id;
    expect(
      (await h.execute({ id: ECHO_IMAGE, resource: { cpu: 0.2, mem: 43 }, input: "other" })).body
        .msg,
    ).toBe("other");
    await h.execute({ id: ECHO_IMAGE, resource: { resource }, input: "last use" });
    await until(
      () => h!.executor.tasks().every((t) => t.cpu !== 0.2),
      "the other task's idle removal",
    );
    expect(warm().map((t) => t.container_id)).toEqual([id]);
  });

  it("a shortage evicts the prewarmed replica like an idle one; once there is room prewarm starts it again", async () => {
    h = await startExecutor({
      cpu: 0.5,
      timeout: 0.05,
      prewarm: [{ id: ECHO_IMAGE, resource, count: 1 }],
    });
    await until(() => warm().length === 1, "the prewarmed replica ready");
    const r = await h.execute({ id: ECHO_IMAGE, resource: { cpu: 0.4, mem: 43 }, input: "room" });
    expect(r.body.msg).toBe("room");
    expect(h.executor.tasks().map((t) => t.cpu)).toEqual([0.4]);
    // The other task idles out after 3 s; then the prewarmed key comes back.
    await until(
      () => warm().length === 1 && h!.executor.tasks().length === 1,
      "the prewarmed replica back",
      30_000,
    );
    expect(h.executor.ledger.used()).toMatchObject({ cpuTenths: 3, memMB: 43 });
  });

  it("update-config changes the list live and refuses an entry that cannot be served, naming it", async () => {
    h = await startExecutor({ admin_token: "t0k" });
    const auth = { authorization: "Bearer t0k" };
    const bad = await h.call(
      "POST",
      "/update-config",
      { prewarm: [{ id: ECHO_IMAGE, resource: { cpu: 99 } }] },
      auth,
    );
    expect(bad.status).toBe(400);
    expect(bad.text).toContain(
      'prewarm[0] (\\"meca-test/echo:1\\"): Field \\"resource.cpu\\" asks for 99 cores',
    );
    const unknown = await h.call(
      "POST",
      "/update-config",
      { prewarm: [{ id: ECHO_IMAGE, cores: 1 }] },
      auth,
    );
    expect(unknown.status).toBe(400);
    expect(unknown.text).toContain("prewarm.0.cores");
    const ok = await h.call(
      "POST",
      "/update-config",
      { prewarm: [{ id: ECHO_IMAGE, resource, count: 2 }] },
      auth,
    );
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ changed: { prewarm: { from: 0, to: 1 } } });
    await until(() => warm().length === 2, "two prewarmed replicas ready");
  });
});
