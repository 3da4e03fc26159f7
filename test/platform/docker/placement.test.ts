import { describe, expect, it } from "vitest";
import type { ContainerJson } from "../../../src/platform/docker/docker-api.ts";
import { ownContainerRef, resolvePlacement } from "../../../src/platform/docker/placement.ts";

const ID = "a".repeat(64);

/** A container as the engine's inspect gives it: its NetworkMode and attached networks. */
function container(networkMode: string, networks: Record<string, string>): ContainerJson {
  return {
    Id: ID,
    Name: "/meca-executor",
    State: { Status: "running", Running: true, ExitCode: 0, OOMKilled: false },
    HostConfig: { NetworkMode: networkMode },
    NetworkSettings: {
      Networks: Object.fromEntries(
        Object.entries(networks).map(([name, ip]) => [name, { IPAddress: ip }]),
      ),
    },
  };
}

const place = (setting: string, json?: ContainerJson, ref: string | undefined = ID) =>
  resolvePlacement({
    setting,
    containerRef: ref,
    inspect: async (r) => (r === ID ? json : undefined),
  });

describe("resolvePlacement()", () => {
  it("auto on a bare host isolates each task, called by address, without asking the engine", async () => {
    const p = await resolvePlacement({
      setting: "auto",
      inspect: () => Promise.reject(new Error("not called")),
    });
    expect(p).toMatchObject({ mode: "isolated", ownNetwork: false });
    expect(p.self).toBeUndefined();
    expect(p.reason).toContain(
      "on a host: each task on a network of its own, called at its address",
    );
  });

  it("auto in a container with a network of its own isolates each task, and the executor joins their networks", async () => {
    for (const mode of ["meca", "bridge", "default"]) {
      const p = await place("auto", container(mode, { meca: "172.30.0.5", bridge: "172.17.0.3" }));
      expect(p).toMatchObject({
        mode: "isolated",
        ownNetwork: true,
        self: { name: "meca-executor", id: ID },
      });
      expect(p.reason).toContain("which the executor joins to call it by name");
    }
  });

  it("auto with host networking isolates each task, called by address, and the executor has no network of its own", async () => {
    const p = await place("auto", container("host", { host: "" }));
    expect(p).toMatchObject({ mode: "isolated", ownNetwork: false });
    expect(p.reason).toContain("shares the host's network");
  });

  it("auto in a container the engine does not know publishes and says why", async () => {
    const p = await place("auto", undefined, "b".repeat(64));
    expect(p).toMatchObject({ mode: "publish", ownNetwork: false });
    expect(p.self).toBeUndefined();
    expect(p.reason).toContain("the engine knows no container");
  });

  it("network: publish and network: <name> force a shared mode wherever it runs", async () => {
    const inNet = container("meca", { meca: "172.30.0.5" });
    expect(await place("publish", inNet)).toMatchObject({ mode: "publish", ownNetwork: true });
    expect(await place("other", inNet)).toMatchObject({
      mode: "network",
      network: "other",
      ownNetwork: true,
    });
    expect(await place("other", undefined, undefined)).toMatchObject({
      mode: "network",
      network: "other",
      ownNetwork: false,
    });
  });
});

describe("ownContainerRef()", () => {
  it("reads the container id from the files Docker bind-mounts, else from a cgroup v1 path", () => {
    const mountinfo = `612 590 0:44 / / rw - overlay overlay rw\n640 612 254:1 /var/lib/docker/containers/${ID}/resolv.conf /etc/resolv.conf rw - ext4 /dev/vda1 rw\n`;
    expect(ownContainerRef({ mountinfo })).toBe(ID);
    expect(ownContainerRef({ cgroup: `12:memory:/docker/${ID}\n` })).toBe(ID);
    expect(ownContainerRef({ cgroup: `0::/system.slice/docker-${ID}.scope\n` })).toBe(ID);
  });

  it("finds none on a bare host", () => {
    expect(
      ownContainerRef({
        mountinfo: "22 27 0:21 / /proc rw,relatime - proc proc rw\n",
        cgroup: "0::/user.slice/session-1.scope\n",
      }),
    ).toBeUndefined();
    expect(ownContainerRef({})).toBeUndefined();
  });
});
