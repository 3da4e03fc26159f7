import { describe, expect, it } from "vitest";
import type { TaskRequest } from "../../src/engine/ports.ts";
import { warmUp } from "../../src/http/node-warm-up.ts";
import { createTaskClient } from "../../src/platform/task-client.ts";
import { fakeApp } from "../support/fake-app.ts";

describe.skipIf("Deno" in globalThis)("the start-up warm-up", () => {
  it("sends its requests with the real task client through the app's Node route to a stand-in, and leaves no trace in the app", async () => {
    const f = await fakeApp();
    const client = createTaskClient();
    const answers: { status: number; body: string }[] = [];
    const forgotten: string[] = [];
    const sent: TaskRequest[] = [];
    await warmUp(
      f.app,
      {
        send: async (req) => {
          sent.push(req);
          const res = await client.send(req);
          answers.push(res);
          return res;
        },
        forget: (endpoint) => (forgotten.push(endpoint), client.forget(endpoint)),
      },
      30,
    );
    expect(answers).toHaveLength(30);
    // The route validated a MECA body and answered the envelope, with the echo in place of the engine.
    expect(answers.map((a) => JSON.parse(a.body))).toEqual(Array.from({ length: 30 }, (_, i) => ({ success: true, msg: `warm-up ${i}` })));
    expect(forgotten).toEqual([sent[0]!.endpoint]);
    // Nothing reached the engine or the app's metrics, and the stand-in is gone.
    expect(f.backend.created).toEqual([]);
    expect(await (await f.app.request("/metrics")).text()).not.toMatch(/method="POST"/);
    await expect(fetch(sent[0]!.endpoint)).rejects.toThrow();
    await client.close();
  });

  it("stops at the first answer that is not 200, and does nothing for an app that createApp did not make", async () => {
    const f = await fakeApp({ maxBodyBytes: 10 });
    let sends = 0;
    const client = createTaskClient();
    const counting = { send: (r: TaskRequest) => (sends++, client.send(r)), forget: (e: string) => client.forget(e) };
    await warmUp(f.app, counting, 30);
    expect(sends).toBe(1);
    const { Hono } = await import("hono");
    await warmUp(new Hono(), counting, 30);
    expect(sends).toBe(1);
    await client.close();
  });
});
