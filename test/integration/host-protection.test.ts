/**
 * A stranger's task cannot hurt the host: its disk is bounded (task_disk_mb), the host's own
 * addresses are closed to it (the host firewall rule on task bridges), DNS is no way out, and
 * /dev/shm and core dumps are bounded. Proved from inside real task containers under runc and
 * runsc, against listeners and a resolver this test runs itself on 127.0.0.1's host, at
 * addresses of networks the test or its executor created (and docker0's, the host's own).
 * See docs/architecture.md, "The host's own resources".
 */
import { execFileSync } from "node:child_process";
import { createSocket, type Socket } from "node:dgram";
import { statfsSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ruleArgs } from "../../src/platform/host-firewall.ts";
import { docker } from "../support/docker-env.ts";
import { ECHO_IMAGE, TEST_LABEL } from "../support/fixtures.ts";
import { startExecutor, until, type Harness } from "../support/harness.ts";

let h: Harness | undefined;
afterEach(async () => {
  if (h) expect(await h.close()).toEqual([]);
  h = undefined;
});

const label = Object.entries(TEST_LABEL).map(([k, v]) => `${k}=${v}`)[0]!;
/** A bridge network of the test's own: its gateway is an address of the host on another bridge. */
const otherNet = `meca-test-hostnet-${process.pid}`;
let otherGateway: string;
let docker0: string;
/** A TCP listener on every address of the host, as a desktop's services listen. */
let listener: Server;
let listenerPort: number;
let accepted = 0;
/** A DNS server of the test's own on the other network's gateway; it counts the queries it gets. */
let resolver: Socket;
let resolverPort: number;
let queries = 0;

beforeAll(async () => {
  docker(["network", "create", "--label", label, otherNet]);
  otherGateway = JSON.parse(docker(["network", "inspect", otherNet]))[0].IPAM.Config[0].Gateway;
  // docker0's own address (the default bridge's inspect does not always name its gateway).
  // (Node lists only interfaces that are up with a carrier; docker0 without containers has none.)
  docker0 = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(
    execFileSync("ip", ["-4", "addr", "show", "dev", "docker0"], { encoding: "utf8" }),
  )![1]!;
  listener = createServer((s) => {
    accepted++;
    s.destroy();
  });
  await new Promise<void>((r) => listener.listen(0, "0.0.0.0", r));
  listenerPort = (listener.address() as { port: number }).port;
  resolver = createSocket("udp4");
  resolver.on("message", (msg, from) => {
    queries++;
    // NOERROR, the question echoed, no answers: enough for the probe to say "answered:0".
    const reply = Buffer.from(msg);
    reply[2] = 0x81;
    reply[3] = 0x80;
    resolver.send(reply, from.port, from.address);
  });
  await new Promise<void>((r) => resolver.bind(0, otherGateway, r));
  resolverPort = resolver.address().port;
});

afterAll(async () => {
  if (listener) await new Promise((r) => listener.close(r));
  resolver?.close();
  docker(["network", "rm", otherNet]);
});

const A = { cpu: 0.1, mem: 41 };
const B = { cpu: 0.2, mem: 41 };
const MB = 1024 * 1024;

async function ask(resource: { cpu: number; mem: number }, input: string, runtime?: string) {
  return h!.execute({ id: ECHO_IMAGE, resource, runtime, input });
}

/** The task's network gateway (the host's address on its bridge) and the bridge's name. */
function taskNet(image = ECHO_IMAGE) {
  const t = h!.executor.tasks().find((x) => x.image === image)!;
  const c = JSON.parse(docker(["inspect", t.container_id!]))[0];
  const [settings] = Object.values(c.NetworkSettings.Networks) as {
    Gateway: string;
    NetworkID: string;
  }[];
  const net = JSON.parse(docker(["network", "inspect", settings!.NetworkID]))[0];
  return {
    gateway: settings!.Gateway,
    bridge: net.Options["com.docker.network.bridge.name"] as string,
    container: t.container_id!,
  };
}

