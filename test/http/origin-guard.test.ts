import { describe, expect, it } from "vitest";
import { isLoopbackHost, originAllowed } from "../../src/http/origin-guard.ts";
import { fakeApp } from "../support/fake-app.ts";

const POSTS: [string, unknown][] = [
  ["/", { id: "echo:1", input: "x" }],
  ["/pause", undefined],
  ["/unpause", undefined],
  ["/update-config", { timeout: 2 }],
  ["/stop", undefined],
];

/**
 * What the MECA desktop app's Electron renderer sends (its ExecutorServices: fetch with
 * `content-type: application/json` on every call, GET /stats and bodiless POSTs included).
 */
const desktop = (origin: string) => ({
  Origin: origin,
  Accept: "*/*",
  "content-type": "application/json",
  "Sec-Fetch-Site": "cross-site",
  "Sec-Fetch-Mode": "cors",
  "Sec-Fetch-Dest": "empty",
  "User-Agent":
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) mecanywhere-desktop/1.0.0 Chrome/120.0 Electron/28.0.0 Safari/537.36",
  Host: "localhost:2591",
});
/** What the host actor (Python requests) sends. */
const hostActor = (host: string) => ({
  Host: host,
  "User-Agent": "python-requests/2.31.0",
  Accept: "*/*",
  Connection: "keep-alive",
  "Content-Type": "application/json",
});

