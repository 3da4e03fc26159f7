/**
 * Remote engines: DOCKER_HOST=tcp://… with TLS (DOCKER_TLS_VERIFY,
 * DOCKER_CERT_PATH) and ssh://… go through the dockerode fallback behind the
 * same ContainerBackend port. The engine is a second dockerd that shares
 * nothing with the main one (test/support/second-engine.ts), listening with
 * TLS on 127.0.0.1 with certificates made by openssl here. For ssh:// an SSH
 * server written with ssh2 (dockerode's own SSH library) runs
 * `docker system dial-stdio` as sshd would: it pipes the channel to the
 * second engine's socket.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Server as SshServer, utils as sshUtils } from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EngineUnavailableError } from "../../src/engine/errors.ts";
import { createDockerBackend } from "../../src/platform/docker/create-backend.ts";
import { docker } from "../support/docker-env.ts";
import { CRASH_IMAGE, ECHO_IMAGE } from "../support/fixtures.ts";
import { startExecutor } from "../support/harness.ts";
import {
  makeCertificates,
  startSecondEngine,
  type SecondEngine,
} from "../support/second-engine.ts";

// Resources no other test file uses, so that container names never meet on the main engine.
const resource = { cpu: 0.1, mem: 41 };

let engine: SecondEngine;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meca-remote-"));
  engine = await startSecondEngine(join(dir, "engine"), { images: [ECHO_IMAGE, CRASH_IMAGE] });
});

afterAll(async () => {
  await engine?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

function mainEngineNames(): string[] {
  return docker(["ps", "-a", "--format", "{{.Names}}"]).split("\n").filter(Boolean);
}

describe("DOCKER_HOST=tcp:// with TLS", () => {
  const env = () => ({
    DOCKER_HOST: engine.tcpHost,
    DOCKER_TLS_VERIFY: "1",
    DOCKER_CERT_PATH: engine.certPath,
  });

  it("executes tasks on the remote engine through dockerode, and nothing on the main one", async () => {
    const h = await startExecutor({ ready_timeout: 10 }, env());
    try {
      expect(h.executor.engineStatus()).toMatchObject({ reachable: true });
      expect((await h.backend.info()).transport).toBe(`${engine.tcpHost} (TLS)`);
      const r = await h.execute({ id: ECHO_IMAGE, resource, input: "over TLS" });
      expect(r).toMatchObject({ status: 200, body: { success: true, msg: "over TLS" } });
      const [task] = await h.containers();
      expect(engine.docker(["ps", "--format", "{{.Names}}"]).split("\n")).toContain(task!.name);
      expect(mainEngineNames()).not.toContain(task!.name);
      // Logs through dockerode are demultiplexed as well: the crash's exit code and last lines.
      const crash = await h.execute({ id: CRASH_IMAGE, resource });
      expect(crash.body).toMatchObject({ success: false, error: "TASK_EXITED" });
      expect(crash.body.msg).toContain("fatal: cannot open model file");
    } finally {
      expect(await h.close()).toEqual([]);
    }
  });

  it("cannot reach the engine with a client certificate from another CA", async () => {
    const stranger = makeCertificates(join(dir, "stranger"), "stranger");
    const backend = await createDockerBackend({ ...env(), DOCKER_CERT_PATH: stranger.clientDir });
    try {
      await expect(backend.info()).rejects.toBeInstanceOf(EngineUnavailableError);
    } finally {
      await backend.close();
    }
  });
});

describe("DOCKER_HOST=ssh://", () => {
  let ssh: InstanceType<typeof SshServer>;
  let sshPort: number;

  beforeAll(async () => {
    const hostKey = sshUtils.generateKeyPairSync("ed25519").private;
    ssh = new SshServer({ hostKeys: [hostKey] }, (client) => {
      // Any user, no credentials: the test checks the transport, not sshd's auth.
      client.on("authentication", (ctx) => ctx.accept());
      client.on("ready", () => {
        client.on("session", (acceptSession) => {
          const session = acceptSession();
          session.on("exec", (accept, reject, info) => {
            if (info.command !== "docker system dial-stdio") return reject();
            const channel = accept();
            const socket = connect(engine.socketPath);
            channel.pipe(socket).pipe(channel);
            socket.on("error", () => channel.close());
            channel.on("close", () => socket.destroy());
          });
        });
      });
      client.on("error", () => {});
    });
    await new Promise<void>((resolve) => ssh.listen(0, "127.0.0.1", resolve));
    sshPort = (ssh.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => ssh?.close(resolve));
  });

  it("executes a task on the remote engine through dockerode over SSH", async () => {
    const h = await startExecutor(
      { ready_timeout: 10 },
      { DOCKER_HOST: `ssh://meca@127.0.0.1:${sshPort}` },
    );
    try {
      expect((await h.backend.info()).transport).toBe(`ssh://meca@127.0.0.1:${sshPort}`);
      const r = await h.execute({ id: ECHO_IMAGE, resource, input: "over SSH" });
      expect(r).toMatchObject({ status: 200, body: { success: true, msg: "over SSH" } });
      const again = await h.execute({ id: ECHO_IMAGE, resource, input: "warm" });
      expect(again.body.msg).toBe("warm");
    } finally {
      expect(await h.close()).toEqual([]);
    }
  });
});
