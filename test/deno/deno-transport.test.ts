/**
 * Under Deno (`deno task test`), the Docker transport speaks HTTP over a unix
 * socket through Deno.createHttpClient: checked against a stand-in engine on
 * a socket in a temporary folder. Skipped under Node, whose transport
 * (node:http) test/platform/docker/node-transport.test.ts covers.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDockerHost } from "../../src/platform/docker/docker-host.ts";
import { denoEngineApi } from "../../src/platform/docker/deno-transport.ts";
import { EngineUnavailableError } from "../../src/engine/errors.ts";

const underDeno = "Deno" in globalThis;

describe.skipIf(!underDeno)("denoEngineApi() over a unix socket", () => {
  let dir: string;
  let socketPath: string;
  let server: Server;
  const seen: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "deno-transport-"));
    socketPath = join(dir, "docker.sock");
    server = createServer((req, res) => {
      // Deno sends through a unix "proxy" in absolute form (GET http://localhost/version), as Go's server accepts.
      const url = new URL(req.url ?? "/", "http://localhost");
      const path = url.pathname + url.search;
      seen.push(`${req.method} ${path}`);
      res.setHeader("content-type", "application/json");
      if (path === "/version")
        return res.end(
          JSON.stringify({ Version: "20.10.24", ApiVersion: "1.41", MinAPIVersion: "1.12" }),
        );
      if (path.startsWith("/v1.41/containers/json"))
        return res.end(
          JSON.stringify([{ Id: "abc", Names: ["/t"], Labels: {}, State: "running" }]),
        );
      res.statusCode = 404;
      res.end(JSON.stringify({ message: "No such container: nope" }));
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it("negotiates the API version, then calls the versioned path", async () => {
    const host = parseDockerHost({ DOCKER_HOST: `unix://${socketPath}` });
    if (host.kind !== "unix") throw new Error("expected a unix host");
    const api = denoEngineApi(host);
    try {
      const list = await api.listContainers({ label: ["x=1"] });
      expect(list).toEqual([expect.objectContaining({ Id: "abc" })]);
      await expect(api.inspectContainer("nope")).rejects.toMatchObject({ status: 404 });
      expect(seen).toEqual([
        "GET /version",
        expect.stringMatching(/^GET \/v1\.41\/containers\/json\?all=1&filters=/),
        "GET /v1.41/containers/nope/json",
      ]);
    } finally {
      await api.close();
    }
  });

  it("reports a socket nobody listens on as EngineUnavailableError", async () => {
    const host = parseDockerHost({ DOCKER_HOST: `unix://${join(dir, "absent.sock")}` });
    if (host.kind !== "unix") throw new Error("expected a unix host");
    const api = denoEngineApi(host);
    try {
      await expect(api.version()).rejects.toBeInstanceOf(EngineUnavailableError);
    } finally {
      await api.close();
    }
  });
});
