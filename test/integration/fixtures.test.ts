/**
 * The fixture task images behave as the other integration tests assume.
 * Containers are made with the docker CLI, labelled meca.test=1, publish 8080
 * on 127.0.0.1 only, and are removed after the file.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "undici";
import { afterAll, describe, expect, it } from "vitest";
import { docker, hasRuntime } from "../support/docker-env.ts";
import {
  CRASH_EXIT_CODE,
  CRASH_IMAGE,
  CRASH_LOG_LINES,
  ECHO_IMAGE,
  NEVER_READY_IMAGE,
  PULLED_IMAGE,
  READY_LATE_IMAGE,
  READY_MARK,
  REGISTRY,
  SGX_IMAGE,
  CPU_IMAGE,
  releaseHeld,
  taskBody,
} from "../support/fixtures.ts";

const started: string[] = [];
const tempDirs: string[] = [];

afterAll(() => {
  if (started.length > 0) docker(["rm", "-f", ...started]);
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** Starts `image` detached with 8080 published on loopback; returns its id and base URL. */
function run(image: string, args: string[] = []): { id: string; url: string } {
  const id = docker([
    "run",
    "-d",
    "--label",
    "meca.test=1",
    "-p",
    "127.0.0.1::8080",
    ...args,
    image,
  ]).trim();
  started.push(id);
  return {
    id,
    // Looked up on use: a container that has exited no longer has the port.
    get url() {
      const port = docker(["port", id, "8080/tcp"]).trim().split("\n")[0].split(":").pop();
      return `http://127.0.0.1:${port}`;
    },
  };
}

/** stdout and stderr of a container, as lines. */
function logLines(id: string): string[] {
  const res = spawnSync("docker", ["logs", id], { encoding: "utf8" });
  return `${res.stdout}${res.stderr}`.split("\n").filter(Boolean);
}

