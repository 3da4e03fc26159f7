import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EngineUnavailableError } from "../../../src/engine/errors.ts";
import { parseDockerHost } from "../../../src/platform/docker/docker-host.ts";
import { dockerodeOptions } from "../../../src/platform/docker/dockerode-backend.ts";
import { scratchDir } from "../../support/scratch.ts";

function dockerodeHost(env: Record<string, string>) {
  const host = parseDockerHost(env);
  if (host.kind !== "dockerode") throw new Error(`expected a dockerode host, got ${host.kind}`);
  return host;
}

describe("dockerodeOptions()", () => {
  it("connects over ssh with the user, port and the ssh agent", () => {
    const env = { DOCKER_HOST: "ssh://ops@box:2222", SSH_AUTH_SOCK: "/run/agent.sock" };
    expect(dockerodeOptions(dockerodeHost(env), env)).toEqual({
      protocol: "ssh",
      host: "box",
      port: 2222,
      username: "ops",
      sshOptions: { agent: "/run/agent.sock" },
    });
  });

  it("reads ca.pem, cert.pem and key.pem from DOCKER_CERT_PATH and verifies the engine", () => {
    const dir = scratchDir("meca-certs-");
    for (const f of ["ca.pem", "cert.pem", "key.pem"]) writeFileSync(join(dir, f), `${f} contents`);
    const env = { DOCKER_HOST: "tcp://h:2376", DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: dir };
    const opts = dockerodeOptions(dockerodeHost(env), env);
    expect(opts).toMatchObject({ protocol: "https", host: "h", port: 2376 });
    expect(String(opts.ca)).toBe("ca.pem contents");
    expect(String(opts.key)).toBe("key.pem contents");
    expect(opts.agent).toBeUndefined();
  });

  it("skips verification with DOCKER_TLS alone, through its own agent", () => {
    const env = { DOCKER_HOST: "tcp://h:2376", DOCKER_TLS: "1" };
    const opts = dockerodeOptions(dockerodeHost(env), env);
    expect(opts.agent?.options.rejectUnauthorized).toBe(false);
  });

  it("says the engine is unavailable when the certificates cannot be read", () => {
    const env = { DOCKER_HOST: "tcp://h:2376", DOCKER_CERT_PATH: "/nonexistent/certs" };
    expect(() => dockerodeOptions(dockerodeHost(env), env)).toThrow(EngineUnavailableError);
    expect(() => dockerodeOptions(dockerodeHost(env), env)).toThrow(
      'Cannot read the Docker TLS certificates in "/nonexistent/certs"',
    );
  });
});
