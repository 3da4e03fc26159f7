/**
 * The container image (`npm run build:image` → meca-executor:latest), started the ways MECA starts
 * it, with no flags beyond each recipe: the seed's `docker run` line on its network and address,
 * the desktop app's container options (dockerode, as the app creates it), and host networking.
 * Requests come in the clients' own shapes, from a client container on the MECA network and from
 * 127.0.0.1 through a port the test publishes; `docker stop` with Docker's default grace ends it.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pkg from "../../package.json" with { type: "json" };
import { buildImage, IMAGE } from "../../build/build-image.ts";
import { LABELS } from "../../src/platform/docker/labels.ts";
import { containerLogs, docker } from "../support/docker-env.ts";
import { containerEvents, engineNow } from "../support/docker-events.ts";
import { ECHO_IMAGE, TEST_LABEL } from "../support/fixtures.ts";
import { configYaml, post, taskContainers, waitExit, waitHealthy } from "../support/packaging.ts";
import { freePort } from "../support/process.ts";

const CLIENT_IMAGE = "meca-test/client:1";
const label = Object.entries(TEST_LABEL).map(([k, v]) => `${k}=${v}`)[0]!;
/** The seed's and the desktop's configs name no instance: their task containers carry "default". */
const DEFAULT_INSTANCE = "default";

let dir: string;
const containers: string[] = [];
const networks: string[] = [];

beforeAll(async () => {
  await buildImage();
  dir = mkdtempSync(join(tmpdir(), "meca-image-"));
});

