import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  clientConfigPath,
  registryAuth,
  registryAuthHeader,
  registryOf,
} from "../../../src/platform/docker/registry-auth.ts";
import { memoryLogger } from "../../fakes/fake-logger.ts";
import { scratchDir } from "../../support/scratch.ts";

function configDir(config: unknown): string {
  const dir = scratchDir("meca-docker-config-");
  writeFileSync(
    join(dir, "config.json"),
    typeof config === "string" ? config : JSON.stringify(config),
  );
  return dir;
}

describe("registryAuth(): the Docker client's own credentials", () => {
  it("finds the config as docker does: $DOCKER_CONFIG, else ~/.docker", () => {
    expect(clientConfigPath({ DOCKER_CONFIG: "/etc/meca/docker" })).toBe(
      "/etc/meca/docker/config.json",
    );
    expect(clientConfigPath({ HOME: "/home/host" })).toBe("/home/host/.docker/config.json");
  });

  it("names the registry of an image, Docker Hub when none", () => {
    expect(registryOf("127.0.0.1:5056/a/b:1")).toBe("127.0.0.1:5056");
    expect(registryOf("ghcr.io/meca/task@sha256:" + "a".repeat(64))).toBe("ghcr.io");
    expect(registryOf("a1b2c3d4e5:latest")).toBe("docker.io");
    expect(registryOf("library/ubuntu")).toBe("docker.io");
  });

  it("reads auths (auth, or username and password, or an identity token) for the image's registry only", async () => {
    const dir = configDir({
      auths: {
        "https://index.docker.io/v1/": {
          auth: Buffer.from("hub-user:hub-pass").toString("base64"),
        },
        "registry.example:5000": { username: "u", password: "p" },
        "https://ghcr.io": { identitytoken: "tok" },
      },
    });
    const auth = registryAuth({ env: { DOCKER_CONFIG: dir }, logger: memoryLogger() });
    expect(await auth("ubuntu:22.04")).toEqual({
      username: "hub-user",
      password: "hub-pass",
      serveraddress: "https://index.docker.io/v1/",
    });
    expect(await auth("registry.example:5000/t:1")).toEqual({
      username: "u",
      password: "p",
      serveraddress: "registry.example:5000",
    });
    expect(await auth("ghcr.io/o/t:1")).toEqual({ identitytoken: "tok", serveraddress: "ghcr.io" });
    expect(await auth("quay.io/o/t:1")).toBeUndefined();
  });

  it("asks credHelpers for their registry, else credsStore, before auths; a helper that fails is a warning", async () => {
    const dir = configDir({
      credHelpers: { "ecr.example": "ecr-login" },
      credsStore: "pass",
      auths: { "other.example": { auth: Buffer.from("a:b").toString("base64") } },
    });
    const asked: string[] = [];
    const logger = memoryLogger();
    const auth = registryAuth({
      env: { DOCKER_CONFIG: dir },
      logger,
      runHelper: async (helper, server) => {
        asked.push(`${helper} ${server}`);
        if (helper === "ecr-login")
          return JSON.stringify({ ServerURL: server, Username: "AWS", Secret: "s3" });
        if (server === "token.example")
          return JSON.stringify({ ServerURL: server, Username: "<token>", Secret: "idt" });
        throw new Error("credentials not found in native keychain");
      },
    });
    expect(await auth("ecr.example/t:1")).toEqual({
      username: "AWS",
      password: "s3",
      serveraddress: "ecr.example",
    });
    expect(await auth("token.example/t:1")).toEqual({
      identitytoken: "idt",
      serveraddress: "token.example",
    });
    expect(await auth("other.example/t:1")).toEqual({
      username: "a",
      password: "b",
      serveraddress: "other.example",
    });
    expect(asked).toEqual(["ecr-login ecr.example", "pass token.example", "pass other.example"]);
    expect(
      logger.records.some((r) => r.level === "warn" && r.msg.includes("docker-credential-pass")),
    ).toBe(true);
    expect(JSON.stringify(logger.records)).not.toContain("s3");
  });

  it("an absent config means no credentials, silently; an unreadable one is a warning naming the file", async () => {
    const none = scratchDir("meca-docker-config-");
    const logger = memoryLogger();
    expect(await registryAuth({ env: { DOCKER_CONFIG: none }, logger })("x:1")).toBeUndefined();
    expect(logger.records).toEqual([]);
    const bad = configDir("{not json");
    mkdirSync(join(bad, "sub"), { recursive: true });
    expect(await registryAuth({ env: { DOCKER_CONFIG: bad }, logger })("x:1")).toBeUndefined();
    expect(logger.records).toMatchObject([
      { level: "warn", fields: { file: join(bad, "config.json") } },
    ]);
  });

  it("encodes X-Registry-Auth as the engine decodes it: URL-safe base64 with its padding", () => {
    const header = registryAuthHeader({ username: "u?>", password: "p", serveraddress: "r" });
    expect(header).toMatch(/^[A-Za-z0-9_-]+=*$/);
    expect(header.length % 4).toBe(0);
    expect(JSON.parse(Buffer.from(header, "base64url").toString("utf8"))).toEqual({
      username: "u?>",
      password: "p",
      serveraddress: "r",
    });
  });
});
