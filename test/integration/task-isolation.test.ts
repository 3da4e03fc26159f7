/**
 * Tasks are strangers' code: each task is reachable by its executor alone. Proved from inside
 * real task containers (the fixture server's `connect:<ip>:<port>` and `routes` bodies), probing
 * only addresses of containers and networks this test and its executor created. The executor in a
 * container is probed in image.test.ts.
 */
import { execFileSync } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { LABELS } from "../../src/platform/docker/labels.ts";
import { docker } from "../support/docker-env.ts";
import { ECHO_IMAGE } from "../support/fixtures.ts";
import { startExecutor, until, type Harness } from "../support/harness.ts";

let h: Harness | undefined;
afterEach(async () => {
  if (h) expect(await h.close()).toEqual([]);
  h = undefined;
});

/** An executor serving its API on 127.0.0.1 (the harness's listener), as the bare executable does by default. */
const start = startExecutor;
const apiPort = (harness: Harness) => new URL(harness.base).port;

const inspect = (id: string) => JSON.parse(docker(["inspect", id]))[0];
const networkCount = () => docker(["network", "ls", "-q"]).split("\n").filter(Boolean).length;

/** The task containers of the executor under test, each with its only network and its address there. */
function tasksOf(harness: Harness) {
  return harness.executor.tasks().map((t) => {
    const c = inspect(t.container_id!);
    const [[network, settings]] = Object.entries(c.NetworkSettings.Networks) as [
      string,
      { IPAddress: string; Gateway: string; NetworkID: string },
    ][];
    return {
      key: t.key,
      cpu: t.cpu,
      name: c.Name.slice(1),
      network,
      ip: settings.IPAddress,
      gateway: settings.Gateway,
      networkId: settings.NetworkID,
      runtime: c.HostConfig.Runtime,
    };
  });
}

/** What a task sees when it tries a TCP connect to ip:port (the request runs inside it). */
async function probe(
  harness: Harness,
  resource: { cpu: number; mem: number; runtime?: string },
  target: string,
): Promise<string> {
  const { runtime, ...res } = resource;
  const r = await harness.execute({
    id: ECHO_IMAGE,
    resource: res,
    runtime,
    input: `connect:${target}`,
  });
  expect(r.status).toBe(200);
  return r.body.msg;
}

const A = { cpu: 0.1, mem: 40 };
const B = { cpu: 0.2, mem: 40 };