/** Polls `probe` until it returns a value, or fails after `timeoutMs`. */
async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`, { cause: last });
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The engine copies container output to its log asynchronously: poll for a line. */
const waitForLine = (id: string, line: string) =>
  eventually(`"${line}" from ${id}`, () => (logLines(id).includes(line) ? true : undefined));
const waitForMark = (id: string) => waitForLine(id, READY_MARK);

/** Resolves once the task answers `GET /` (it may refuse connections until it listens). */
const waitForServing = (url: string) =>
  eventually(`${url} to answer`, async () => {
    const res = await fetch(`${url}/`, { signal: AbortSignal.timeout(5_000) });
    return res.ok ? await res.text() : undefined;
  });

async function post(
  url: string,
  body: string,
  path = "/",
): Promise<{ status: number; text: string }> {
  const res = await fetch(`${url}${path}`, {
    method: "POST",
    body,
    signal: AbortSignal.timeout(20_000),
  });
  return { status: res.status, text: await res.text() };
}

const exitCode = (id: string) => Number(docker(["wait", id]).trim());

describe("meca-test/echo:1", () => {
  it("echoes bodies byte for byte and answers the special bodies", async () => {
    const { id, url } = run(ECHO_IMAGE);
    await waitForMark(id);
    expect(await (await fetch(`${url}/`)).text()).toBe("ok");
    expect(await post(url, "hello")).toEqual({ status: 200, text: "hello" });
    const unicode = 'héllo\n{"a":[1,2]}\r\n\u{1f600}';
    expect((await post(url, unicode)).text).toBe(unicode);
    expect(await post(url, "")).toEqual({ status: 200, text: "" });
    const hostname = docker(["inspect", "-f", "{{.Config.Hostname}}", id]).trim();
    expect((await post(url, taskBody.whoami)).text).toBe(hostname);
    expect(await post(url, taskBody.status(503))).toEqual({ status: 503, text: "failed with 503" });
    expect(await post(url, taskBody.sleep(50))).toEqual({ status: 200, text: "slept:50" });
    expect((await post(url, taskBody.big(300_000))).text).toBe("x".repeat(300_000));
    const large = "0123456789abcdef".repeat(64 * 1024); // 1 MiB
    expect((await post(url, large)).text).toBe(large);
    expect((await fetch(`${url}/nope`)).status).toBe(404);
  });

  it("holds a request until its release arrives on another connection, serving others meanwhile", async () => {
    const { id, url } = run(ECHO_IMAGE);
    await waitForMark(id);
    let answered = false;
    const held = post(url, taskBody.hold("a")).then((r) => ((answered = true), r));
    const other = post(url, taskBody.hold("b"));
    // Served meanwhile; and a release that names nobody held releases nothing.
    expect(await post(url, "meanwhile")).toEqual({ status: 200, text: "meanwhile" });
    expect(await post(url, taskBody.release("nobody"))).toEqual({
      status: 200,
      text: "released:0",
    });
    expect(answered).toBe(false);
    expect(await releaseHeld(url, "a")).toBe(1);
    expect(await held).toEqual({ status: 200, text: "held:a" });
    expect(await releaseHeld(url, "b")).toBe(1);
    expect(await other).toEqual({ status: 200, text: "held:b" });
  });

  it("serves many concurrent and pipelined requests on kept-alive connections", async () => {
    const { id, url } = run(ECHO_IMAGE);
    await waitForMark(id);
    const sleepers = Array.from({ length: 100 }, () => post(url, taskBody.sleep(200)));
    const echoes = Array.from({ length: 100 }, (_, i) => post(url, `body-${i}`));
    expect((await Promise.all(sleepers)).every((r) => r.text === "slept:200")).toBe(true);
    expect((await Promise.all(echoes)).map((r) => r.text)).toEqual(
      echoes.map((_, i) => `body-${i}`),
    );

    const agent = new Agent({ connections: 1, pipelining: 8 });
    try {
      const bodies = Array.from({ length: 40 }, (_, i) =>
        i % 5 === 0 ? taskBody.sleep(20) : `pipelined-${i}`,
      );
      const answers = await Promise.all(
        bodies.map(async (body) => {
          const res = await request(`${url}/`, { method: "POST", body, dispatcher: agent });
          return res.body.text();
        }),
      );
      expect(answers).toEqual(bodies.map((b) => (b.startsWith("sleep:") ? "slept:20" : b)));
    } finally {
      await agent.close();
    }
  });

  it("exits with the code that `exit:<code>` names, without answering", async () => {
    const { id, url } = run(ECHO_IMAGE);
    await waitForMark(id);
    await expect(post(url, taskBody.exit(7))).rejects.toThrow();
    expect(exitCode(id)).toBe(7);
  });

  it("is killed for memory when asked to allocate past its limit", async () => {
    const { id, url } = run(ECHO_IMAGE, ["--memory", "32m", "--memory-swap", "32m"]);
    await waitForMark(id);
    await expect(post(url, taskBody.oom)).rejects.toThrow();
    expect(exitCode(id)).toBe(137);
    expect(docker(["inspect", "-f", "{{.State.OOMKilled}}", id]).trim()).toBe("true");
  });

  it("runs under gVisor (runsc) when the engine has it", async (ctx) => {
    if (!hasRuntime("runsc")) ctx.skip();
    const { id, url } = run(ECHO_IMAGE, ["--runtime", "runsc"]);
    await waitForMark(id);
    await waitForServing(url);
    expect(await post(url, "under gvisor")).toEqual({ status: 200, text: "under gvisor" });
  });
});

describe("meca-test/ready-late:1", () => {
  it("prints the mark before it listens, then echoes", async () => {
    const { id, url } = run(READY_LATE_IMAGE);
    await waitForMark(id);
    expect(await waitForServing(url)).toBe("ok");
    await waitForLine(id, "listening on 8080");
    expect(logLines(id)).toEqual([READY_MARK, "listening on 8080"]);
    expect(await post(url, "late")).toEqual({ status: 200, text: "late" });
  });
});

describe("meca-test/crash:1", () => {
  it("exits 3 with its two log lines and no mark", () => {
    const { id } = run(CRASH_IMAGE);
    expect(exitCode(id)).toBe(CRASH_EXIT_CODE);
    expect(logLines(id).sort()).toEqual([...CRASH_LOG_LINES].sort());
  });
});

describe("meca-test/never-ready:1", () => {
  it("serves like echo but never prints the mark", async () => {
    const { id, url } = run(NEVER_READY_IMAGE);
    expect(await waitForServing(url)).toBe("ok");
    expect(await post(url, "still here")).toEqual({ status: 200, text: "still here" });
    await waitForLine(id, "listening on 8080");
    expect(logLines(id)).toEqual(["listening on 8080"]);
  });
});

describe("meca-test/cpu:1", () => {
  it("echoes like echo, burning at least 50 ms of CPU time per request", async () => {
    const { id, url } = run(CPU_IMAGE);
    await waitForMark(id);
    const pid = docker(["inspect", "-f", "{{.State.Pid}}", id]).trim();
    // utime + stime of the task's process, in clock ticks (100 a second on Linux).
    const cpuTicks = () =>
      readFileSync(`/proc/${pid}/stat`, "utf8")
        .split(") ")[1]!
        .split(" ")
        .slice(11, 13)
        .reduce((n, v) => n + Number(v), 0);
    const before = cpuTicks();
    for (let i = 0; i < 10; i++)
      expect(await post(url, `in-${i}`)).toEqual({ status: 200, text: `in-${i}` });
    // 10 requests × 50 ms = 50 ticks; the kernel's tick accounting may count one or two fewer than
    // the task's own nanosecond clock, where echo burns next to nothing.
    expect(cpuTicks() - before).toBeGreaterThanOrEqual(45);
  });
});

describe("meca-test/sgx:1", () => {
  it("answers /ra and /run, refuses POST /, and reports no SGX without the device", async () => {
    const { id, url } = run(SGX_IMAGE);
    await waitForMark(id);
    expect(logLines(id)).toEqual(["sgx-device: no", "aesmd: no", READY_MARK]);
    const ra = await (await fetch(`${url}/ra`)).text();
    expect(ra).toMatch(/^ra-report:[0-9a-f]{32}$/);
    expect(await (await fetch(`${url}/ra`)).text()).toBe(ra);
    expect(await post(url, "input", "/run")).toEqual({ status: 200, text: "sgx:input" });
    expect((await post(url, "input")).status).toBe(404);
  });

  it.skipIf(process.getuid?.() !== 0)(
    "sees the device node and the AESM folder it is given",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "meca-sgx-"));
      tempDirs.push(dir);
      const device = join(dir, "enclave");
      const aesmd = join(dir, "aesmd");
      mkdirSync(aesmd);
      const mknod = spawnSync("mknod", [device, "c", "1", "3"], { encoding: "utf8" });
      expect(mknod.status, mknod.stderr).toBe(0);
      const { id } = run(SGX_IMAGE, [
        "--device",
        `${device}:/dev/sgx/enclave`,
        "-v",
        `${aesmd}:/var/run/aesmd`,
      ]);
      await waitForMark(id);
      expect(logLines(id)).toEqual(["sgx-device: yes", "aesmd: yes", READY_MARK]);
    },
  );
});

describe("127.0.0.1:5055/meca-test/pulled:1", () => {
  it("is served by the local registry and pulls as the echo image", async () => {
    const manifest = await fetch(`http://${REGISTRY}/v2/meca-test/pulled/manifests/1`, {
      method: "HEAD",
      headers: { accept: "application/vnd.docker.distribution.manifest.v2+json" },
    });
    expect(manifest.status).toBe(200);
    try {
      docker(["pull", "-q", PULLED_IMAGE]);
      expect(
        docker([
          "image",
          "inspect",
          "-f",
          '{{ index .Config.Labels "meca.fixture.mode" }}',
          PULLED_IMAGE,
        ]).trim(),
      ).toBe("echo");
    } finally {
      // Other tests rely on the image being absent locally.
      spawnSync("docker", ["image", "rm", PULLED_IMAGE]);
    }
  });
});
