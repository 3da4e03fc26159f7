import { describe, expect, it } from "vitest";
import { fakeApp } from "../support/fake-app.ts";

/** A body sent as a stream of chunks with no declared length, as a chunked upload arrives. */
function chunked(text: string, pieces = 8): RequestInit {
  const bytes = new TextEncoder().encode(text);
  const size = Math.ceil(bytes.length / pieces);
  let at = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.subarray(at, (at += size)));
    },
  });
  return {
    method: "POST",
    body,
    headers: { "content-type": "application/json" },
    duplex: "half",
  } as RequestInit;
}

describe("request bodies are bounded", () => {
  it("execute: 413 on a declared length past max_body_bytes, and on a chunked body counted while it is read", async () => {
    const { app } = await fakeApp({ maxBodyBytes: 1000 });
    const big = JSON.stringify({ id: "echo:1", input: "x".repeat(2000) });
    const declared = await app.request("/", {
      method: "POST",
      body: big,
      headers: { "content-type": "application/json", "content-length": String(big.length) },
    });
    expect(declared.status).toBe(413);
    const streamed = await app.request("/", chunked(big));
    expect(streamed.status).toBe(413);
    expect(((await streamed.json()) as { error: string }).error).toBe("PAYLOAD_TOO_LARGE");
    expect(
      (await app.request("/", chunked(JSON.stringify({ id: "echo:1", input: "ok" })))).status,
    ).toBe(200);
  });

  it("admin routes have their own small limit, checked on the declared length and while reading", async () => {
    const { app, executor } = await fakeApp({ maxAdminBodyBytes: 100 });
    await app.request("/pause", { method: "POST" });
    const big = JSON.stringify({ microVM_runtime: "r".repeat(500) });
    const declared = await app.request("/update-config", {
      method: "POST",
      body: big,
      headers: { "content-type": "application/json", "content-length": String(big.length) },
    });
    expect(declared.status).toBe(413);
    expect((await app.request("/update-config", chunked(big))).status).toBe(413);
    expect((await app.request("/update-config", chunked(JSON.stringify({ cpu: 2 })))).status).toBe(
      200,
    );
    expect(executor.settings.cpu).toBe(2);
  });

  it("input held by all requests together is bounded by max_buffered_input_bytes: 503 OVERLOADED past it, and given back", async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const { app, executor } = await fakeApp({
      maxBufferedInputBytes: 1500,
      images: { "slow:1": { respond: async (body) => (await held, { status: 200, body }) } },
    });
    const body = (id: string) => JSON.stringify({ id, input: "y".repeat(1000) });
    const first = app.request("/", {
      method: "POST",
      body: body("slow:1"),
      headers: { "content-type": "application/json" },
    });
    // Wait until the first request's input is read and with its task.
    for (let i = 0; i < 500 && executor.tasks()[0]?.in_flight !== 1; i++)
      await new Promise((r) => setTimeout(r, 2));
    expect(executor.tasks()[0]?.in_flight).toBe(1);
    const second = await app.request("/", {
      method: "POST",
      body: body("echo:1"),
      headers: { "content-type": "application/json" },
    });
    expect(second.status).toBe(503);
    expect(((await second.json()) as { error: string }).error).toBe("OVERLOADED");
    expect(second.headers.get("retry-after")).toBe("1");
    release();
    expect((await first).status).toBe(200);
    expect(
      (
        await app.request("/", {
          method: "POST",
          body: body("echo:1"),
          headers: { "content-type": "application/json" },
        })
      ).status,
    ).toBe(200);
  });
});
