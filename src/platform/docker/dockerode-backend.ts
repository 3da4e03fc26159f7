/**
 * The dockerode fallback for engines that fetch cannot reach simply: ssh://
 * hosts and TLS. Only the transport differs: `DockerodeApi` speaks the same
 * raw operations as `EngineApi`, and `DockerBackend` maps them for both.
 */
import { readFileSync } from "node:fs";
import { Agent as HttpsAgent } from "node:https";
import { join } from "node:path";
import { Readable } from "node:stream";
import Docker from "dockerode";
import { EngineUnavailableError } from "../../engine/errors.ts";
import { DockerBackend, type DockerBackendOptions } from "./docker-backend.ts";
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
import type { DockerEnv, DockerHost } from "./docker-host.ts";
import { chooseApiVersion, describe } from "./engine-api.ts";
import type { ByteSource } from "./log-demux.ts";
import type { RegistryCredentials } from "./registry-auth.ts";

type DockerodeHost = Extract<DockerHost, { kind: "dockerode" }>;

export class DockerodeApi implements DockerApi {
  readonly transport: string;
  #docker: Docker;
  #negotiated: Promise<void> | undefined;

  constructor(docker: Docker, transport: string) {
    this.#docker = docker;
    this.transport = transport;
  }

  version(signal?: AbortSignal): Promise<VersionJson> {
    return this.#call(
      signal,
      () => this.#withSignal().version({ abortSignal: signal }) as Promise<VersionJson>,
    );
  }

  info(signal?: AbortSignal): Promise<InfoJson> {
    return this.#call(
      signal,
      () => this.#withSignal().info({ abortSignal: signal }) as Promise<InfoJson>,
    );
  }

  async imageExists(ref: string): Promise<boolean> {
    try {
      await this.#call(undefined, () => this.#docker.getImage(ref).inspect());
      return true;
    } catch (err) {
      if (err instanceof DockerApiError && err.status === 404) return false;
      throw err;
    }
  }

  pull(
    image: { fromImage: string; tag: string },
    signal?: AbortSignal,
    auth?: RegistryCredentials,
  ): Promise<ByteSource> {
    return this.#call(signal, async () =>
      bytes(
        await this.#docker.createImage({
          ...image,
          abortSignal: signal,
          ...(auth ? { authconfig: auth } : {}),
        }),
      ),
    );
  }

  async importImage(
    tar: Uint8Array,
    image: { repo: string; tag: string },
    changes: string[],
  ): Promise<ByteSource> {
    return this.#call(undefined, async () =>
      bytes(
        await this.#docker.importImage(Readable.from([Buffer.from(tar)]), { ...image, changes }),
      ),
    );
  }

  async createContainer(name: string, body: Record<string, unknown>): Promise<string> {
    const container = await this.#call(undefined, () =>
      this.#docker.createContainer({ ...body, name }),
    );
    return container.id;
  }

  async startContainer(id: string): Promise<void> {
    await this.#call(undefined, () => this.#docker.getContainer(id).start());
  }

  inspectContainer(id: string, opts?: { size?: boolean }): Promise<ContainerJson> {
    return this.#call(
      undefined,
      () =>
        this.#docker
          .getContainer(id)
          .inspect(
            opts?.size ? ({ size: true } as Record<string, unknown>) : {},
          ) as Promise<unknown> as Promise<ContainerJson>,
    );
  }

  async logs(
    id: string,
    opts: { follow: boolean; tail?: number; signal?: AbortSignal },
  ): Promise<ByteSource> {
    const c = this.#docker.getContainer(id);
    const base = {
      stdout: true,
      stderr: true,
      since: 0,
      tail: opts.tail,
      abortSignal: opts.signal,
    };
    if (opts.follow)
      return this.#call(opts.signal, async () => bytes(await c.logs({ ...base, follow: true })));
    // Without follow dockerode answers with the whole body at once.
    const buf = await this.#call(opts.signal, () => c.logs({ ...base, follow: false }));
    return single(new Uint8Array(buf));
  }

  async removeContainer(id: string): Promise<void> {
    await this.#call(undefined, () =>
      this.#docker.getContainer(id).remove({ force: true, v: true }),
    );
  }

  listContainers(filters: Filters): Promise<ContainerListJson[]> {
    return this.#call(
      undefined,
      () => this.#docker.listContainers({ all: true, filters }) as Promise<ContainerListJson[]>,
    );
  }

  async createNetwork(body: Record<string, unknown>): Promise<string> {
    const network = await this.#call(undefined, () =>
      this.#docker.createNetwork(body as unknown as Docker.NetworkCreateOptions),
    );
    return network.id;
  }

  async removeNetwork(id: string): Promise<void> {
    await this.#call(undefined, () => this.#docker.getNetwork(id).remove());
  }

  listNetworks(filters: Filters): Promise<NetworkJson[]> {
    return this.#call(
      undefined,
      () => this.#docker.listNetworks({ filters }) as Promise<NetworkJson[]>,
    );
  }

  async connectNetwork(id: string, container: string): Promise<void> {
    await this.#call(undefined, () =>
      this.#docker.getNetwork(id).connect({ Container: container }),
    );
  }

  async disconnectNetwork(id: string, container: string): Promise<void> {
    await this.#call(undefined, () =>
      this.#docker.getNetwork(id).disconnect({ Container: container, Force: true }),
    );
  }

  stats(id: string, signal: AbortSignal): Promise<ByteSource> {
    return this.#call(signal, async () =>
      // dockerode passes abortSignal on to its request; its types leave it out of stats' options.
      bytes(
        await this.#docker
          .getContainer(id)
          .stats({ stream: true, abortSignal: signal } as { stream: true }),
      ),
    );
  }

  events(filters: Filters, signal: AbortSignal): Promise<ByteSource> {
    return this.#call(signal, async () =>
      bytes(await this.#docker.getEvents({ filters, abortSignal: signal })),
    );
  }

  async close(): Promise<void> {}

  /** Negotiates the API version once, runs `fn`, and maps dockerode's errors. */
  async #call<T>(signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      this.#negotiated ??= this.#negotiate(signal);
      await this.#negotiated;
      return await fn();
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw this.#mapError(err);
    }
  }

  async #negotiate(signal?: AbortSignal): Promise<void> {
    const modem = this.#docker.modem as { version?: string };
    try {
      const v = (await this.#withSignal().version({ abortSignal: signal })) as VersionJson;
      modem.version = `v${chooseApiVersion(v)}`;
    } catch (err) {
      this.#negotiated = undefined;
      throw err;
    }
  }

  /** dockerode accepts `abortSignal` on these calls; its types do not say so. */
  #withSignal(): SignalCalls {
    return this.#docker as unknown as SignalCalls;
  }

  #mapError(err: unknown): Error {
    if (err instanceof DockerApiError || err instanceof EngineUnavailableError) return err;
    const e = err as { statusCode?: unknown; json?: unknown; message?: string };
    if (typeof e.statusCode === "number")
      return new DockerApiError(e.statusCode, reasonOf(e), { cause: err });
    return new EngineUnavailableError(
      `Cannot reach the Docker engine at "${this.transport}": ${describe(err)}`,
      {
        cause: err,
      },
    );
  }
}

