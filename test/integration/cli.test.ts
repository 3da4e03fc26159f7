import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import pkg from "../../package.json" with { type: "json" };
import { ECHO_IMAGE } from "../support/fixtures.ts";
import { docker } from "../support/docker-env.ts";
import { until } from "../support/harness.ts";
import { runCli, spawnExecutor } from "../support/process.ts";
import { scratchDir } from "../support/scratch.ts";

const small = { cpu: 0.1, mem: 32 };
const instanceContainers = (instance: string) =>
  docker(["ps", "-aq", "--filter", `label=meca.executor.instance=${instance}`]).trim();
const instanceNetworks = (instance: string) =>
  docker(["network", "ls", "-q", "--filter", `label=meca.executor.instance=${instance}`]).trim();

function configFile(text: string): string {
  const dir = scratchDir("meca-cli-");
  writeFileSync(join(dir, "c.yaml"), text);
  return join(dir, "c.yaml");
}

describe("the meca-executor command", () => {
  it("prints its version and its flags", async () => {
    expect(await runCli(["--version"])).toEqual({ code: 0, out: `${pkg.version}\n` });
    const help = await runCli(["--help"]);
    expect(help.code).toBe(0);
    for (const flag of ["--config", "--port", "--host", "--log-format", "doctor"])
      expect(help.out).toContain(flag);
  });

  it("stops at start-up on a bad config, naming the key and the reason", async () => {
    const r = await runCli(["--config", configFile("timeout: soon\nsgx:\n  enable: 1\n")]);
    expect(r.code).toBe(2);
    expect(r.out).toContain("timeout: timeout must be a number of minutes");
    expect(r.out).toContain("sgx.enable");
    expect(r.out).not.toMatch(/\n\s+at /);
  });

  it("starts without a Docker engine, says so, answers ENGINE_UNAVAILABLE (200 by default, as MECA's clients read it; /health 503), and names the install", async () => {
    const ex = await spawnExecutor([], { DOCKER_HOST: "unix:///tmp/meca-no-such-docker.sock" });
    try {
      await until(() => ex.output().includes("Docker engine unreachable"), "engine warning");
      expect(ex.output()).toContain("apt-get install docker.io");
      const health = await ex.get("/health");
      expect(health.status).toBe(503);
      expect(health.body.engine).toBe("unreachable");
      const r = await ex.post("/", { id: ECHO_IMAGE, resource: small, input: "x" });
      expect(r.status).toBe(200);
      expect(r.body.success).toBe(false);
      expect(r.body.error).toBe("ENGINE_UNAVAILABLE");
      expect(r.headers.get("retry-after")).toBeTruthy();
    } finally {
      ex.child.kill("SIGTERM");
      await ex.exited;
    }
  });

  it("removes every task container on SIGTERM and exits 0", async () => {
    const instance = `cli-term-${process.pid}`;
    const ex = await spawnExecutor(["--config", configFile(`instance: ${instance}\n`)]);
    const r = await ex.post("/", { id: ECHO_IMAGE, resource: small, input: "hi" });
    expect(r.body).toEqual({ success: true, msg: "hi" });
    expect(instanceContainers(instance)).not.toBe("");
    ex.child.kill("SIGTERM");
    expect(await ex.exited).toBe(0);
    expect(instanceContainers(instance)).toBe("");
  });

  it("answers POST /stop, then cleans up and exits 0", async () => {
    const instance = `cli-stop-${process.pid}`;
    const ex = await spawnExecutor(["--config", configFile(`instance: ${instance}\n`)]);
    await ex.post("/", { id: ECHO_IMAGE, resource: small, input: "hi" });
    const stop = await ex.post("/stop");
    expect(stop).toMatchObject({ status: 200, body: { success: true } });
    expect(await ex.exited).toBe(0);
    expect(instanceContainers(instance)).toBe("");
  });

  it("adopts what an executor killed with SIGKILL left warm when started again, and its stop removes it", async () => {
    const instance = `cli-kill-${process.pid}`;
    const file = configFile(`instance: ${instance}\n`);
    const first = await spawnExecutor(["--config", file]);
    await first.post("/", { id: ECHO_IMAGE, resource: small, input: "hi" });
    first.child.kill("SIGKILL");
    await first.exited;
    const left = instanceContainers(instance);
    expect(left).not.toBe("");
    const second = await spawnExecutor(["--config", file]);
    try {
      expect(second.output()).toContain("Adopted tasks left by an earlier run");
      expect(instanceContainers(instance)).toBe(left);
      expect(
        (await second.post("/", { id: ECHO_IMAGE, resource: small, input: "again" })).body,
      ).toEqual({ success: true, msg: "again" });
    } finally {
      // Stopped at once, maybe while it still sweeps the first one's networks: it finishes first.
      second.child.kill("SIGTERM");
      await second.exited;
    }
    expect(instanceContainers(instance)).toBe("");
    expect(instanceNetworks(instance)).toBe("");
  });
});
