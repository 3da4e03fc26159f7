/**
 * Docker Engine API over an injected fetch-shaped function that answers with
 * the narrow `EngineResponse`. Node passes node:http with `socketPath`
 * (`node-transport.ts`); Deno passes its fetch with a client from
 * `Deno.createHttpClient` (`deno-transport.ts`), whose Web Response fits the
 * same shape. Nothing here knows which.
 */
import { EngineUnavailableError } from "../../engine/errors.ts";
import type {
  ContainerJson,
  ContainerListJson,
  DockerApi,
  Filters,
  InfoJson,
  NetworkJson,
  VersionJson,
} from "./docker-api.ts";
import { DockerApiError } from "./docker-api.ts";
import { iterateBytes, type ByteSource } from "./log-demux.ts";
import { registryAuthHeader, type RegistryCredentials } from "./registry-auth.ts";

/** What the API reads of an answer; a Web `Response` has this shape. */
export interface EngineResponse {
  status: number;
  statusText: string;
  /** The body as it arrives; null when there is none. */
  body: ByteSource | null;
  text(): Promise<string>;
  json(): Promise<unknown>;
}

export interface EngineRequest {
  method: string;
  headers?: Record<string, string>;
  /** JSON text, or bytes (an image's tar). */
  body?: string | Uint8Array;
  signal?: AbortSignal;
}

/** One request to the engine; rejects when the engine cannot be reached. */
export type EngineFetch = (url: string, init: EngineRequest) => Promise<EngineResponse>;

export interface EngineApiOptions {
  fetch: EngineFetch;
  /** For long streams (logs follow, events, pulls, attach); defaults to `fetch`. */
  streamFetch?: EngineFetch;
  /** `http://localhost` for a unix socket, `http://host:port` for tcp. */
  baseUrl: string;
  transport: string;
  /** Force an API version (DOCKER_API_VERSION); otherwise negotiated from /version. */
  apiVersion?: string;
  /** Releases the dispatchers behind `fetch`. */
  onClose?: () => Promise<void>;
}

/** The API version this code is written against (Docker 20.10). */
export const PREFERRED_API_VERSION = "1.41";

type Query = Record<string, string | number | boolean | undefined>;

interface CallOptions {
  query?: Query;
  headers?: Record<string, string>;
  body?: unknown;
  /** Sent as it is, with its own content type. */
  raw?: { bytes: Uint8Array; type: string };
  signal?: AbortSignal;
  stream?: boolean;
}

export class EngineApi implements DockerApi {
  readonly transport: string;
  #opts: EngineApiOptions;
  #prefix: Promise<string> | undefined;

  constructor(opts: EngineApiOptions) {
    this.#opts = opts;
    this.transport = opts.transport;
    if (opts.apiVersion !== undefined) this.#prefix = Promise.resolve(`/v${opts.apiVersion}`);
  }

  async version(signal?: AbortSignal): Promise<VersionJson> {
    return (await this.call("GET", "/version", { signal })).json() as Promise<VersionJson>;
  }

  async info(signal?: AbortSignal): Promise<InfoJson> {
    return (await this.call("GET", "/info", { signal })).json() as Promise<InfoJson>;
  }

  async imageExists(ref: string): Promise<boolean> {
    try {
      await drain(await this.call("GET", `/images/${imagePath(ref)}/json`));
      return true;
    } catch (err) {
      if (err instanceof DockerApiError && err.status === 404) return false;
      throw err;
    }
  }

  async pull(
    image: { fromImage: string; tag: string },
    signal?: AbortSignal,
    auth?: RegistryCredentials,
  ): Promise<ByteSource> {
    const headers =
      auth === undefined ? undefined : { "x-registry-auth": registryAuthHeader(auth) };
    const res = await this.call("POST", "/images/create", {
      query: image,
      signal,
      stream: true,
      headers,
    });
    return body(res);
  }