/** The address families whose firewall works on this host (a kernel without IPv6 filtering has only one). */
const FAMILIES = ["iptables", "ip6tables"].filter((f) => {
  try {
    execFileSync(f, ["-w", "5", "-S", "INPUT"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
});

/** The host's rules, without counters and the save's timestamps: what a stop must leave as it found. */
function hostRules(): string {
  return FAMILIES.map((f) => `${f}-save`)
    .map((f) => execFileSync(f, { encoding: "utf8" }))
    .join("")
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .map((l) => l.replace(/\[\d+:\d+\]/g, ""))
    .join("\n");
}

const ourRules = (instance: string) =>
  hostRules()
    .split("\n")
    .filter((l) => l.includes(`meca-executor ${instance}"`)).length;

const freeMB = () => {
  const s = statfsSync("/var/lib/docker");
  return (s.bavail * s.bsize) / MB;
};

for (const runtime of ["runc", "runsc"] as const) {
  const rt = runtime === "runsc" ? "microVM" : undefined;
  const vm = runtime === "runsc" ? { microVM_runtime: "runsc" } : {};

  describe(`the task's disk is bounded (${runtime})`, () => {
    it("a task writing as fast as it can is removed past task_disk_mb with 507 naming the bound; its space comes back; another task is served meanwhile; the ledger balances", async () => {
      h = await startExecutor({ task_disk_mb: 100, task_disk_check_interval: 0.25, ...vm });
      expect((await ask(B, "warm", rt)).body.msg).toBe("warm");
      const before = freeMB();
      let settled = false;
      const filling = ask(A, "fill:3000", rt).finally(() => (settled = true));
      // Meanwhile (its request at the task, writing), the other task serves.
      await until(
        () => settled || h!.executor.tasks().find((t) => t.cpu === A.cpu)?.in_flight === 1,
        "the filler's request at the task",
      );
      expect((await ask(B, "meanwhile", rt)).body.msg).toBe("meanwhile");
      const r = await filling;
      expect(r.status).toBe(507);
      expect(r.body).toMatchObject({ success: false, error: "TASK_DISK_EXCEEDED" });
      expect(r.body.msg).toMatch(/wrote \d+ MB to its disk, more than task_disk_mb \(100 MB\)/);
      await until(async () => (await h!.containers()).length === 1, "the filler's container gone");
      expect(h!.executor.tasks().map((t) => t.cpu)).toEqual([B.cpu]);
      expect(h!.executor.ledger.used()).toMatchObject({ cpuTenths: 2, memMB: 41 });
      await until(() => freeMB() > before - 64, "the host's free space back");
      const metrics = await h!.call("GET", "/metrics");
      expect(metrics.text).toMatch(/^meca_task_disk_exceeded_total 1$/m);
      expect((await ask(A, "after", rt)).body.msg).toBe("after");
    });

    it("a task writing slowly is removed once it passes the bound", async () => {
      h = await startExecutor({ task_disk_mb: 40, task_disk_check_interval: 0.25, ...vm });
      const r = await ask(A, "fill:400:40", rt);
      expect(r.status).toBe(507);
      expect(r.body.msg).toContain("more than task_disk_mb (40 MB)");
      const wrote = Number(/wrote (\d+) MB/.exec(r.body.msg)![1]);
      expect(wrote).toBeGreaterThan(40);
      expect(wrote).toBeLessThan(400);
      await until(async () => (await h!.containers()).length === 0, "the container gone");
      expect(h!.executor.ledger.used()).toMatchObject({ cpuTenths: 0, memMB: 0 });
    });

    it("a task under its bound keeps what it wrote, and /tasks shows how much and who holds the bound", async () => {
      h = await startExecutor({ task_disk_mb: 100, task_disk_check_interval: 0.25, ...vm });
      expect((await ask(A, "fill:20", rt)).body.msg).toBe("filled:20");
      await until(() => (h!.executor.tasks()[0]?.disk_mb ?? 0) >= 20, "the check to see 20 MB");
      const tasks = (await h!.call("GET", "/tasks")).body as {
        disk: { held_by: string; task_disk_mb: number };
        tasks: { disk_mb: number }[];
      };
      expect(tasks.disk).toMatchObject({ task_disk_mb: 100, held_by: "executor" });
      expect(tasks.tasks[0]!.disk_mb).toBeGreaterThanOrEqual(20);
      expect((await ask(A, "limits", rt)).body.msg).toBe("core=0/0 shm=41");
    });
  });

  describe(`the host's addresses are closed to tasks (${runtime})`, () => {
    it("a task cannot connect to a host service at its gateway, at docker0's address or at another bridge's gateway; the executor still serves it", async () => {
      h = await startExecutor({ ...vm });
      expect(h.firewall.status().state).toBe("closed");
      expect((await ask(A, "up", rt)).body.msg).toBe("up");
      const { gateway } = taskNet();
      const seen = accepted;
      for (const address of [gateway, docker0, otherGateway]) {
        const r = await ask(A, `connect:${address}:${listenerPort}`, rt);
        expect(r.status, r.body.msg).toBe(200);
        expect(r.body.msg, address).not.toBe("connected");
      }
      expect(accepted).toBe(seen);
      // Positive control: the listener takes connections from here.
      await new Promise<void>((resolve, reject) => {
        const c = connect(listenerPort, "127.0.0.1", () => {
          c.destroy();
          resolve();
        });
        c.on("error", reject);
      });
      await until(() => accepted === seen + 1, "the control connection");
      const tasks = (await h.call("GET", "/tasks")).body as { host_firewall: { state: string } };
      expect(tasks.host_firewall.state).toBe("closed");
    });

    it("DNS is no way out: a resolver on another bridge of the host gets no query", async () => {
      h = await startExecutor({ ...vm });
      const before = queries;
      const r = await ask(A, `dns:${otherGateway}:${resolverPort}:probe.meca.test`, rt);
      expect(r.status).toBe(200);
      expect(r.body.msg).not.toMatch(/^answered/);
      expect(queries).toBe(before);
    });

    it("with task_host_firewall: off the same probes get through (the control that the closed case could fail)", async () => {
      h = await startExecutor({ task_host_firewall: "off", ...vm });
      expect(h.firewall.status().state).toBe("open");
      const seen = accepted;
      expect((await ask(A, `connect:${otherGateway}:${listenerPort}`, rt)).body.msg).toBe(
        "connected",
      );
      await until(() => accepted === seen + 1, "the connection from the task");
      const before = queries;
      expect(
        (await ask(A, `dns:${otherGateway}:${resolverPort}:probe.meca.test`, rt)).body.msg,
      ).toBe("answered:0");
      expect(queries).toBe(before + 1);
    });
  });
}

describe("the host firewall rule", () => {
  it("with task_egress the host stays closed", async () => {
    h = await startExecutor({ task_egress: true });
    expect((await ask(A, "up")).body.msg).toBe("up");
    const { gateway } = taskNet();
    for (const address of [gateway, docker0, otherGateway]) {
      expect((await ask(A, `connect:${address}:${listenerPort}`)).body.msg, address).not.toBe(
        "connected",
      );
    }
  });

  it("a stop leaves the host's rules as they were before the start", async () => {
    const before = hostRules();
    h = await startExecutor();
    await ask(A, "up");
    expect(FAMILIES[0]).toBe("iptables");
    expect(ourRules(h.instance)).toBe(FAMILIES.length); // one for IPv4, one for IPv6
    expect(await h.close()).toEqual([]);
    h = undefined;
    expect(hostRules()).toBe(before);
  });

  it("after a crash, the next start replaces the leftovers with one rule, and its stop removes that", async () => {
    const instance = `crashed-${process.pid}`;
    const before = hostRules();
    // What a killed run of this instance left: two copies of its rule.
    for (const f of FAMILIES) {
      for (let i = 0; i < 2; i++)
        execFileSync(f, ["-w", "5", "-I", "INPUT", "1", ...ruleArgs(instance)]);
    }
    expect(ourRules(instance)).toBe(2 * FAMILIES.length);
    h = await startExecutor({ instance });
    expect(ourRules(instance)).toBe(FAMILIES.length);
    expect(await h.close()).toEqual([]);
    h = undefined;
    expect(hostRules()).toBe(before);
  });

  it("task bridges carry one recognisable name, and the task's own loopback and the bridge's IPv6 link-local address are no way to the host", async () => {
    h = await startExecutor();
    await ask(A, "up");
    const { bridge } = taskNet();
    expect(bridge).toMatch(/^mecat[0-9a-z]{10}$/);
    const linkLocal = /inet6 (fe80::[0-9a-f:]+)\//.exec(
      execFileSync("ip", ["-6", "addr", "show", "dev", bridge], { encoding: "utf8" }),
    )?.[1];
    if (linkLocal)
      expect((await ask(A, `connect:[${linkLocal}%eth0]:${listenerPort}`)).body.msg).not.toBe(
        "connected",
      );
  });
});