/** Docker's own message from a dockerode error ("No such container: abc"). */
function reasonOf(e: { json?: unknown; message?: string }): string {
  const json = e.json as { message?: unknown } | string | Uint8Array | null | undefined;
  if (
    json !== null &&
    typeof json === "object" &&
    "message" in json &&
    typeof json.message === "string"
  )
    return json.message;
  if (typeof json === "string" && json.trim() !== "") return json.trim();
  if (json instanceof Uint8Array && json.length > 0) return new TextDecoder().decode(json).trim();
  return e.message ?? "unknown error";
}

interface SignalCalls {
  version(opts: { abortSignal?: AbortSignal }): Promise<unknown>;
  info(opts: { abortSignal?: AbortSignal }): Promise<unknown>;
}

/** A Node stream of Buffers, which are Uint8Arrays. */
function bytes(stream: NodeJS.ReadableStream): AsyncIterable<Uint8Array> {
  return stream as AsyncIterable<Uint8Array>;
}

async function* single(chunk: Uint8Array): AsyncGenerator<Uint8Array> {
  yield chunk;
}

/** Dockerode client options for an ssh:// or TLS host, reading certificates from DOCKER_CERT_PATH. */
export function dockerodeOptions(
  host: DockerodeHost,
  env: DockerEnv,
): Docker.DockerOptions & { agent?: HttpsAgent } {
  if (host.protocol === "ssh") {
    return {
      protocol: "ssh",
      host: host.host,
      port: host.port,
      username: host.username,
      sshOptions: env.SSH_AUTH_SOCK === undefined ? {} : { agent: env.SSH_AUTH_SOCK },
    };
  }
  const tls = host.certPath === undefined ? {} : readCerts(host.certPath);
  const opts: Docker.DockerOptions & { agent?: HttpsAgent } = {
    protocol: "https",
    host: host.host,
    port: host.port,
    ...tls,
  };
  if (!host.verify)
    opts.agent = new HttpsAgent({ ...tls, keepAlive: true, rejectUnauthorized: false });
  return opts;
}

function readCerts(dir: string): { ca: Buffer; cert: Buffer; key: Buffer } {
  try {
    return {
      ca: readFileSync(join(dir, "ca.pem")),
      cert: readFileSync(join(dir, "cert.pem")),
      key: readFileSync(join(dir, "key.pem")),
    };
  } catch (cause) {
    throw new EngineUnavailableError(`Cannot read the Docker TLS certificates in "${dir}"`, {
      cause,
    });
  }
}

/** A DockerBackend that reaches the engine through dockerode (ssh:// or TLS). */
export function createDockerodeBackend(
  host: DockerodeHost,
  env: DockerEnv,
  opts?: DockerBackendOptions,
): DockerBackend {
  const docker = new Docker(dockerodeOptions(host, env));
  return new DockerBackend(new DockerodeApi(docker, host.transport), opts);
}