  async importImage(
    tar: Uint8Array,
    image: { repo: string; tag: string },
    changes: string[],
  ): Promise<ByteSource> {
    const query: Query = { fromSrc: "-", repo: image.repo, tag: image.tag };
    const url = new URLSearchParams();
    for (const c of changes) url.append("changes", c);
    const res = await this.call("POST", `/images/create?${url}`, {
      query,
      raw: { bytes: tar, type: "application/x-tar" },
    });
    return body(res);
  }

  async createContainer(name: string, spec: Record<string, unknown>): Promise<string> {
    const res = await this.call("POST", "/containers/create", { query: { name }, body: spec });
    return ((await res.json()) as { Id: string }).Id;
  }

  async startContainer(id: string): Promise<void> {
    await drain(await this.call("POST", `/containers/${encodeURIComponent(id)}/start`));
  }

  async inspectContainer(id: string, opts?: { size?: boolean }): Promise<ContainerJson> {
    const query: Query = { size: opts?.size ? 1 : undefined };
    return (
      await this.call("GET", `/containers/${encodeURIComponent(id)}/json`, { query })
    ).json() as Promise<ContainerJson>;
  }

  async logs(
    id: string,
    opts: { follow: boolean; tail?: number; signal?: AbortSignal },
  ): Promise<ByteSource> {
    const query: Query = {
      stdout: 1,
      stderr: 1,
      follow: opts.follow ? 1 : undefined,
      since: 0,
      tail: opts.tail,
    };
    const res = await this.call("GET", `/containers/${encodeURIComponent(id)}/logs`, {
      query,
      signal: opts.signal,
      stream: opts.follow,
    });
    return body(res);
  }

  async attach(id: string, signal: AbortSignal): Promise<ByteSource> {
    const query: Query = { stream: 1, stdout: 1, stderr: 1 };
    const res = await this.call("POST", `/containers/${encodeURIComponent(id)}/attach`, {
      query,
      signal,
      stream: true,
    });
    return body(res);
  }

  async removeContainer(id: string): Promise<void> {
    await drain(
      await this.call("DELETE", `/containers/${encodeURIComponent(id)}`, {
        query: { force: 1, v: 1 },
      }),
    );
  }

  async listContainers(filters: Filters): Promise<ContainerListJson[]> {
    const query = { all: 1, filters: JSON.stringify(filters) };
    return (await this.call("GET", "/containers/json", { query })).json() as Promise<
      ContainerListJson[]
    >;
  }

  async createNetwork(spec: Record<string, unknown>): Promise<string> {
    return (
      (await (await this.call("POST", "/networks/create", { body: spec })).json()) as { Id: string }
    ).Id;
  }

  async removeNetwork(id: string): Promise<void> {
    await drain(await this.call("DELETE", `/networks/${encodeURIComponent(id)}`));
  }

  async listNetworks(filters: Filters): Promise<NetworkJson[]> {
    return (
      await this.call("GET", "/networks", { query: { filters: JSON.stringify(filters) } })
    ).json() as Promise<NetworkJson[]>;
  }

  async connectNetwork(id: string, container: string): Promise<void> {
    await drain(
      await this.call("POST", `/networks/${encodeURIComponent(id)}/connect`, {
        body: { Container: container },
      }),
    );
  }

  async disconnectNetwork(id: string, container: string): Promise<void> {
    await drain(
      await this.call("POST", `/networks/${encodeURIComponent(id)}/disconnect`, {
        body: { Container: container, Force: true },
      }),
    );
  }

  async stats(id: string, signal: AbortSignal): Promise<ByteSource> {
    const res = await this.call("GET", `/containers/${encodeURIComponent(id)}/stats`, {
      query: { stream: "true" },
      signal,
      stream: true,
    });
    return body(res);
  }

  async events(filters: Filters, signal: AbortSignal): Promise<ByteSource> {
    const res = await this.call("GET", "/events", {
      query: { filters: JSON.stringify(filters) },
      signal,
      stream: true,
    });
    return body(res);
  }

