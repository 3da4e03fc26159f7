/**
 * GET /ui in a real browser: Debian's Chromium, headless, driven by puppeteer-core. The page lists
 * the capacity and the tasks, shows a task started after it loaded within a few seconds, and the
 * request that started it; it makes no request but GETs to the executor's own origin, and none
 * fails; its policy allows only its own script and style.
 */
import { existsSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import puppeteer, { type Browser } from "puppeteer-core";
import { afterEach, describe, expect, it } from "vitest";
import { ECHO_IMAGE } from "../support/fixtures.ts";
import { startExecutor, type Harness } from "../support/harness.ts";
import { scratchDir } from "../support/scratch.ts";

const CHROMIUM = "/usr/bin/chromium";

let h: Harness | undefined;
let browser: Browser | undefined;
afterEach(async () => {
  await browser?.close();
  browser = undefined;
  if (h) expect(await h.close()).toEqual([]);
  h = undefined;
});

describe("GET /ui", () => {
  it("shows the capacity, the tasks and the requests, live, in headless Chromium, with nothing failing and nothing but GETs to its own origin", async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(
        `The page test needs Debian's Chromium at ${CHROMIUM} (as root: apt-get install -y chromium)`,
      );
    h = await startExecutor({ cpu: 1, mem: 512, pull_stall_timeout: 5 });
    const res = await fetch(`${h.base}/ui`);
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(csp).toMatch(
      /default-src 'none'; script-src 'sha256-[A-Za-z0-9+/=]+'; style-src 'sha256-[A-Za-z0-9+/=]+'; connect-src 'self'/,
    );
    expect(csp).not.toContain("unsafe");

    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu"],
    });
    const page = await browser.newPage();
    const problems: string[] = [];
    const requests: string[] = [];
    page.on("pageerror", (e) => problems.push(`page error: ${(e as Error).message}`));
    page.on(
      "console",
      (m) =>
        (m.type() === "error" || m.type() === "warn") &&
        problems.push(`console ${m.type()}: ${m.text()}`),
    );
    page.on("requestfailed", (r) => problems.push(`failed: ${r.url()} ${r.failure()?.errorText}`));
    page.on("response", (r) => r.status() >= 400 && problems.push(`${r.status()}: ${r.url()}`));
    page.on("request", (r) => requests.push(`${r.method()} ${r.url()}`));
    await page.setViewport({ width: 1100, height: 800 });
    await page.goto(`${h.base}/ui`, { waitUntil: "load" });
    const text = (id: string) => page.$eval(`#${id}`, (e) => e.textContent ?? "");
    await page.waitForFunction(() => document.getElementById("state")?.textContent === "serving", {
      timeout: 10_000,
    });
    expect(await text("capacity")).toContain("0 of 1 cores reserved, 1 free");
    expect(await text("capacity")).toContain("0 of 512 MB reserved, 512 free");
    expect(await text("tasks")).toContain("no task is running");
    expect(await text("queue")).toBe("0 request(s) waiting in line");

    // A task started after the page loaded appears without a reload, with the request that started it.
    expect(
      (
        await h.execute({
          id: ECHO_IMAGE,
          resource: { cpu: 0.3, mem: 64 },
          input: "seen by the page",
        })
      ).body.success,
    ).toBe(true);
    // The page polls: a poll taken while the task was starting shows it "starting", the next one "ready".
    const want = [ECHO_IMAGE, "ready", "0.3", "64 MB", "1", "0"];
    const cells = () =>
      page.$$eval("#tasks tr", (rows) =>
        rows.map((r) => [...r.children].map((c) => c.textContent ?? "")),
      );
    await page
      .waitForFunction(
        (w: string[]) => {
          const row = document.querySelectorAll("#tasks tr")[1];
          const have = row ? [...row.children].map((c) => c.textContent) : [];
          return w.every((v) => have.includes(v));
        },
        { timeout: 10_000 },
        want,
      )
      .catch(() => undefined); // the assertion below names what the row shows instead
    expect((await cells())[1]).toEqual(expect.arrayContaining(want));
    await page.waitForFunction(
      () => document.getElementById("requests")?.textContent?.includes("cold"),
      { timeout: 10_000 },
    );
    expect(await text("capacity")).toContain("0.3 of 1 cores reserved");
    expect(await page.$$eval("#chart rect", (r) => r.length)).toBe(1);

    // What each key used: the cold request's row, then a second key used twice; a click on a
    // column's head sorts by it, a second click the other way.
    await page.waitForFunction(
      () => document.getElementById("usage")?.textContent?.includes("meca-test/echo:1"),
      { timeout: 10_000 },
    );
    for (let i = 0; i < 2; i++)
      expect(
        (await h.execute({ id: ECHO_IMAGE, resource: { cpu: 0.1, mem: 32 }, input: "x" })).status,
      ).toBe(200);
    const usageRows = () =>
      page.$$eval("#usage tr", (rows) =>
        rows.slice(1).map((r) => [...r.children].map((c) => c.textContent ?? "")),
      );
    await page.waitForFunction(() => document.querySelectorAll("#usage tr").length === 3, {
      timeout: 10_000,
    });
    // Sorted by requests, most first: the second key (2 requests, 32 MB), then the first (1, 64 MB).
    await page.waitForFunction(
      () => document.querySelectorAll("#usage tr")[1]?.children[4]?.textContent === "2",
      { timeout: 10_000 },
    );
    expect((await usageRows()).map((r) => [r[3], r[4], r[5]])).toEqual([
      ["32", "2", "1"],
      ["64", "1", "1"],
    ]);
    await page.click("#usage th:nth-child(4)"); // mem MB, largest first
    expect((await usageRows()).map((r) => r[3])).toEqual(["64", "32"]);
    await page.click("#usage th:nth-child(4)"); // again: smallest first
    expect((await usageRows()).map((r) => r[3])).toEqual(["32", "64"]);

    // A pull under way: a registry on 127.0.0.1 that accepts and never answers. The page shows the
    // image and the request waiting on it until the stall bound ends it.
    expect(await text("pulls")).toContain("no image is being pulled");
    const sockets = new Set<Socket>();
    const silent = createServer((s) => {
      sockets.add(s);
      s.on("error", () => {});
      s.resume();
    });
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const image = `127.0.0.1:${(silent.address() as { port: number }).port}/meca-test/slow:1`;
    const pulling = h.execute({ id: image, resource: { cpu: 0.1, mem: 32 }, input: "x" });
    await page.waitForFunction(
      () => document.getElementById("pulls")?.textContent?.includes("1 request(s)"),
      { timeout: 10_000 },
    );
    expect(await text("pulls")).toContain(image);
    expect((await pulling).body.error).toBe("IMAGE_PULL_FAILED");
    await page.waitForFunction(
      () => document.getElementById("pulls")?.textContent?.includes("no image is being pulled"),
      { timeout: 10_000 },
    );
    for (const s of sockets) s.destroy();
    silent.close();

    const shot = join(process.env.MECA_UI_SCREENSHOT_DIR ?? scratchDir("meca-ui-"), "ui.png");
    await page.screenshot({ path: shot, fullPage: true });
    expect(problems).toEqual([]);
    const foreign = requests.filter((r) => !r.startsWith(`GET ${h!.base}/`));
    expect(foreign).toEqual([]);
    expect(new Set(requests.map((r) => new URL(r.split(" ")[1]!).pathname))).toEqual(
      new Set(["/ui", "/stats", "/tasks", "/requests", "/usage"]),
    );
  });
});