describe("the executor is not a browser target", () => {
  it("refuses every POST, execute included, from a web origin with 403, whatever the content type; nothing happens", async () => {
    for (const origin of [
      "https://attacker.example",
      "http://evil.test:2591",
      "http://localhost.evil.test",
      "file://",
      "chrome-extension://abc",
    ]) {
      const { request, executor, stops } = await fakeApp({ listenHost: "127.0.0.1" });
      for (const [path, body] of POSTS) {
        for (const type of ["application/json", "text/plain"]) {
          const r = await request("POST", path, body ?? "", {
            Origin: origin,
            "Content-Type": type,
          });
          expect(r, `${origin} ${path} ${type}`).toMatchObject({
            status: 403,
            body: { success: false, error: "ORIGIN_REFUSED" },
          });
        }
      }
      expect(executor.paused).toBe(false);
      expect(executor.tasks()).toEqual([]);
      await new Promise((r) => setTimeout(r, 5));
      expect(stops()).toBe(0);
    }
  });

  it("the exact attack: POST /stop as text/plain from a page answers 403 and does not stop", async () => {
    const { app, stops } = await fakeApp({ listenHost: "127.0.0.1" });
    const r = await app.request("http://127.0.0.1:2591/stop", {
      method: "POST",
      body: "x",
      headers: { Origin: "https://attacker.example", "Content-Type": "text/plain" },
    });
    expect(r.status).toBe(403);
    await new Promise((r) => setTimeout(r, 5));
    expect(stops()).toBe(0);
  });

  it("refuses a Host that is not loopback while listening on loopback (DNS rebinding), on any route", async () => {
    const { request } = await fakeApp({ listenHost: "127.0.0.1" });
    for (const host of [
      "attacker.example",
      "attacker.example:2591",
      "192.168.1.10:2591",
      "127.0.0.1.nip.io:2591",
    ]) {
      expect(await request("POST", "/stop", undefined, { Host: host }), host).toMatchObject({
        status: 403,
        body: { error: "HOST_REFUSED" },
      });
      expect((await request("GET", "/stats", undefined, { Host: host })).status, host).toBe(403);
    }
  });

  it("serves the desktop app from its packaged page (Origin: null) and in development (http://localhost:1212)", async () => {
    for (const origin of ["null", "http://localhost:1212"]) {
      const { request, executor } = await fakeApp({ listenHost: "127.0.0.1" });
      const task = {
        id: "echo:1",
        input: "hi",
        resource: { task_cpu: 1, task_mem: 128 },
        useGpu: false,
        gpuCount: 0,
        useSgx: false,
      };
      expect(await request("POST", "/", task, desktop(origin))).toMatchObject({
        status: 200,
        body: { msg: "hi" },
      });
      expect((await request("GET", "/stats", undefined, desktop(origin))).status).toBe(200);
      expect((await request("POST", "/pause", undefined, desktop(origin))).status).toBe(200);
      expect(
        (
          await request(
            "POST",
            "/update-config",
            { cpu: 2, mem: 2048, timeout: 1, has_gpu: false, microVM_runtime: "" },
            desktop(origin),
          )
        ).status,
      ).toBe(200);
      expect((await request("POST", "/unpause", undefined, desktop(origin))).status).toBe(200);
      expect(executor.paused).toBe(false);
    }
  });

  it("serves the host actor: no Origin, a loopback Host, or any Host when listening beyond loopback (its Docker network address)", async () => {
    const loopback = await fakeApp({ listenHost: "127.0.0.1" });
    for (const host of ["127.0.0.1:2591", "localhost:2591", "[::1]:2591"]) {
      expect(
        (await loopback.request("POST", "/", { id: "echo:1", input: "a" }, hostActor(host))).status,
        host,
      ).toBe(200);
    }
    const inContainer = await fakeApp({ listenHost: "0.0.0.0" });
    expect(
      (
        await inContainer.request(
          "POST",
          "/",
          { id: "echo:1", input: "b" },
          hostActor("172.18.0.2:2591"),
        )
      ).status,
    ).toBe(200);
    expect(
      (
        await inContainer.request(
          "POST",
          "/",
          { id: "echo:1" },
          { Origin: "https://attacker.example" },
        )
      ).status,
    ).toBe(403);
  });

  it("allowed_origins adds origins", async () => {
    const { request } = await fakeApp({
      listenHost: "127.0.0.1",
      allowedOrigins: ["http://192.168.1.7:3000"],
    });
    expect(
      (await request("POST", "/", { id: "echo:1" }, { Origin: "http://192.168.1.7:3000" })).status,
    ).toBe(200);
    expect(
      (await request("POST", "/", { id: "echo:1" }, { Origin: "http://192.168.1.7:3001" })).status,
    ).toBe(403);
  });

  it("admin POSTs with a body need a JSON content type (415 otherwise), checked before the body is read", async () => {
    const { app, executor } = await fakeApp();
    for (const type of [
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
    ]) {
      const r = await app.request("/update-config", {
        method: "POST",
        body: '{"cpu":2}',
        headers: { "Content-Type": type },
      });
      expect(r.status, type).toBe(415);
      expect(((await r.json()) as { error: string }).error).toBe("UNSUPPORTED_MEDIA_TYPE");
      const pause = await app.request("/pause", {
        method: "POST",
        body: "x",
        headers: { "Content-Type": type, "Content-Length": "1" },
      });
      expect(pause.status, type).toBe(415);
    }
    expect(executor.paused).toBe(false);
    await app.request("/pause", { method: "POST" });
    const json = await app.request("/update-config", {
      method: "POST",
      body: '{"cpu":2}',
      headers: { "Content-Type": "application/json; charset=utf-8" },
    });
    expect(json.status).toBe(200);
  });
});

describe("originAllowed() and isLoopbackHost()", () => {
  it("take null, loopback origins on any port and the listed ones", () => {
    const listed = new Set(["http://10.0.0.5:8080"]);
    for (const o of [
      "null",
      "http://localhost:1212",
      "https://127.0.0.1",
      "http://[::1]:3000",
      "http://10.0.0.5:8080",
    ])
      expect(originAllowed(o, listed), o).toBe(true);
    for (const o of [
      "http://10.0.0.5:8081",
      "https://example.com",
      "http://127.0.0.1.example.com",
      "ws://localhost",
      "garbage",
      "",
    ])
      expect(originAllowed(o, listed), o).toBe(false);
    for (const h of ["localhost", "127.0.0.1", "127.8.9.10", "[::1]", "::1", "app.localhost"])
      expect(isLoopbackHost(h), h).toBe(true);
    for (const h of [
      "0.0.0.0",
      "10.0.0.1",
      "example.com",
      "127.0.0.1.nip.io",
      "localhost.example.com",
    ])
      expect(isLoopbackHost(h), h).toBe(false);
  });
});
