/**
 * Picks the Docker transport from DOCKER_HOST. `unix://` and plain `tcp://`
 * speak the Engine API directly: on Node over node:http (`node-transport.ts`:
 * a kept-alive agent for short calls, a second one without timeouts for log
 * follows, events, pulls and attach), on Deno over Deno's fetch with a
 * unix-socket client (`deno-transport.ts`); `ssh://` and TLS use dockerode.
 */
import { DockerBackend, type DockerBackendOptions } from "./docker-backend.ts";
import { parseDockerHost, type DockerEnv } from "./docker-host.ts";

export interface CreateDockerBackendOptions extends DockerBackendOptions {
  /** Most concurrent short API calls (default 16). */
  connections?: number;
  /** Most concurrent long streams: log follows, events, pulls, attach (default 256). */
  streamConnections?: number;
}

export async function createDockerBackend(
  env: DockerEnv,
  opts: CreateDockerBackendOptions = {},
): Promise<DockerBackend> {
  const host = parseDockerHost(env);
  if (host.kind === "dockerode") {
    // Loaded only when needed: dockerode brings ssh2 along.
    const { createDockerodeBackend } = await import("./dockerode-backend.ts");
    return createDockerodeBackend(host, env, opts);
  }
  if ("Deno" in globalThis) {
    const { denoEngineApi } = await import("./deno-transport.ts");
    return new DockerBackend(
      denoEngineApi(host, { apiVersion: env.DOCKER_API_VERSION || undefined }),
      opts,
    );
  }
  const { nodeEngineApi } = await import("./node-transport.ts");
  const api = nodeEngineApi(host, {
    apiVersion: env.DOCKER_API_VERSION || undefined,
    connections: opts.connections,
    streamConnections: opts.streamConnections,
  });
  return new DockerBackend(api, opts);
}
