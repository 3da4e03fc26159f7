/**
 * The container image (`npm run build:image` → meca-executor:latest), run as
 * a MECA node runs it: the Docker socket mounted, `--network host`, and
 * `docker stop` to end it. Its own default config listens on every interface.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pkg from "../../package.json" with { type: "json" };
import { buildImage, IMAGE } from "../../build/build-image.ts";
import { docker, containerLogs } from "../support/docker-env.ts";
import { ECHO_IMAGE, TEST_LABEL } from "../support/fixtures.ts";
import { configYaml, post, taskContainers, waitExit, waitHealthy } from "../support/packaging.ts";
import { freePort } from "../support/second-engine.ts";

// Resources no other test file uses, so that container names never meet.
const resource = { cpu: 0.1, mem: 45 };
const label = Object.entries(TEST_LABEL).map(([k, v]) => `${k}=${v}`)[0]!;

let dir: string;
const containers: string[] = [];

beforeAll(async () => {
  await buildImage();
  dir = mkdtempSync(join(tmpdir(), "meca-image-"));
});

afterAll(() => {
  if (containers.length > 0) docker(["rm", "-f", ...containers]);
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** `docker run -d` of the image with the socket mounted; returns the container's name. */
function run(name: string, args: string[], command: string[] = []): string {
  const container = `meca-image-test-${name}-${process.pid}`;
  containers.push(container);
  docker(["run", "-d", "--name", container, "--label", label, "-v", "/var/run/docker.sock:/var/run/docker.sock", ...args, IMAGE, ...command]);
  return container;
}

describe(IMAGE, () => {
  it("has the executable as entrypoint and exposes port 2591", () => {
    const config = JSON.parse(docker(["image", "inspect", "-f", "{{json .Config}}", IMAGE])) as {
      Entrypoint: string[];
      ExposedPorts: Record<string, unknown>;
    };
    expect(config.Entrypoint).toEqual(["/usr/local/bin/meca-executor"]);
    expect(Object.keys(config.ExposedPorts)).toEqual(["2591/tcp"]);
    expect(docker(["run", "--rm", IMAGE, "--version"]).trim()).toBe(pkg.version);
  });

  it("reads /app/meca_executor.yaml and listens on all interfaces by default: reached through a port published on 127.0.0.1", async () => {
    const c = run("default", ["-p", "127.0.0.1::2591"]);
    const port = docker(["port", c, "2591/tcp"]).trim().split("\n")[0]!.split(":").at(-1);
    await waitHealthy(`http://127.0.0.1:${port}`, { why: () => containerLogs(c) });
    const logs = containerLogs(c);
    expect(logs).toContain('"config":"/app/meca_executor.yaml"');
    expect(logs).toContain('"host":"0.0.0.0","port":2591');
    docker(["stop", c]);
    expect(waitExit(c)).toBe(0);
  });

  it("with --network host and the socket mounted, executes a fixture task; docker stop removes its task containers", async () => {
    const instance = `image-host-${process.pid}`;
    const port = await freePort();
    const configFile = join(dir, "host.yaml");
    // Host networking shares the host's interfaces: listen on loopback only in a test.
    writeFileSync(configFile, configYaml({ instance, host: "127.0.0.1", port }));
    const c = run("host", ["--network", "host", "-v", `${configFile}:/app/meca_executor.yaml:ro`]);
    const base = `http://127.0.0.1:${port}`;
    await waitHealthy(base, { why: () => containerLogs(c) });
    const r = await post(`${base}/`, { id: ECHO_IMAGE, resource, input: "from the image" });
    expect(r).toEqual({ status: 200, body: { success: true, msg: "from the image" } });
    expect(taskContainers(instance)).toHaveLength(1);
    docker(["stop", c]);
    expect(waitExit(c)).toBe(0);
    expect(taskContainers(instance)).toEqual([]);
    expect(containerLogs(c)).toContain('"reason":"SIGTERM"');
  });
});
