import { describe, expect, it } from "vitest";
import { listenAddresses } from "../src/main.ts";

const self = (networks: Record<string, string>) => ({ id: "c", name: "meca", networkMode: "meca", networks: Object.entries(networks).map(([name, ip]) => ({ name, ip })) });

describe("listenAddresses()", () => {
  it("takes an explicit host over everything", () => {
    expect(listenAddresses("0.0.0.0", { ownNetwork: true, self: self({ meca: "172.18.0.255" }) })).toEqual(["0.0.0.0"]);
    expect(listenAddresses("127.0.0.1", { ownNetwork: true, self: self({ meca: "172.18.0.255" }) })).toEqual(["127.0.0.1"]);
  });

  it("in a container with a network of its own: loopback and its address on each network it was started on, never 0.0.0.0", () => {
    expect(listenAddresses(undefined, { ownNetwork: true, self: self({ meca: "172.18.0.255", other: "10.9.0.4" }) })).toEqual(["127.0.0.1", "172.18.0.255", "10.9.0.4"]);
  });

  it("on a bare host or with host networking: loopback alone", () => {
    expect(listenAddresses(undefined, { ownNetwork: false })).toEqual(["127.0.0.1"]);
    expect(listenAddresses(undefined, { ownNetwork: false, self: self({ host: "" }) })).toEqual(["127.0.0.1"]);
  });
});
