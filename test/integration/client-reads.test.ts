/**
 * Failures read the way MECA's clients read answers, with the default failure_status ("ok"): the
 * desktop app throws away the body of any non-2xx answer and shows only the status text; the host
 * actor ignores the status and hashes the raw body, and that hash goes on-chain.
 */
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CRASH_EXIT_CODE,
  CRASH_IMAGE,
  CRASH_LOG_LINES,
  ECHO_IMAGE,
  taskBody,
} from "../support/fixtures.ts";
import { startExecutor, type Harness } from "../support/harness.ts";

const small = { cpu: 0.1, mem: 32 };

/** The desktop app's execute call: `if (!res.ok) throw new Error("Failed to execute task: " + res.statusText)`, else the envelope's msg. */
async function desktopApp(base: string, body: unknown): Promise<string> {
  const res = await fetch(`${base}/`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`Failed to execute task: ${res.statusText}`);
  return ((await res.json()) as { msg: string }).msg;
}

/** The host actor: a new connection per task, the status ignored, the raw body hashed. */
async function hostActor(base: string, body: unknown): Promise<{ hash: string; text: string }> {
  const res = await fetch(`${base}/`, {
    method: "POST",
    headers: { "content-type": "application/json", connection: "close" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { hash: createHash("sha256").update(text).digest("hex"), text };
}

describe("failure_status ok (the default), as MECA's clients read answers", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startExecutor({ failure_status: "ok", ready_timeout: 5, request_timeout: 2 });
  });
  afterAll(async () => {
    expect(await h.close()).toEqual([]);
  });

  it('the desktop app shows a crashed task\'s exit code and last output, not "Bad Gateway"', async () => {
    const msg = await desktopApp(h.base, { id: CRASH_IMAGE, resource: small });
    expect(msg).toContain(`exited with code ${CRASH_EXIT_CODE}`);
    for (const line of CRASH_LOG_LINES) expect(msg).toContain(line);
    // A task that answers an error status, and one that does not answer in time: the reason, readable.
    expect(
      await desktopApp(h.base, { id: ECHO_IMAGE, resource: small, input: taskBody.status(500) }),
    ).toContain("answered 500: failed with 500");
    expect(
      await desktopApp(h.base, { id: ECHO_IMAGE, resource: small, input: taskBody.hold("never") }),
    ).toMatch(/did not answer within the request timeout of 2 s/);
  });

  it("answers 200 with the envelope and the stable code for what could not be served; Retry-After stays", async () => {
    const crashed = await h.execute({ id: CRASH_IMAGE, resource: small });
    expect(crashed).toMatchObject({ status: 200, body: { success: false, error: "TASK_EXITED" } });
    const big = await h.execute({ id: ECHO_IMAGE, resource: { cpu: 64 } });
    expect(big).toMatchObject({ status: 200, body: { success: false, error: "EXCEEDS_CAPACITY" } });
    expect((await h.call("POST", "/pause")).status).toBe(200);
    const paused = await h.execute({ id: ECHO_IMAGE, resource: small, input: "x" });
    expect(paused).toMatchObject({ status: 200, body: { success: false, error: "PAUSED" } });
    expect(paused.headers.get("retry-after")).toBe("5");
    expect((await h.call("POST", "/unpause")).status).toBe(200);
    // The request metrics and the record of recent requests keep the code.
    const metrics = (await h.call("GET", "/metrics")).text;
    const line = metrics
      .split("\n")
      .find(
        (l) => l.startsWith("meca_http_requests_total{") && l.includes('outcome="TASK_EXITED"'),
      );
    expect(line).toContain('status="200"');
    const recent = (await h.call("GET", "/requests")).body.requests as { outcome: string }[];
    expect(recent.map((r) => r.outcome)).toEqual(
      expect.arrayContaining(["TASK_EXITED", "EXCEEDS_CAPACITY", "PAUSED"]),
    );
  });

  it("a malformed body or field is still a 400 naming it, and 413 stays", async () => {
    expect(await h.execute("{not json")).toMatchObject({
      status: 400,
      body: { error: "INVALID_JSON" },
    });
    const field = await h.execute({ id: ECHO_IMAGE, resource: { cpu: 0.25 } });
    expect(field).toMatchObject({ status: 400, body: { error: "BAD_REQUEST" } });
    expect(field.body.msg).toContain('"resource.cpu"');
    expect(await h.execute({ id: "Not An Image!" })).toMatchObject({
      status: 400,
      body: { error: "INVALID_IMAGE" },
    });
    const tooBig = await h.execute({ id: ECHO_IMAGE, input: "x".repeat(11 * 1024 * 1024) });
    expect(tooBig).toMatchObject({ status: 413, body: { error: "PAYLOAD_TOO_LARGE" } });
  });

  it("the host actor gets one stable body per outcome, whatever the status", async () => {
    // Nothing of the request's own (its id, a time, an address) goes into the body. (A crashed task's
    // last lines come as the engine recorded its stdout and stderr, whose interleaving can vary.)
    const failing = {
      id: ECHO_IMAGE,
      resource: { resource: { cpu: 0.1, mem: 32 } },
      input: taskBody.status(500),
    };
    const first = await hostActor(h.base, failing);
    const second = await hostActor(h.base, failing);
    expect(JSON.parse(first.text)).toMatchObject({ success: false, error: "TASK_FAILED" });
    expect(second.hash).toBe(first.hash);
    await h.call("POST", "/pause");
    const paused = [await hostActor(h.base, failing), await hostActor(h.base, failing)];
    await h.call("POST", "/unpause");
    expect(JSON.parse(paused[0]!.text)).toMatchObject({ success: false, error: "PAUSED" });
    expect(paused[1]!.hash).toBe(paused[0]!.hash);
    const ok1 = await hostActor(h.base, {
      id: ECHO_IMAGE,
      resource: { resource: { cpu: 0.1, mem: 32 } },
      input: "same input",
    });
    const ok2 = await hostActor(h.base, {
      id: ECHO_IMAGE,
      resource: { resource: { cpu: 0.1, mem: 32 } },
      input: "same input",
    });
    expect(ok1.text).toBe('{"success":true,"msg":"same input"}');
    expect(ok2.hash).toBe(ok1.hash);
  });
});
