import { describe, expect, it } from "vitest";
import { LABELS } from "../../../src/platform/docker/labels.ts";
import { parseRoutes, poolConflict } from "../../../src/platform/docker/subnet-pool.ts";

const ROUTES = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
br-1a2b\t0000C90A\t00000000\t0001\t0\t0\t0\tF0FFFFFF\t0\t0\t0
`;

describe("parseRoutes()", () => {
  it("reads /proc/net/route's little-endian hex and leaves the default route out", () => {
    expect(parseRoutes(ROUTES).map((r) => [r.iface, r.destination.bits])).toEqual([
      ["docker0", 16],
      ["eth0", 24],
      ["br-1a2b", 28],
    ]);
    expect(parseRoutes(ROUTES)[0]!.destination.base).toBe(((172 << 24) >>> 0) + (17 << 16));
  });
});

describe("poolConflict()", () => {
  const ours = {
    id: "n1",
    name: "meca-net-1",
    labels: { [LABELS.managed]: "1" },
    subnets: ["10.201.0.0/28"],
  };
  it("accepts a pool that overlaps nothing but meca task networks and their bridges' routes", () => {
    expect(
      poolConflict(
        "10.201.0.0/16",
        [ours, { id: "b", name: "bridge", labels: {}, subnets: ["172.17.0.0/16"] }],
        parseRoutes(ROUTES),
      ),
    ).toBeUndefined();
  });

  it("refuses a pool that overlaps another Docker network, naming it", () => {
    const lan = { id: "m", name: "meca", labels: {}, subnets: ["10.201.4.0/24"] };
    expect(poolConflict("10.201.0.0/16", [lan], [])).toBe(
      'task_subnet_pool 10.201.0.0/16 overlaps Docker network "meca" (10.201.4.0/24): choose another task_subnet_pool',
    );
  });

  it("lets a Docker bridge to one /28 of the pool pass: a task network of an executor on another engine of this host", () => {
    const other = parseRoutes(
      `Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\nbr-9f9f\t10D0C90A\t00000000\t0001\t0\t0\t0\tF0FFFFFF\n`,
    );
    expect(other[0]!.destination.bits).toBe(28);
    expect(poolConflict("10.201.0.0/16", [], other)).toBeUndefined();
    const wider = parseRoutes(
      `Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\nbr-9f9f\t0000C90A\t00000000\t0001\t0\t0\t0\t00FFFFFF\n`,
    );
    expect(poolConflict("10.201.0.0/16", [], wider)).toContain(
      "overlaps this host's route to 10.201.0.0/24 (dev br-9f9f)",
    );
  });

  it("refuses a pool that overlaps a route of this host, naming it", () => {
    expect(poolConflict("192.0.0.0/8", [], parseRoutes(ROUTES))).toBe(
      "task_subnet_pool 192.0.0.0/8 overlaps this host's route to 192.0.2.0/24 (dev eth0): choose another task_subnet_pool",
    );
  });
});