describe("each task on a network of its own (bare host)", () => {
  it("task A cannot connect to task B, and neither can connect to the executor's API; the executor serves both", async () => {
    h = await start();
    expect((await h.execute({ id: ECHO_IMAGE, resource: A, input: "a" })).body.msg).toBe("a");
    expect((await h.execute({ id: ECHO_IMAGE, resource: B, input: "b" })).body.msg).toBe("b");
    const [a, b] = tasksOf(h).sort((x, y) => x.cpu - y.cpu);
    // Two networks, one each: nothing shared, so Docker's DNS gives A no name for B either.
    expect(a!.network).not.toBe(b!.network);
    for (const t of [a!, b!]) {
      const net = JSON.parse(docker(["network", "inspect", t.networkId]))[0];
      expect(net).toMatchObject({
        Internal: true,
        Driver: "bridge",
        Labels: { [LABELS.managed]: "1", [LABELS.instance]: h.instance, [LABELS.network]: "task" },
      });
      expect(Object.keys(net.Containers)).toEqual([inspect(t.name).Id]);
    }
    expect(await probe(h, A, `${b!.ip}:8080`)).not.toBe("connected");
    expect(await probe(h, B, `${a!.ip}:8080`)).not.toBe("connected");
    // The executor listens on 127.0.0.1 only: from a task, its own loopback and the gateway
    // (the host's side of its network, an address the executor created) refuse.
    expect(await probe(h, A, `127.0.0.1:${apiPort(h)}`)).toBe("refused");
    expect(await probe(h, A, `${a!.gateway}:${apiPort(h)}`)).toBe("refused");
    // Positive control: the probe does connect where something listens for it (the task itself).
    expect(await probe(h, A, `${a!.ip}:8080`)).toBe("connected");
    // Least privilege: no NET_RAW, an open-files limit, no core dumps. (The I/O weight the create
    // asks for is dropped by engines whose kernel has no weighted I/O scheduler, as here.)
    const hc = inspect(a!.name).HostConfig;
    expect(hc.CapDrop).toEqual(["NET_RAW"]);
    expect(hc.Ulimits).toEqual([
      { Name: "nofile", Soft: 4096, Hard: 4096 },
      { Name: "core", Soft: 0, Hard: 0 },
    ]);
  });

  it("with egress off, a task has no way out: Internal network, no route but its own, and the engine's firewall drops the rest", async () => {
    h = await start();
    const routes = (await h.execute({ id: ECHO_IMAGE, resource: A, input: "routes" })).body.msg;
    const [a] = tasksOf(h);
    const net = JSON.parse(docker(["network", "inspect", a!.networkId]))[0];
    expect(net.Internal).toBe(true);
    // Read, never tried: no packet is sent anywhere to check it. Docker 20.10 still gives a
    // container on an Internal network a default route to the network's own gateway (the host's
    // bridge), where the engine's isolation rule drops whatever is not for the subnet.
    const hexGateway = a!.gateway
      .split(".")
      .reverse()
      .map((o) => Number(o).toString(16).padStart(2, "0").toUpperCase())
      .join("");
    const gateways = routes
      .split("\n")
      .slice(1)
      .filter(Boolean)
      .map((l) => l.trim().split(/\s+/)[2]);
    expect(gateways.every((g) => g === "00000000" || g === hexGateway)).toBe(true);
    const bridge = net.Options["com.docker.network.bridge.name"];
    expect(bridge).toMatch(/^mecat[0-9a-z]{10}$/);
    const rules = execFileSync("iptables", ["-S", "DOCKER-ISOLATION-STAGE-1"], {
      encoding: "utf8",
    });
    expect(rules).toContain(
      `-A DOCKER-ISOLATION-STAGE-1 ! -d ${net.IPAM.Config[0].Subnet} -i ${bridge} -j DROP`,
    );
  });

  it("with task_egress, the task's own network has a route out, and still none to other tasks", async () => {
    h = await start({ task_egress: true });
    await h.execute({ id: ECHO_IMAGE, resource: A, input: "a" });
    await h.execute({ id: ECHO_IMAGE, resource: B, input: "b" });
    const [a, b] = tasksOf(h).sort((x, y) => x.cpu - y.cpu);
    expect(JSON.parse(docker(["network", "inspect", a!.networkId]))[0].Internal).toBe(false);
    expect(await probe(h, A, `${b!.ip}:8080`)).not.toBe("connected");
  });

  it("under runsc too: tasks isolated, served by the executor", async () => {
    h = await start({ microVM_runtime: "runsc" });
    const vmA = { ...A, runtime: "microVM" };
    const vmB = { ...B, runtime: "microVM" };
    expect(await probe(h, vmA, "127.0.0.1:9")).toBe("refused"); // starts A, and the probe works there
    expect(
      (await h.execute({ id: ECHO_IMAGE, resource: B, runtime: "microVM", input: "b" })).body.msg,
    ).toBe("b");
    const [a, b] = tasksOf(h).sort((x, y) => x.cpu - y.cpu);
    expect([a!.runtime, b!.runtime]).toEqual(["runsc", "runsc"]);
    expect(await probe(h, vmA, `${b!.ip}:8080`)).not.toBe("connected");
    expect(await probe(h, vmB, `${b!.gateway}:${apiPort(h)}`)).not.toBe("connected");
  });

  it("refuses at start-up a task_subnet_pool that overlaps a network that is not a meca task network, naming it", async () => {
    const name = `meca-test-overlap-${process.pid}`;
    docker(["network", "create", "--label", "meca.test=1", "--subnet", "10.216.7.0/24", name]);
    try {
      await expect(startExecutor({ task_subnet_pool: "10.216.0.0/16" })).rejects.toThrow(
        `Cannot use task_subnet_pool: task_subnet_pool 10.216.0.0/16 overlaps Docker network "${name}" (10.216.7.0/24)`,
      );
    } finally {
      docker(["network", "rm", name]);
    }
  });

  it("task networks never pile up: after 200 cold starts in a row and a stop, the engine's network count is back where it started", async () => {
    const before = networkCount();
    // Room for three tasks of 0.1 core: each new key evicts the least recently used idle one.
    h = await start({ cpu: 0.3 });
    for (let i = 0; i < 200; i++) {
      const r = await h.execute({
        id: ECHO_IMAGE,
        resource: { cpu: 0.1, mem: 40 + i },
        input: `n${i}`,
      });
      expect(r.body.msg).toBe(`n${i}`);
    }
    expect(h.executor.tasks().length).toBeLessThanOrEqual(3);
    expect(await h.close()).toEqual([]);
    h = undefined;
    await until(() => networkCount() === before, "task networks removed", 30_000);
  }, 600_000);
});
