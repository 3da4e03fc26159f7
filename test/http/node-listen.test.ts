import { Hono } from "hono";
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { listenNode, type Listening } from "../../src/http/node-listen.ts";

let listening: Listening | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await listening?.close();
  listening = undefined;
});

async function open(port: number): Promise<Socket> {
  const s = connect(port, "127.0.0.1");
  sockets.push(s);
  s.on("error", () => {});
  await new Promise((r) => s.once("connect", r));
  return s;
}

/** Sends a GET and reads until the server closes or answers in full. */
async function get(s: Socket): Promise<string> {
  let got = "";
  s.on("data", (d) => (got += d));
  s.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  await new Promise((r) => s.once("close", r));
  return got;
}

describe("listenNode", () => {
  it("answers 503 OVERLOADED to connections past maxConnections without running the app, and serves again once one closes", async () => {
    let handled = 0;
    const app = new Hono().get("/", (c) => {
      handled++;
      return c.text("ok");
    });
    listening = await listenNode(app, { port: 0, hostname: "127.0.0.1", maxConnections: 2 });
    const held = [await open(listening.port), await open(listening.port)];
    const third = await get(await open(listening.port));
    expect(third).toMatch(/^HTTP\/1\.1 503 /);
    expect(third).toContain('"error":"OVERLOADED"');
    expect(third).toMatch(/retry-after: 1/i);
    expect(handled).toBe(0);
    held[0]!.destroy();
    // The freed slot is counted back once the server sees the close: retry until it does.
    let answer = "";
    for (let i = 0; i < 100 && !answer.includes("ok"); i++) answer = await get(await open(listening.port));
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(handled).toBe(1);
  });
});
