/**
 * GET /ui and GET /requests over the app: the page's policy allows exactly the script and style it
 * carries (so a browser runs them, and nothing else), and the record of recent requests says what
 * each request got. The page in a real browser: test/integration/ui.test.ts.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { fakeApp } from "../support/fake-app.ts";

const sha = (text: string) => createHash("sha256").update(text).digest("base64");

describe("GET /ui", () => {
  it("serves one self-contained page whose policy allows exactly its own script and style, and GETs to its own origin", async () => {
    const { app } = await fakeApp();
    const res = await app.request("/ui");
    expect(res.status).toBe(200);
    const html = await res.text();
    const csp = res.headers.get("content-security-policy")!;
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)![1]!;
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    expect(csp).toContain(`script-src 'sha256-${sha(script)}'`);
    expect(csp).toContain(`style-src 'sha256-${sha(style)}'`);
    expect(csp.split("; ")).toEqual(
      expect.arrayContaining([
        "default-src 'none'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
      ]),
    );
    // Nothing from elsewhere: no URL with a scheme or a host in the page, no other script or style.
    // (The SVG namespace is a name, never fetched.)
    expect(html.replaceAll('"http://www.w3.org/2000/svg"', "")).not.toMatch(
      /https?:\/\/|\/\/[a-z]/i,
    );
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html.match(/<style/g)).toHaveLength(1);
    // It reads and never writes.
    expect(script).not.toMatch(/method|POST|innerHTML/);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  });
});

describe("GET /requests", () => {
  it("lists the last requests with their task, outcome, latency and whether a replica started for them", async () => {
    const { app, request, executor } = await fakeApp();
    await request("POST", "/", { id: "echo:1", resource: { cpu: 0.5, mem: 64 }, input: "one" });
    await request("POST", "/", { id: "echo:1", resource: { cpu: 0.5, mem: 64 }, input: "two" });
    await request("POST", "/", { id: "missing:1", input: "three" });
    const body = (await (await app.request("/requests")).json()) as {
      requests: {
        image: string;
        key_hash: string;
        outcome: string;
        cold: boolean;
        ms: number;
        at: string;
      }[];
    };
    expect(
      body.requests.map((r) => [r.image, r.outcome, r.cold]),
      JSON.stringify(body.requests),
    ).toEqual([
      ["echo:1", "ok", true],
      ["echo:1", "ok", false],
      ["missing:1", "IMAGE_NOT_FOUND", false],
    ]);
    expect(body.requests[0]!.key_hash).toBe(executor.tasks()[0]!.key_hash);
    expect(Date.parse(body.requests[0]!.at)).toBeGreaterThan(0);
  });
});
