import { describe, expect, it } from "vitest";
import { listenAddresses, ownOrigin } from "../src/main.ts";
import { firewallPlace } from "../src/platform/host-firewall.ts";

const self = (networks: Record<string, string>) => ({
  id: "c",
  name: "meca",
  networkMode: "meca",
  networks: Object.entries(networks).map(([name, ip]) => ({ name, ip })),
});

describe("listenAddresses()", () => {
  it("takes an explicit host over everything", () => {
    expect(
      listenAddresses("0.0.0.0", { ownNetwork: true, self: self({ meca: "172.18.0.255" }) }),
    ).toEqual(["0.0.0.0"]);
    expect(
      listenAddresses("127.0.0.1", { ownNetwork: true, self: self({ meca: "172.18.0.255" }) }),
    ).toEqual(["127.0.0.1"]);
  });

  it("in a container with a network of its own: loopback and its address on each network it was started on, never 0.0.0.0", () => {
    expect(
      listenAddresses(undefined, {
        ownNetwork: true,
        self: self({ meca: "172.18.0.255", other: "10.9.0.4" }),
      }),
    ).toEqual(["127.0.0.1", "172.18.0.255", "10.9.0.4"]);
  });

  it("on a bare host or with host networking: loopback alone", () => {
    expect(listenAddresses(undefined, { ownNetwork: false })).toEqual(["127.0.0.1"]);
    expect(listenAddresses(undefined, { ownNetwork: false, self: self({ host: "" }) })).toEqual([
      "127.0.0.1",
    ]);
  });
});

describe("firewallPlace()", () => {
  const isolated = { mode: "isolated" as const, network: undefined, ownNetwork: false };
  it("on the host with a local engine: the executor installs the rule", () => {
    expect(firewallPlace(isolated, {}, false)).toEqual({ kind: "host" });
    expect(
      firewallPlace(isolated, { DOCKER_HOST: "unix:///run/user/1000/docker.sock" }, false),
    ).toEqual({ kind: "host" });
    expect(firewallPlace(isolated, { DOCKER_HOST: "tcp://127.0.0.1:2375" }, true)).toEqual({
      kind: "host",
    });
  });

  it("an engine on another host is closed there, by its operator", () => {
    expect(firewallPlace(isolated, { DOCKER_HOST: "tcp://10.9.8.7:2376" }, false)).toMatchObject({
      kind: "elsewhere",
      why: expect.stringContaining("another host"),
    });
  });

  it("in a container of its own: task networks without a host address, unless they route out", () => {
    expect(firewallPlace({ ...isolated, ownNetwork: true }, {}, false)).toMatchObject({
      kind: "hostless",
    });
    expect(firewallPlace({ ...isolated, ownNetwork: true }, {}, true)).toMatchObject({
      kind: "elsewhere",
      why: expect.stringContaining("task_egress: true"),
    });
  });

  it("tasks on a shared network or published ports are not on task bridges", () => {
    expect(
      firewallPlace({ mode: "publish", network: undefined, ownNetwork: false }, {}, false),
    ).toMatchObject({ kind: "shared", why: expect.stringContaining("network: publish") });
    expect(
      firewallPlace({ mode: "network", network: "meca", ownNetwork: true }, {}, false),
    ).toMatchObject({ kind: "shared", why: expect.stringContaining('network "meca"') });
  });
});

describe("ownOrigin()", () => {
  it("reaches the executor's own first listener: loopback for a wildcard, brackets for IPv6", () => {
    expect(ownOrigin("0.0.0.0", 2591)).toBe("http://127.0.0.1:2591");
    expect(ownOrigin("::", 2591)).toBe("http://127.0.0.1:2591");
    expect(ownOrigin("127.0.0.1", 40)).toBe("http://127.0.0.1:40");
    expect(ownOrigin("fd00::5", 40)).toBe("http://[fd00::5]:40");
  });
});