afterAll(() => {
  if (containers.length > 0) docker(["rm", "-f", ...containers]);
  // An executor removed by force (a failed case) leaves its tasks and their networks behind.
  const left = taskContainers(DEFAULT_INSTANCE);
  if (left.length > 0) docker(["rm", "-f", ...left]);
  const nets = docker([
    "network",
    "ls",
    "-q",
    "--filter",
    `label=${LABELS.instance}=${DEFAULT_INSTANCE}`,
  ])
    .split("\n")
    .filter(Boolean);
  if (nets.length > 0) docker(["network", "rm", ...nets]);
  for (const n of networks) docker(["network", "rm", n]);
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** `docker run -d` of the image with the socket mounted and `args`; returns the container's name. */
function run(name: string, args: string[], command: string[] = []): string {
  const container = `meca-image-test-${name}-${process.pid}`;
  containers.push(container);
  docker([
    "run",
    "-d",
    "--name",
    container,
    "--label",
    label,
    "-v",
    "/var/run/docker.sock:/var/run/docker.sock",
    ...args,
    IMAGE,
    ...command,
  ]);
  return container;
}

/** The first host port Docker published for `container`'s 2591. */
function publishedPort(container: string): string {
  return docker(["port", container, "2591/tcp"]).trim().split("\n")[0]!.split(":").at(-1)!;
}

/**
 * One request from a client container on `network`, as a MECA client there sends it (a new
 * connection, JSON body); the answer's status and parsed body.
 */
function fromNetwork(
  network: string,
  address: string,
  path: string,
  body?: unknown,
): { status: number; body: any } {
  const out = execFileSync(
    "docker",
    [
      "run",
      "--rm",
      "--label",
      label,
      "--network",
      network,
      CLIENT_IMAGE,
      address,
      "2591",
      path,
      ...(body === undefined ? [] : [JSON.stringify(body)]),
    ],
    { encoding: "utf8" },
  );
  const [status, ...rest] = out.split("\n");
  return { status: Number(status), body: JSON.parse(rest.join("\n")) };
}

/** The task container of the default instance that runs `image`, as Docker inspects it. */
function taskOf(image: string, cpu: number) {
  const found = taskContainers(DEFAULT_INSTANCE)
    .map((name) => JSON.parse(docker(["inspect", name]))[0])
    .filter((c) => c.Config.Labels[LABELS.image] === image && c.HostConfig.NanoCpus === cpu * 1e9);
  expect(found).toHaveLength(1);
  return found[0];
}

/** A bridge network the test owns, with a subnet of its own so that `--ip` works. */
function createNetwork(name: string): { subnet: string; address: string } {
  for (let third = 1; third <= 40; third++) {
    const subnet = `10.213.${third}.0/24`;
    try {
      docker(["network", "create", "--label", label, "--subnet", subnet, name]);
      networks.push(name);
      return { subnet, address: `10.213.${third}.200` };
    } catch {
      // taken: try the next one
    }
  }
  throw new Error("No free 10.213.x.0/24 subnet for the test network");
}

const STATS_FIELDS = [
  "total_cpu",
  "total_mem",
  "used_cpu",
  "used_mem",
  "task_cpu",
  "task_mem",
  "task_used_cpu",
  "task_used_mem",
  "gpu_model",
  "task_gpu",
  "task_used_gpu",
];

describe(IMAGE, () => {
  it("has the executable as entrypoint, port 2591, a HEALTHCHECK by the executable itself, and no config file baked in", () => {
    const config = JSON.parse(docker(["image", "inspect", "-f", "{{json .Config}}", IMAGE])) as {
      Entrypoint: string[];
      ExposedPorts: Record<string, unknown>;
      Healthcheck: { Test: string[] };
    };
    expect(config.Entrypoint).toEqual(["/usr/local/bin/meca-executor"]);
    expect(Object.keys(config.ExposedPorts)).toEqual(["2591/tcp"]);
    expect(config.Healthcheck.Test).toEqual(["CMD", "/usr/local/bin/meca-executor", "health"]);
    expect(docker(["run", "--rm", IMAGE, "--version"]).trim()).toBe(pkg.version);
  });

  it("on Docker's default bridge with no config: listens on its own addresses, puts each task on a network of its own, and `health` says healthy", async () => {
    const c = run("default", ["-p", "127.0.0.1::2591"]);
    const base = `http://127.0.0.1:${publishedPort(c)}`;
    await waitHealthy(base, { why: () => containerLogs(c) });
    const logs = containerLogs(c);
    expect(logs).toContain('"config":"(built-in defaults)"');
    // Loopback and its own address on the network it was started on; never 0.0.0.0.
    const ip = JSON.parse(docker(["inspect", c]))[0].NetworkSettings.Networks.bridge
      .IPAddress as string;
    expect(logs).toContain(`"hosts":["127.0.0.1","${ip}"],"port":2591`);
    const tasks = (await (await fetch(`${base}/tasks`)).json()) as {
      network: { mode: string; network: string; reason: string };
    };
    expect(tasks.network).toMatchObject({ mode: "isolated" });
    expect(tasks.network.reason).toContain(
      `the executor runs in container "${c}": each task on a network of its own, which the executor joins`,
    );
    const r = await post(`${base}/`, {
      id: ECHO_IMAGE,
      resource: { cpu: 0.1, mem: 45 },
      input: "over the bridge",
    });
    expect(r).toEqual({ status: 200, body: { success: true, msg: "over the bridge" } });
    expect(
      execFileSync("docker", ["exec", c, "/usr/local/bin/meca-executor", "health"], {
        encoding: "utf8",
      }),
    ).toBe("");
    docker(["stop", c]);
    expect(waitExit(c)).toBe(0);
    expect(taskContainers(DEFAULT_INSTANCE)).toEqual([]);
  });

  it("with --network host: listens on loopback, tasks on networks of their own called by address; docker stop removes its task containers", async () => {
    const instance = `image-host-${process.pid}`;
    const port = await freePort();
    const configFile = join(dir, "host.yaml");
    writeFileSync(configFile, configYaml({ instance, port }));
    const c = run("host", ["--network", "host", "-v", `${configFile}:/app/meca_executor.yaml:ro`]);
    const base = `http://127.0.0.1:${port}`;
    await waitHealthy(base, { why: () => containerLogs(c) });
    expect(containerLogs(c)).toContain(`"hosts":["127.0.0.1"],"port":${port}`);
    const r = await post(`${base}/`, {
      id: ECHO_IMAGE,
      resource: { cpu: 0.1, mem: 46 },
      input: "from the image",
    });
    expect(r).toEqual({ status: 200, body: { success: true, msg: "from the image" } });
    expect(taskContainers(instance)).toHaveLength(1);
    docker(["stop", c]);
    expect(waitExit(c)).toBe(0);
    expect(taskContainers(instance)).toEqual([]);
    expect(containerLogs(c)).toContain('"reason":"SIGTERM"');
  });

  it("the seed's docker run line, its sample config and its requests: from the MECA network and from 127.0.0.1", async () => {
    const network = `meca-test-seed-${process.pid}`;
    const { address } = createNetwork(network);
    const configFile = join(dir, "seed.yaml");
    writeFileSync(configFile, "type: docker\ntimeout: 1\ncpu: 2\nmem: 2048\n"); // the seed's sample config: these four keys only
    const port = await freePort();
    // The seed's line, plus a name and a label to clean up, and the port the test publishes.
    const c = run("seed", [
      "-v",
      `${configFile}:/app/meca_executor.yaml`,
      `--net=${network}`,
      `--ip=${address}`,
      "-p",
      `127.0.0.1:${port}:2591`,
    ]);
    const base = `http://127.0.0.1:${port}`;
    await waitHealthy(base, { why: () => containerLogs(c) });
    expect(containerLogs(c)).toContain(
      `"reason":"network: auto, and the executor runs in container \\"${c}\\": each task on a network of its own`,
    );

    // The host actor: its task's config.json as `resource`, on a new connection from the network.
    const actor = fromNetwork(network, address, "/", {
      id: ECHO_IMAGE,
      resource: { resource: { cpu: 0.5, mem: 64 } },
      input: '{"name":"sbip"}',
    });
    expect(actor).toEqual({ status: 200, body: { success: true, msg: '{"name":"sbip"}' } });
    const task = taskOf(ECHO_IMAGE, 0.5);
    expect(task.HostConfig.Memory).toBe(64 * 2 ** 20);
    // On a network of its own, which the executor joined; nothing published.
    const [taskNet] = Object.keys(task.NetworkSettings.Networks);
    expect(taskNet).not.toBe(network);
    expect(task.HostConfig.PortBindings ?? {}).toEqual({});
    const executorOnTaskNet = JSON.parse(docker(["inspect", c]))[0].NetworkSettings.Networks[
      taskNet!
    ].IPAddress as string;
    expect(executorOnTaskNet).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    // From inside the task: the executor's API is on neither its address there nor on the MECA network.
    const probe = async (target: string) =>
      (
        await post(`${base}/`, {
          id: ECHO_IMAGE,
          resource: { resource: { cpu: 0.5, mem: 64 } },
          input: `connect:${target}`,
        })
      ).body.msg;
    expect(await probe(`${executorOnTaskNet}:2591`)).toBe("refused");
    expect(await probe(`${address}:2591`)).not.toBe("connected");

    // The same from 127.0.0.1, in the desktop app's task-test shape.
    const desktop = await post(`${base}/`, {
      id: ECHO_IMAGE,
      resource: { task_cpu: 0.3, task_mem: 96 },
      useGpu: false,
      gpuCount: 0,
      useSgx: false,
      input: "local",
    });
    expect(desktop).toEqual({ status: 200, body: { success: true, msg: "local" } });
    expect(taskOf(ECHO_IMAGE, 0.3).HostConfig.Memory).toBe(96 * 2 ** 20);

    // The seed's README: pause, update-config with its exact body, unpause, from the network.
    expect(fromNetwork(network, address, "/pause", {}).status).toBe(200);
    const update = fromNetwork(network, address, "/update-config", {
      timeout: 2,
      cpu: 2,
      mem: 4096,
      microVM_runtime: "kata",
    });
    expect(update).toMatchObject({ status: 200, body: { success: true } });
    expect(fromNetwork(network, address, "/unpause", {}).status).toBe(200);
    expect(
      fromNetwork(network, address, "/", { id: ECHO_IMAGE, input: "after the update" }).body,
    ).toEqual({ success: true, msg: "after the update" });

    const stats = fromNetwork(network, address, "/stats").body;
    for (const field of STATS_FIELDS) expect(stats).toHaveProperty(field);

    docker(["stop", c]); // Docker's default grace: 10 s
    expect(waitExit(c)).toBe(0);
    expect(taskContainers(DEFAULT_INSTANCE)).toEqual([]);
    expect(
      docker([
        "network",
        "ls",
        "-q",
        "--filter",
        `label=${LABELS.instance}=${DEFAULT_INSTANCE}`,
      ]).trim(),
    ).toBe(""); // spares too
  });

  it("the desktop app's container options on its network `mecanywhere`, its GPU config and its requests", async () => {
    const network = "mecanywhere";
    if (docker(["network", "ls", "-q", "--filter", `name=^${network}$`]).trim() === "") {
      docker(["network", "create", "--label", label, network]);
      networks.push(network);
    }
    const configFile = join(dir, "meca_docker_gpu.yaml");
    writeFileSync(configFile, '\ntype: "docker"\ntimeout: 1\ncpu: 2\nmem: 2048\nhas_gpu: true\n'); // the app's GPU config, with this host's sizes
    const nvml = execFileSync("sh", ["test/fixtures/nvml/build.sh"], { encoding: "utf8" }).trim();
    const port = String(await freePort());
    const name = `meca-image-test-desktop-${process.pid}`;
    containers.push(name);
    // The app's ContainerCreateOptions, as its main process passes them to dockerode; the test
    // adds its label, publishes on 127.0.0.1, and puts the stand-in NVML where the NVIDIA
    // container toolkit puts the driver's library.
    const container = await new Dockerode().createContainer({
      name,
      Image: IMAGE,
      Labels: TEST_LABEL,
      ExposedPorts: { "2591/tcp": {} },
      HostConfig: {
        Binds: [
          "/var/run/docker.sock:/var/run/docker.sock",
          `${configFile}:/app/mecanywhere_executor.yaml`,
          `${nvml}:/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1:ro`,
        ],
        PortBindings: { "2591/tcp": [{ HostIp: "127.0.0.1", HostPort: port }] },
        NetworkMode: network,
      },
    });
    await container.start();
    const base = `http://127.0.0.1:${port}`;
    await waitHealthy(base, { why: () => containerLogs(name) });
    expect(containerLogs(name)).toContain('"config":"/app/mecanywhere_executor.yaml"');
    const address = JSON.parse(docker(["inspect", name]))[0].NetworkSettings.Networks[network]
      .IPAddress as string;

    // has_gpu read from the desktop's path, NVML found where the toolkit puts it.
    const stats = (await (await fetch(`${base}/stats`)).json()) as Record<string, unknown>;
    for (const field of STATS_FIELDS) expect(stats).toHaveProperty(field);
    expect(stats).toMatchObject({
      gpu_model: "NVIDIA Fake A100",
      task_gpu: 2,
      task_cpu: 2,
      task_mem: 2048,
    });

    // "Enable resource sharing": update-config without pausing.
    const share = await fetch(`${base}/update-config`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ cpu: 1.5, mem: 1536 }),
    });
    expect(share.status).toBe(200);
    expect((await (await fetch(`${base}/stats`)).json()) as Record<string, unknown>).toMatchObject({
      task_cpu: 1.5,
      task_mem: 1536,
    });

    // The app's task test, from 127.0.0.1, and the host actor's shape from the network.
    const test = await post(`${base}/`, {
      id: ECHO_IMAGE,
      resource: { task_cpu: 0.2, task_mem: 80 },
      useGpu: false,
      gpuCount: 0,
      useSgx: false,
      input: "task test",
    });
    expect(test).toEqual({ status: 200, body: { success: true, msg: "task test" } });
    expect(taskOf(ECHO_IMAGE, 0.2).HostConfig.Memory).toBe(80 * 2 ** 20);
    const actor = fromNetwork(network, address, "/", {
      id: ECHO_IMAGE,
      resource: { resource: { cpu: 0.4, mem: 72 } },
      input: "actor",
    });
    expect(actor).toEqual({ status: 200, body: { success: true, msg: "actor" } });
    expect(Object.keys(taskOf(ECHO_IMAGE, 0.4).NetworkSettings.Networks)).not.toContain(network);

    // The host is closed to tasks here too: their networks give the host no address at all.
    const tasks = (await (await fetch(`${base}/tasks`)).json()) as {
      host_firewall: { state: string; detail: string };
    };
    expect(tasks.host_firewall).toMatchObject({ state: "closed" });
    expect(tasks.host_firewall.detail).toContain("inhibit_ipv4");
    const listener = createServer((c) => c.destroy());
    await new Promise<void>((r) => listener.listen(0, "0.0.0.0", r));
    try {
      const listenerPort = (listener.address() as { port: number }).port;
      // (Node lists only interfaces that are up with a carrier; docker0 without containers has none.)
      const docker0 = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(
        execFileSync("ip", ["-4", "addr", "show", "dev", "docker0"], { encoding: "utf8" }),
      )![1]!;
      const taskNetwork = Object.values(
        taskOf(ECHO_IMAGE, 0.2).NetworkSettings.Networks as Record<string, { Gateway: string }>,
      )[0]!;
      const mecaGateway = JSON.parse(docker(["network", "inspect", network]))[0].IPAM.Config[0]
        .Gateway as string;
      for (const target of [taskNetwork.Gateway, docker0, mecaGateway]) {
        const probe = await post(`${base}/`, {
          id: ECHO_IMAGE,
          resource: { task_cpu: 0.2, task_mem: 80 },
          input: `connect:${target}:${listenerPort}`,
        });
        expect(probe.status).toBe(200);
        expect(probe.body.msg, target).not.toBe("connected");
      }
    } finally {
      await new Promise((r) => listener.close(r));
    }

    // In its container the tasks' cgroups are out of the executor's sight: their usage comes from
    // the engine's statistics, sampled about once a second, so a request's figures are coarse and
    // never exact. A request that spins 400 ms spans a sample now and then: one shows its CPU.
    let usage = "";
    for (let i = 0; i < 30 && !/cpu-ms=(?!0\.0,)\d/.test(usage); i++) {
      const r = await fetch(`${base}/`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          id: ECHO_IMAGE,
          resource: { cpu: 0.2, mem: 80 },
          input: "use:400:8",
        }),
      });
      expect(r.status).toBe(200);
      await r.text();
      usage = r.headers.get("meca-usage") ?? "";
    }
    expect(usage).toMatch(/cpu-ms=(?!0\.0,)\d/);
    expect(usage).toContain("exact=?0");
    const listed = (await (await fetch(`${base}/tasks`)).json()) as {
      tasks: { image: string; cpu: number; usage_source: string | null }[];
    };
    expect(listed.tasks.find((t) => t.image === ECHO_IMAGE && t.cpu === 0.2)!.usage_source).toBe(
      "engine stats",
    );

    docker(["stop", name]); // Docker's default grace: 10 s
    expect(waitExit(name)).toBe(0);
    expect(taskContainers(DEFAULT_INSTANCE)).toEqual([]);
  });

  it("the upgrade recipe with keep_tasks_on_stop: docker stop, docker rm, docker run again; the new container adopts the warm task and serves it with no create or start", async () => {
    const network = "mecanywhere";
    if (docker(["network", "ls", "-q", "--filter", `name=^${network}$`]).trim() === "") {
      docker(["network", "create", "--label", label, network]);
      networks.push(network);
    }
    const configFile = join(dir, "keep.yaml");
    writeFileSync(configFile, "timeout: 1\nkeep_tasks_on_stop: true\n");
    const args = [
      "--network",
      network,
      "-p",
      "127.0.0.1::2591",
      "-v",
      `${configFile}:/app/mecanywhere_executor.yaml`,
    ];
    const first = run("keep-1", args);
    let base = `http://127.0.0.1:${publishedPort(first)}`;
    await waitHealthy(base, { why: () => containerLogs(first) });
    expect(
      await post(`${base}/`, { id: ECHO_IMAGE, resource: { cpu: 0.3, mem: 64 }, input: "before" }),
    ).toEqual({ status: 200, body: { success: true, msg: "before" } });
    const task = taskOf(ECHO_IMAGE, 0.3).Id as string;
    docker(["stop", first]);
    expect(waitExit(first)).toBe(0);
    docker(["rm", first]);
    expect(taskContainers(DEFAULT_INSTANCE)).toHaveLength(1);

    const since = engineNow();
    const second = run("keep-2", args);
    base = `http://127.0.0.1:${publishedPort(second)}`;
    await waitHealthy(base, { why: () => containerLogs(second) });
    expect(
      await post(`${base}/`, { id: ECHO_IMAGE, resource: { cpu: 0.3, mem: 64 }, input: "after" }),
    ).toEqual({ status: 200, body: { success: true, msg: "after" } });
    expect(taskOf(ECHO_IMAGE, 0.3).Id).toBe(task);
    expect(
      containerEvents({
        since,
        labels: { [LABELS.instance]: DEFAULT_INSTANCE },
        actions: ["create", "start"],
      }),
    ).toEqual([]);
    expect(containerLogs(second)).toContain("Adopted tasks left by an earlier run");

    // Back to the default: the next stop removes the task.
    writeFileSync(configFile, "timeout: 1\n");
    docker(["rm", "-f", second]);
    const third = run("keep-3", args);
    await waitHealthy(`http://127.0.0.1:${publishedPort(third)}`, {
      why: () => containerLogs(third),
    });
    docker(["stop", third]);
    expect(waitExit(third)).toBe(0);
    expect(taskContainers(DEFAULT_INSTANCE)).toEqual([]);
  });
});
