/**
 * The dockerode fallback over TLS, for real: a local TLS front for the
 * engine's socket (mutual TLS with certificates made here by openssl), and
 * DOCKER_HOST=tcp://127.0.0.1:<port> with DOCKER_TLS_VERIFY and
 * DOCKER_CERT_PATH, exactly as an operator would set them.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { createServer, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EngineUnavailableError } from "../../src/engine/errors.ts";
import { createDockerBackend } from "../../src/platform/docker/create-backend.ts";
import { UndiciTaskClient } from "../../src/platform/task-client.ts";
import { containerBackendContract } from "../contract/container-backend.contract.ts";
import { taskRuntimeContract } from "../contract/task-runtime.contract.ts";
import { dockerRuntimeSubject } from "../support/docker-runtime.ts";
import { docker, dockerEndpoint } from "../support/docker-env.ts";
import {
  CRASH_IMAGE,
  ECHO_IMAGE,
  NEVER_READY_IMAGE,
  PULLED_IMAGE,
  REGISTRY,
} from "../support/fixtures.ts";

let certDir: string;
let server: Server;
let port: number;

beforeAll(async () => {
  certDir = mkdtempSync(join(tmpdir(), "meca-docker-tls-"));
  makeCertificates(certDir);
  const endpoint = dockerEndpoint();
  if (!("socketPath" in endpoint)) throw new Error("The TLS test fronts a unix socket engine");
  server = createServer(
    {
      key: readFileSync(join(certDir, "server-key.pem")),
      cert: readFileSync(join(certDir, "server-cert.pem")),
      ca: readFileSync(join(certDir, "ca.pem")),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      const upstream = httpRequest(
        {
          socketPath: endpoint.socketPath,
          path: req.url,
          method: req.method,
          headers: req.headers,
        },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          res.flushHeaders();
          up.pipe(res);
        },
      );
      upstream.on("error", () => res.destroy());
      res.on("close", () => upstream.destroy());
      req.pipe(upstream);
    },
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

const tlsEnv = () => ({
  DOCKER_HOST: `tcp://127.0.0.1:${port}`,
  DOCKER_TLS_VERIFY: "1",
  DOCKER_CERT_PATH: certDir,
});

containerBackendContract("DockerBackend over dockerode with TLS", async () => {
  const backend = await createDockerBackend(tlsEnv());
  const client = new UndiciTaskClient();
  return {
    backend,
    client,
    images: {
      echo: ECHO_IMAGE,
      crash: CRASH_IMAGE,
      neverReady: NEVER_READY_IMAGE,
      missing: `${REGISTRY}/meca-test/missing:1`,
      pullable: PULLED_IMAGE,
    },
    kill: async (id) => void docker(["kill", id]),
    removeImage: async (ref) => void docker(["image", "rm", "--force", ref]),
    // A TLS front on a port nobody listens on any more.
    unreachable: async () => {
      const closed = createServer();
      await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
      const free = (closed.address() as { port: number }).port;
      await new Promise((r) => closed.close(r));
      return createDockerBackend({ ...tlsEnv(), DOCKER_HOST: `tcp://127.0.0.1:${free}` });
    },
    cleanup: async () => void (await Promise.all([backend.close(), client.close()])),
  };
});

taskRuntimeContract("DockerTasks over dockerode with TLS", async () => {
  // A TLS front on a port nobody listens on any more.
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
  const free = (closed.address() as { port: number }).port;
  await new Promise((r) => closed.close(r));
  return dockerRuntimeSubject({
    backend: await createDockerBackend(tlsEnv()),
    client: new UndiciTaskClient(),
    unreachable: await createDockerBackend({ ...tlsEnv(), DOCKER_HOST: `tcp://127.0.0.1:${free}` }),
  });
});

describe("createDockerBackend() with TLS", () => {
  it("reports the TLS transport", async () => {
    const backend = await createDockerBackend(tlsEnv());
    expect((await backend.info()).transport).toBe(`tcp://127.0.0.1:${port} (TLS)`);
    await backend.close();
  });

  it("says the engine is unavailable when the server refuses the client (no certificates)", async () => {
    const backend = await createDockerBackend({ DOCKER_HOST: `https://127.0.0.1:${port}` });
    await expect(backend.info()).rejects.toBeInstanceOf(EngineUnavailableError);
    await backend.close();
  });

  it("says the engine is unavailable when the certificate folder cannot be read", async () => {
    await expect(
      createDockerBackend({ ...tlsEnv(), DOCKER_CERT_PATH: join(certDir, "missing") }),
    ).rejects.toBeInstanceOf(EngineUnavailableError);
  });
});

/** A CA, a server certificate for 127.0.0.1 and a client certificate, named as Docker expects. */
function makeCertificates(dir: string): void {
  const ssl = (...args: string[]) =>
    execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  ssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=meca-test-ca",
    "-keyout",
    "ca-key.pem",
    "-out",
    "ca.pem",
  );
  writeFileSync(
    join(dir, "server.ext"),
    "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
  );
  writeFileSync(join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
  for (const [name, ext] of [
    ["server", "server.ext"],
    ["client", "client.ext"],
  ] as const) {
    ssl(
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      `/CN=${name}`,
      "-keyout",
      `${name}-key.pem`,
      "-out",
      `${name}.csr`,
    );
    ssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca-key.pem",
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      ext,
      "-out",
      `${name}-cert.pem`,
    );
  }
  // Docker's names for the client side: ca.pem, cert.pem, key.pem.
  writeFileSync(join(dir, "cert.pem"), readFileSync(join(dir, "client-cert.pem")));
  writeFileSync(join(dir, "key.pem"), readFileSync(join(dir, "client-key.pem")));
}