  async close(): Promise<void> {
    await this.#opts.onClose?.();
  }

  /** One versioned request; non-2xx statuses become DockerApiError. */
  async call(method: string, path: string, opts: CallOptions = {}): Promise<EngineResponse> {
    const prefix = await this.#versionPrefix(opts.signal);
    const res = await this.#send(method, prefix + path, opts);
    if (res.status >= 400) throw new DockerApiError(res.status, await errorReason(res));
    return res;
  }

  #versionPrefix(signal?: AbortSignal): Promise<string> {
    if (this.#prefix === undefined) {
      const negotiated = this.#negotiate(signal);
      this.#prefix = negotiated;
      // A failed negotiation (engine down) is retried on the next call.
      negotiated.catch(() => {
        if (this.#prefix === negotiated) this.#prefix = undefined;
      });
    }
    return this.#prefix;
  }

  async #negotiate(signal?: AbortSignal): Promise<string> {
    const res = await this.#send("GET", "/version", { signal });
    if (res.status >= 400) throw new DockerApiError(res.status, await errorReason(res));
    return `/v${chooseApiVersion((await res.json()) as VersionJson)}`;
  }

  async #send(method: string, path: string, opts: CallOptions): Promise<EngineResponse> {
    const url = new URL(this.#opts.baseUrl + path);
    for (const [k, v] of Object.entries(opts.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const init: EngineRequest = { method, signal: opts.signal };
    if (opts.headers !== undefined) init.headers = { ...opts.headers };
    if (opts.body !== undefined) {
      init.body = JSON.stringify(opts.body);
      init.headers = { ...init.headers, "content-type": "application/json" };
    } else if (opts.raw !== undefined) {
      init.body = opts.raw.bytes;
      init.headers = { ...init.headers, "content-type": opts.raw.type };
    }
    opts.signal?.throwIfAborted();
    const fetchFn = opts.stream ? (this.#opts.streamFetch ?? this.#opts.fetch) : this.#opts.fetch;
    try {
      return await fetchFn(url.href, init);
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw new EngineUnavailableError(
        `Cannot reach the Docker engine at "${this.transport}": ${describe(err)}`,
        {
          cause: err,
        },
      );
    }
  }
}

/** `a/b:c` keeps its slashes; everything else is escaped. */
export function imagePath(ref: string): string {
  return ref.split("/").map(encodeURIComponent).join("/");
}

/** 1.41 unless the engine is older, or newer and no longer accepts it. */
export function chooseApiVersion(v: VersionJson): string {
  let chosen = PREFERRED_API_VERSION;
  if (v.ApiVersion && compareVersions(v.ApiVersion, chosen) < 0) chosen = v.ApiVersion;
  if (v.MinAPIVersion && compareVersions(v.MinAPIVersion, chosen) > 0) chosen = v.MinAPIVersion;
  return chosen;
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function body(res: EngineResponse): ByteSource {
  return res.body ?? empty();
}

// An async iterable, not a Web ReadableStream: Node's web streams stay unloaded.
async function* empty(): AsyncGenerator<Uint8Array> {}

/** Reads a short body to its end so that the kept-alive connection can be reused. */
async function drain(res: EngineResponse): Promise<void> {
  if (res.body === null) return;
  for await (const _ of iterateBytes(res.body)) {
    // discard
  }
}

async function errorReason(res: EngineResponse): Promise<string> {
  const text = await res.text().catch(() => "");
  try {
    const msg = (JSON.parse(text) as { message?: unknown }).message;
    if (typeof msg === "string") return msg;
  } catch {
    // not JSON: use the text as it is
  }
  return text.trim() || res.statusText || `status ${res.status}`;
}

/** The low-level reason of a failed fetch: "connect ECONNREFUSED /var/run/docker.sock". */
export function describe(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e instanceof Error && e.cause instanceof Error; depth++)
    e = e.cause;
  return e instanceof Error ? e.message : String(e);
}
