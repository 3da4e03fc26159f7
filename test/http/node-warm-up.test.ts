import { describe, expect, it } from "vitest";
import type { TaskRequest } from "../../src/engine/ports.ts";
import { warmUp } from "../../src/http/node-warm-up.ts";
import { createTaskClient } from "../../src/platform/task-client.ts";
import { memoryLogger } from "../fakes/fake-logger.ts";

describe.skipIf("Deno" in globalThis)("the start-up warm-up", () => {
  it("sends MECA request bodies with a real task client through the Node route of POST / to a loopback stand-in, then closes it", async () => {
    const client = createTaskClient();
    const answers: { status: number; body: string }[] = [];
    const forgotten: string[] = [];
    const sent: TaskRequest[] = [];
    const logger = memoryLogger();
    const answered = await warmUp({
      client: {
        send: async (req) => {
          sent.push(req);
          const res = await client.send(req);
          answers.push(res);
          return res;
        },
        forget: (endpoint) => (forgotten.push(endpoint), client.forget(endpoint)),
      },
      maxBodyBytes: 1 << 20,
      log: logger,
      count: 30,
    });
    expect(answered).toBe(30);
    // The route read and validated a MECA body and answered the envelope, with an echo in place of the engine.
    expect(JSON.parse(sent[0]!.body!)).toMatchObject({ id: expect.any(String), resource: { cpu: 1 }, input: "warm-up 0" });
    expect(answers.map((a) => JSON.parse(a.body))).toEqual(Array.from({ length: 30 }, (_, i) => ({ success: true, msg: `warm-up ${i}` })));
    expect(forgotten).toEqual([sent[0]!.endpoint]);
    expect(logger.records.filter((r) => r.level !== "debug")).toEqual([]);
    // The stand-in is gone.
    await expect(fetch(sent[0]!.endpoint)).rejects.toThrow();
    await client.close();
  });

  it("stops at the first answer that is not 200", async () => {
    const client = createTaskClient();
    let sends = 0;
    const answered = await warmUp({
      client: { send: (r: TaskRequest) => (sends++, client.send(r)), forget: (e: string) => client.forget(e) },
      maxBodyBytes: 10,
      log: memoryLogger(),
      count: 30,
    });
    expect([answered, sends]).toEqual([0, 1]);
    await client.close();
  });
});
