/**
 * Where the Docker engine is, from DOCKER_HOST and friends. Pure: the
 * environment comes in as an argument so tests pass a plain object.
 *
 * `unix://` and plain `tcp://` are spoken with fetch; `ssh://` and TLS
 * (DOCKER_TLS_VERIFY, DOCKER_TLS or DOCKER_CERT_PATH, or an `https://`
 * host) need the dockerode fallback.
 */
import { EngineUnavailableError } from "../../engine/errors.ts";

export type DockerEnv = Readonly<Record<string, string | undefined>>;

export const DEFAULT_SOCKET_PATH = "/var/run/docker.sock";

export type DockerHost =
  | { kind: "unix"; socketPath: string; transport: string }
  | { kind: "tcp"; host: string; port: number; baseUrl: string; transport: string }
  | {
      kind: "dockerode";
      /** Why fetch cannot be used: an ssh:// host or TLS. */
      reason: "ssh" | "tls";
      protocol: "ssh" | "https";
      host: string;
      port: number;
      username?: string;
      /** TLS: folder with ca.pem, cert.pem and key.pem (DOCKER_CERT_PATH). */
      certPath?: string;
      /** TLS: verify the engine's certificate (DOCKER_TLS_VERIFY). */
      verify: boolean;
      transport: string;
    };

/** Parses DOCKER_HOST; throws EngineUnavailableError for a value it cannot use. */
export function parseDockerHost(env: DockerEnv): DockerHost {
  const raw = env.DOCKER_HOST?.trim() || `unix://${DEFAULT_SOCKET_PATH}`;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(raw)?.[1]?.toLowerCase();
  if (scheme === "unix") {
    const socketPath = raw.slice("unix://".length) || DEFAULT_SOCKET_PATH;
    return { kind: "unix", socketPath, transport: `unix://${socketPath}` };
  }
  if (scheme === undefined && raw.startsWith("/")) {
    return { kind: "unix", socketPath: raw, transport: `unix://${raw}` };
  }
  if (scheme !== "tcp" && scheme !== "http" && scheme !== "https" && scheme !== "ssh") {
    throw new EngineUnavailableError(
      `Cannot use DOCKER_HOST "${raw}": unsupported scheme, expected unix://, tcp:// or ssh://`,
    );
  }
  const url = parseUrl(raw);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (host === "")
    throw new EngineUnavailableError(`Cannot use DOCKER_HOST "${raw}": no host name`);
  if (scheme === "ssh") {
    const port = url.port === "" ? 22 : Number(url.port);
    const username = url.username === "" ? undefined : decodeURIComponent(url.username);
    const transport = `ssh://${username === undefined ? "" : `${username}@`}${url.host}`;
    return {
      kind: "dockerode",
      reason: "ssh",
      protocol: "ssh",
      host,
      port,
      username,
      verify: false,
      transport,
    };
  }
  const tls =
    scheme === "https" ||
    isSet(env.DOCKER_TLS_VERIFY) ||
    isSet(env.DOCKER_TLS) ||
    isSet(env.DOCKER_CERT_PATH);
  const port = url.port === "" ? (tls ? 2376 : 2375) : Number(url.port);
  const hostPort = `${url.hostname}:${port}`;
  if (tls) {
    const certPath = isSet(env.DOCKER_CERT_PATH) ? env.DOCKER_CERT_PATH : undefined;
    const verify = isSet(env.DOCKER_TLS_VERIFY);
    return {
      kind: "dockerode",
      reason: "tls",
      protocol: "https",
      host,
      port,
      certPath,
      verify,
      transport: `tcp://${hostPort} (TLS)`,
    };
  }
  return { kind: "tcp", host, port, baseUrl: `http://${hostPort}`, transport: `tcp://${hostPort}` };
}

function parseUrl(raw: string): URL {
  try {
    // URL does not know tcp:// or ssh:// defaults; parse them as http to get host and port.
    return new URL(raw.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "http://"));
  } catch (cause) {
    throw new EngineUnavailableError(`Cannot use DOCKER_HOST "${raw}": not a valid address`, {
      cause,
    });
  }
}

/** Docker treats any non-empty value as set (DOCKER_TLS_VERIFY=0 still means TLS). */
function isSet(value: string | undefined): value is string {
  return value !== undefined && value !== "";
}
