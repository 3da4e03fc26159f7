import { describe, expect, it } from "vitest";
import { EngineUnavailableError } from "../../../src/engine/errors.ts";
import { parseDockerHost } from "../../../src/platform/docker/docker-host.ts";

describe("parseDockerHost()", () => {
  it("defaults to the unix socket /var/run/docker.sock", () => {
    expect(parseDockerHost({})).toEqual({
      kind: "unix",
      socketPath: "/var/run/docker.sock",
      transport: "unix:///var/run/docker.sock",
    });
    expect(parseDockerHost({ DOCKER_HOST: "" }).kind).toBe("unix");
  });

  it("reads unix:// paths, and unix:// alone as the default", () => {
    expect(parseDockerHost({ DOCKER_HOST: "unix:///run/user/1000/docker.sock" })).toMatchObject({
      kind: "unix",
      socketPath: "/run/user/1000/docker.sock",
    });
    expect(parseDockerHost({ DOCKER_HOST: "unix://" })).toMatchObject({
      socketPath: "/var/run/docker.sock",
    });
  });

  it("speaks plain http to tcp:// hosts, port 2375 by default", () => {
    expect(parseDockerHost({ DOCKER_HOST: "tcp://10.0.0.5:2375" })).toEqual({
      kind: "tcp",
      host: "10.0.0.5",
      port: 2375,
      baseUrl: "http://10.0.0.5:2375",
      transport: "tcp://10.0.0.5:2375",
    });
    expect(parseDockerHost({ DOCKER_HOST: "tcp://docker.local" })).toMatchObject({ port: 2375 });
    expect(parseDockerHost({ DOCKER_HOST: "tcp://[::1]:2375" })).toMatchObject({
      host: "::1",
      baseUrl: "http://[::1]:2375",
    });
  });

  it("needs dockerode for TLS: DOCKER_TLS_VERIFY, DOCKER_CERT_PATH or https://", () => {
    expect(
      parseDockerHost({
        DOCKER_HOST: "tcp://h:2376",
        DOCKER_TLS_VERIFY: "1",
        DOCKER_CERT_PATH: "/certs",
      }),
    ).toEqual({
      kind: "dockerode",
      reason: "tls",
      protocol: "https",
      host: "h",
      port: 2376,
      certPath: "/certs",
      verify: true,
      transport: "tcp://h:2376 (TLS)",
    });
    expect(parseDockerHost({ DOCKER_HOST: "tcp://h", DOCKER_CERT_PATH: "/c" })).toMatchObject({
      reason: "tls",
      port: 2376,
      verify: false,
    });
    expect(parseDockerHost({ DOCKER_HOST: "https://h:3000" })).toMatchObject({
      kind: "dockerode",
      port: 3000,
    });
  });

  it("needs dockerode for ssh://, with user and port", () => {
    expect(parseDockerHost({ DOCKER_HOST: "ssh://me@build-box:2222" })).toMatchObject({
      kind: "dockerode",
      reason: "ssh",
      protocol: "ssh",
      host: "build-box",
      port: 2222,
      username: "me",
      transport: "ssh://me@build-box:2222",
    });
    expect(parseDockerHost({ DOCKER_HOST: "ssh://box" })).toMatchObject({
      port: 22,
      username: undefined,
    });
  });

  it("refuses schemes it cannot use, naming the value", () => {
    expect(() => parseDockerHost({ DOCKER_HOST: "npipe:////./pipe/docker_engine" })).toThrow(
      EngineUnavailableError,
    );
    expect(() => parseDockerHost({ DOCKER_HOST: "fd://" })).toThrow(
      /Cannot use DOCKER_HOST "fd:\/\/"/,
    );
    expect(() => parseDockerHost({ DOCKER_HOST: "tcp://" })).toThrow(EngineUnavailableError);
  });
});
