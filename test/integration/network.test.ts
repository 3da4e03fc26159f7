/**
 * The `network: <name>` option (a shared network, an explicit opt-out of isolation): the executor image
 * attached to a Docker network (the test creates it), reached through a port
 * published on 127.0.0.1; its task containers join that network, are called
 * by name on 8080, and publish nothing.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildImage, IMAGE } from "../../build/build-image.ts";
import { LABELS } from "../../src/platform/docker/labels.ts";
import { docker, containerLogs } from "../support/docker-env.ts";
import { ECHO_IMAGE, TEST_LABEL } from "../support/fixtures.ts";
import { configYaml, post, taskContainers, waitExit, waitHealthy } from "../support/packaging.ts";

// Resources no other test file uses, so that container names never meet.
const resource = { cpu: 0.1, mem: 47 };
const label = Object.entries(TEST_LABEL).map(([k, v]) => `${k}=${v}`)[0]!;
const network = `meca-test-net-${process.pid}`;
const executor = `meca-network-test-${process.pid}`;
const instance = `network-${process.pid}`;

let dir: string;

beforeAll(async () => {
  await buildImage();
  dir = mkdtempSync(join(tmpdir(), "meca-network-"));
  docker(["network", "create", "--label", label, network]);
});

afterAll(() => {
  docker(["rm", "-f", executor, ...taskContainers(instance)]);
  docker(["network", "rm", network]);
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe("config `network`", () => {
  it("task containers join the network, are reached by name on 8080 and publish nothing", async () => {
    const configFile = join(dir, "meca.yaml");
    writeFileSync(configFile, configYaml({ instance, host: "0.0.0.0", network }));
    docker([
      ...[
        "run",
        "-d",
        "--name",
        executor,
        "--label",
        label,
        "--network",
        network,
        "-p",
        "127.0.0.1::2591",
      ],
      ...[
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-v",
        `${configFile}:/app/meca_executor.yaml:ro`,
        IMAGE,
      ],
    ]);
    const port = docker(["port", executor, "2591/tcp"]).trim().split("\n")[0]!.split(":").at(-1);
    const base = `http://127.0.0.1:${port}`;
    await waitHealthy(base, { why: () => containerLogs(executor) });

    const r = await post(`${base}/`, { id: ECHO_IMAGE, resource, input: "by name" });
    expect(r).toEqual({ status: 200, body: { success: true, msg: "by name" } });
    const [task] = taskContainers(instance);
    const inspect = JSON.parse(docker(["inspect", task!]))[0];
    expect(inspect.HostConfig.NetworkMode).toBe(network);
    expect(inspect.HostConfig.PortBindings ?? {}).toEqual({});
    expect(Object.keys(inspect.NetworkSettings.Networks)).toEqual([network]);
    expect(inspect.Config.Labels[LABELS.instance]).toBe(instance);
    // Reused warm, by name, on the second request.
    expect((await post(`${base}/`, { id: ECHO_IMAGE, resource, input: "again" })).body.msg).toBe(
      "again",
    );
    expect(taskContainers(instance)).toEqual([task]);

    docker(["stop", executor]);
    expect(waitExit(executor)).toBe(0);
    expect(taskContainers(instance)).toEqual([]);
  });
});
