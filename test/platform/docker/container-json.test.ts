import { describe, expect, it } from "vitest";
import type { ContainerSpec } from "../../../src/platform/docker/backend.ts";
import {
  toCreateBody,
  toLogConfig,
  toNetworkBody,
} from "../../../src/platform/docker/container-json.ts";

const spec: ContainerSpec = {
  name: "t",
  image: "echo:1",
  labels: {},
  nanoCpus: 1e9,
  memoryBytes: 1 << 27,
  pidsLimit: 64,
  securityOpt: [],
  privileged: false,
};
const rotation = { maxSize: "10m", maxFile: 3 };

describe("task log options", () => {
  it("bound the log with max-size and max-file under the daemon's own json-file or local driver", () => {
    for (const driver of ["json-file", "local"]) {
      expect(toLogConfig(driver, rotation)).toEqual({
        Type: driver,
        Config: { "max-size": "10m", "max-file": "3" },
      });
    }
    const body = toCreateBody(spec, toLogConfig("json-file", rotation)) as {
      HostConfig: Record<string, unknown>;
    };
    expect(body.HostConfig.LogConfig).toEqual({
      Type: "json-file",
      Config: { "max-size": "10m", "max-file": "3" },
    });
  });

  it("leave any other driver as the daemon sets it", () => {
    for (const driver of ["journald", "syslog", "none", "fluentd", undefined])
      expect(toLogConfig(driver, rotation)).toBeUndefined();
    expect(
      (toCreateBody(spec, undefined) as { HostConfig: Record<string, unknown> }).HostConfig,
    ).not.toHaveProperty("LogConfig");
  });
});

describe("toNetworkBody()", () => {
  const spec = {
    name: "n",
    subnet: "10.201.0.16/28",
    bridge: "mecat0ac9001001",
    internal: true,
    labels: {},
  };
  it("names the bridge, and gives the host no address on it only when asked", () => {
    expect(toNetworkBody(spec).Options).toEqual({
      "com.docker.network.bridge.name": "mecat0ac9001001",
    });
    expect(toNetworkBody({ ...spec, hostless: true }).Options).toEqual({
      "com.docker.network.bridge.name": "mecat0ac9001001",
      "com.docker.network.bridge.inhibit_ipv4": "true",
    });
    expect(toNetworkBody({ ...spec, bridge: undefined }).Options).toEqual({});
  });
});
