/**
 * Picks the Docker transport from DOCKER_HOST. `unix://` and plain `tcp://`
 * use fetch: on Node undici's (kept-alive Agent for short calls, a second one
 * without body timeouts for log follows, events and pulls), on Deno Deno's
 * with a unix-socket client (`deno-transport.ts`); `ssh://` and TLS use
 * dockerode.
 */
import { Agent, fetch as undiciFetch, type Dispatcher } from "undici";
import { DockerBackend, type DockerBackendOptions } from "./docker-backend.ts";
import { parseDockerHost, type DockerEnv } from "./docker-host.ts";
import { EngineApi, type FetchLike } from "./engine-api.ts";

export interface CreateDockerBackendOptions extends DockerBackendOptions {
  /** Most concurrent short API calls (default 16). */
  connections?: number;
  /** Most concurrent long streams: log follows, events, pulls (default 256). */
  streamConnections?: number;
}

export async function createDockerBackend(env: DockerEnv, opts: CreateDockerBackendOptions = {}): Promise<DockerBackend> {
  const host = parseDockerHost(env);
  if (host.kind === "dockerode") {
    // Loaded only when needed: dockerode brings ssh2 along.
    const { createDockerodeBackend } = await import("./dockerode-backend.ts");
    return createDockerodeBackend(host, env, opts);
  }
  if ("Deno" in globalThis) {
    const { denoEngineApi } = await import("./deno-transport.ts");
    return new DockerBackend(denoEngineApi(host, { apiVersion: env.DOCKER_API_VERSION || undefined }), opts);
  }
  const connect = host.kind === "unix" ? { socketPath: host.socketPath } : {};
  const calls = new Agent({ connect, connections: opts.connections ?? 16, keepAliveTimeout: 10_000 });
  // Log follows and event streams stay quiet for long stretches: no body or header timeouts;
  // the callers end them with their AbortSignal. Both pools are bounded and apart from the
  // clients' connections, which the listener caps (max_connections).
  const streams = new Agent({ connect, headersTimeout: 0, bodyTimeout: 0, connections: opts.streamConnections ?? 256 });
  const api = new EngineApi({
    fetch: fetchVia(calls),
    streamFetch: fetchVia(streams),
    baseUrl: host.kind === "unix" ? "http://localhost" : host.baseUrl,
    transport: host.transport,
    apiVersion: env.DOCKER_API_VERSION || undefined,
    onClose: async () => {
      await Promise.all([calls.close(), streams.destroy()]);
    },
  });
  return new DockerBackend(api, opts);
}

/** undici's fetch bound to a dispatcher, as a Web-standard fetch. */
export function fetchVia(dispatcher: Dispatcher): FetchLike {
  return (url, init) =>
    undiciFetch(url, { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher }) as unknown as Promise<Response>;
}
