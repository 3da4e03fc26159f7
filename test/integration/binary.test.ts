/**
 * The single executable (`npm run build` → dist/meca-executor) run the way a
 * bare host runs it: copied into an empty folder, with an empty PATH (no
 * Node.js anywhere on it) and no node_modules, koffi loaded from the asset
 * embedded in the executable.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import pkg from "../../package.json" with { type: "json" };
import { buildExecutable } from "../../build/build.ts";
import { ECHO_IMAGE } from "../support/fixtures.ts";
import { configYaml, post, taskContainers, waitHealthy } from "../support/packaging.ts";
import { freePort } from "../support/second-engine.ts";

// Resources no other test file uses, so that container names never meet.
const resource = { cpu: 0.1, mem: 43 };

let dir: string;
let binary: string;
let emptyPath: string;
let nvml: string;
const running: ChildProcess[] = [];

beforeAll(async () => {
  const built = await buildExecutable();
  dir = mkdtempSync(join(tmpdir(), "meca-binary-"));
  mkdirSync(join(dir, "bare"));
  binary = join(dir, "bare", "meca-executor");
  copyFileSync(built.path, binary);
  execFileSync("chmod", ["755", binary]);
  emptyPath = join(dir, "empty-bin");
  mkdirSync(emptyPath);
  nvml = execFileSync("sh", [new URL("../fixtures/nvml/build.sh", import.meta.url).pathname], {
    encoding: "utf8",
  }).trim();
});

afterEach(() => {
  for (const child of running.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
});

afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** Starts the executable bare: an empty PATH, only TMPDIR set, its folder as the working directory. */
async function startBare(name: string, config: Record<string, unknown>) {
  const port = await freePort();
  const instance = `binary-${name}-${process.pid}`;
  const tmp = join(dir, `tmp-${name}`);
  mkdirSync(tmp);
  const configFile = join(dir, `${name}.yaml`);
  writeFileSync(configFile, configYaml({ instance, port, log_format: "json", ...config }));
  const log: string[] = [];
  const child = spawn(binary, ["--config", configFile], {
    cwd: join(dir, "bare"),
    env: { PATH: emptyPath, TMPDIR: tmp },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.push(child);
  child.stdout!.on("data", (d: Buffer) => log.push(d.toString()));
  child.stderr!.on("data", (d: Buffer) => log.push(d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const base = `http://127.0.0.1:${port}`;
  await waitHealthy(base, { why: () => log.join("").slice(-3000) });
  return { base, instance, tmp, child, exit, log };
}

describe("dist/meca-executor", () => {
  it("prints the package version with no Node.js on PATH", () => {
    const out = execFileSync(binary, ["--version"], { env: { PATH: emptyPath }, encoding: "utf8" });
    expect(out.trim()).toBe(pkg.version);
    expect(readdirSync(join(dir, "bare"))).toEqual(["meca-executor"]);
  });

  it("serves bare, binds NVML with koffi from its embedded asset, and POST /stop removes its tasks and exits 0", async () => {
    const x = await startBare("stop", { has_gpu: true, nvml_library: nvml });
    const stats = (await (await fetch(`${x.base}/stats`)).json()) as {
      gpu_model: string;
      task_gpu: number;
    };
    expect(stats).toMatchObject({ gpu_model: "NVIDIA Fake A100", task_gpu: 2 });
    // koffi.node was unpacked into a private folder under TMPDIR, loaded, and deleted.
    expect(readdirSync(x.tmp)).toEqual([]);
    const r = await post(`${x.base}/`, { id: ECHO_IMAGE, resource, input: "bare" });
    expect(r).toEqual({ status: 200, body: { success: true, msg: "bare" } });
    expect(taskContainers(x.instance)).toHaveLength(1);
    expect((await post(`${x.base}/stop`)).status).toBe(200);
    expect(await x.exit).toBe(0);
    expect(taskContainers(x.instance)).toEqual([]);
  });

  it("removes its task containers and exits 0 on SIGTERM", async () => {
    const x = await startBare("sigterm", {});
    expect(
      (await post(`${x.base}/`, { id: ECHO_IMAGE, resource, input: "then SIGTERM" })).status,
    ).toBe(200);
    expect(taskContainers(x.instance)).toHaveLength(1);
    x.child.kill("SIGTERM");
    expect(await x.exit).toBe(0);
    expect(taskContainers(x.instance)).toEqual([]);
    const lines = x.log
      .join("")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { msg: string });
    expect(lines.map((l) => l.msg)).toContain("Stopped");
  });

  it("loads koffi from its embedded asset only, never from a node_modules on disk", () => {
    const configFile = join(dir, "doctor.yaml");
    writeFileSync(
      configFile,
      configYaml({ instance: `binary-doctor-${process.pid}`, has_gpu: true, nvml_library: nvml }),
    );
    const doctor = (tmp: string) =>
      spawnSync(binary, ["doctor", "--config", configFile], {
        env: { PATH: emptyPath, TMPDIR: tmp },
        encoding: "utf8",
      }).stdout;
    const tmp = join(dir, "tmp-doctor");
    mkdirSync(tmp);
    expect(doctor(tmp)).toMatch(/\[ok +\] nvml .*loaded: driver 550\.54\.15, 2 GPU\(s\)/);
    expect(readdirSync(tmp)).toEqual([]);
    // With nowhere to unpack the asset, NVML cannot be bound: nothing else supplies koffi.
    expect(doctor(join(dir, "no-such-dir"))).toContain("Cannot load koffi from the executable");
  });

  it("stops start-up on a bad config, naming the key, with exit code 2", () => {
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "cpu: 0.25\n");
    let status = 0;
    let stderr = "";
    try {
      execFileSync(binary, ["--config", bad], {
        env: { PATH: emptyPath },
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      });
    } catch (err) {
      status = (err as { status: number }).status;
      stderr = String((err as { stderr: unknown }).stderr);
    }
    expect(status).toBe(2);
    expect(stderr).toContain("cpu");
  });
});
