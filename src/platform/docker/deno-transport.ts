/**
 * Deno wiring of the Docker transport: `unix://` goes through fetch with a
 * client from `Deno.createHttpClient({ proxy: { transport: "unix" } })`, plain
 * `tcp://` through the global fetch. Deno's fetch has no body timeout, so log
 * follows and event streams share the one client; callers end them with
 * their AbortSignal.
 */
import type { DockerHost } from "./docker-host.ts";
import { EngineApi, type EngineFetch } from "./engine-api.ts";

interface DenoHttpClient {
  close(): void;
}

interface DenoNet {
  createHttpClient(opts: { proxy: { transport: "unix"; path: string } }): DenoHttpClient;
}

type FetchHost = Exclude<DockerHost, { kind: "dockerode" }>;

/** An EngineApi over Deno's fetch for a unix socket or a plain tcp host. */
export function denoEngineApi(host: FetchHost, opts: { apiVersion?: string } = {}): EngineApi {
  const deno = (globalThis as unknown as { Deno: DenoNet }).Deno;
  const client =
    host.kind === "unix"
      ? deno.createHttpClient({ proxy: { transport: "unix", path: host.socketPath } })
      : undefined;
  const fetchFn: EngineFetch = (url, init) =>
    fetch(url, { ...init, ...(client === undefined ? {} : { client }) } as RequestInit);
  return new EngineApi({
    fetch: fetchFn,
    baseUrl: host.kind === "unix" ? "http://localhost" : host.baseUrl,
    transport: host.transport,
    apiVersion: opts.apiVersion,
    onClose: async () => client?.close(),
  });
}
