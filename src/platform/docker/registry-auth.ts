/**
 * Credentials for pulls, from the Docker client's own configuration, as `docker pull` finds them:
 * `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`; for the image's registry, its
 * `credHelpers` entry, else `credsStore`, through the `docker-credential-<name> get` program, else
 * its `auths` entry. The file is read at each pull, so a `docker login` takes effect without a
 * restart. Credentials go only into the pull's X-Registry-Auth header: never into a log line, an
 * answer, /tasks or /ui. See docs/configuration.md, "Images".
 */
import { Buffer } from "node:buffer";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { parseImageRef } from "../../engine/image-ref.ts";
import type { Logger } from "../../engine/ports.ts";

/** What X-Registry-Auth carries: a user and password, or an identity token. */
export interface RegistryCredentials {
  username?: string;
  password?: string;
  identitytoken?: string;
  serveraddress: string;
}

interface ClientConfig {
  auths?: Record<
    string,
    { auth?: string; username?: string; password?: string; identitytoken?: string }
  >;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** Docker Hub's names in a client config; the first is the key `docker login` writes. */
const HUB_KEYS = [
  "https://index.docker.io/v1/",
  "index.docker.io",
  "docker.io",
  "registry-1.docker.io",
];

/** The Docker client config file `docker pull` would read, for this environment. */
export function clientConfigPath(env: Record<string, string | undefined>): string {
  return env.DOCKER_CONFIG
    ? join(env.DOCKER_CONFIG, "config.json")
    : join(env.HOME || home(), ".docker", "config.json");
}

/** The user's home folder; "/root" in an image whose user has no entry in /etc/passwd. */
function home(): string {
  try {
    return homedir();
  } catch {
    return "/root";
  }
}

/** The registry an image reference names: its host[:port], or Docker Hub. */
export function registryOf(ref: string): string {
  const parsed = parseImageRef(ref);
  return "error" in parsed || parsed.domain === undefined ? "docker.io" : parsed.domain;
}

/** `https://host:5000/v1/` → `host:5000`: how config keys and registries are compared. */
function hostOf(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, "").replace(/\/.*$/, "");
}

export interface RegistryAuthOptions {
  env: Record<string, string | undefined>;
  logger: Logger;
  /** Runs `docker-credential-<helper> get` with `server` on its input; its output (tests pass their own). */
  runHelper?: (helper: string, server: string) => Promise<string>;
}

/** A function that gives the credentials for an image's registry, or undefined when the config has none. */
export function registryAuth(
  o: RegistryAuthOptions,
): (ref: string) => Promise<RegistryCredentials | undefined> {
  const log = o.logger.child({ component: "registry-auth" });
  const runHelper = o.runHelper ?? defaultHelper;
  const warned = new Set<string>();
  const warnOnce = (what: string, fields: Record<string, unknown>) => {
    if (warned.has(what)) return;
    warned.add(what);
    log.warn(what, fields);
  };
  return async (ref) => {
    const file = clientConfigPath(o.env);
    let config: ClientConfig;
    try {
      config = JSON.parse(await readFile(file, "utf8")) as ClientConfig;
      if (typeof config !== "object" || config === null) throw new Error("not a JSON object");
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== "ENOENT")
        warnOnce("Cannot read the Docker client's config: pulls go without credentials", {
          file,
          error: (e as Error).message,
        });
      return undefined;
    }
    const registry = registryOf(ref);
    const hub = registry === "docker.io";
    const matches = (key: string) =>
      hub ? HUB_KEYS.includes(key) || HUB_KEYS.includes(hostOf(key)) : hostOf(key) === registry;
    const server = hub ? HUB_KEYS[0]! : registry;
    const helper =
      Object.entries(config.credHelpers ?? {}).find(([k]) => matches(k))?.[1] ?? config.credsStore;
    if (helper) {
      try {
        const out = JSON.parse(await runHelper(helper, server)) as {
          Username?: string;
          Secret?: string;
        };
        if (out.Secret) {
          return out.Username === "<token>"
            ? { identitytoken: out.Secret, serveraddress: server }
            : { username: out.Username, password: out.Secret, serveraddress: server };
        }
      } catch (e) {
        // No credentials for this registry in the helper, or no helper program here: as docker does, go on without.
        warnOnce(`Cannot get credentials from docker-credential-${helper}`, {
          registry,
          error: (e as Error).message.split("\n")[0],
        });
      }
    }
    const entry = Object.entries(config.auths ?? {}).find(([k]) => matches(k))?.[1];
    if (!entry) return undefined;
    if (entry.identitytoken) return { identitytoken: entry.identitytoken, serveraddress: server };
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon > 0)
        return {
          username: decoded.slice(0, colon),
          password: decoded.slice(colon + 1),
          serveraddress: server,
        };
    }
    if (entry.username && entry.password)
      return { username: entry.username, password: entry.password, serveraddress: server };
    return undefined;
  };
}

function defaultHelper(helper: string, server: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      `docker-credential-${helper}`,
      ["get"],
      { timeout: 10_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(stderr.trim() || err.message));
        else resolve(stdout);
      },
    );
    child.stdin?.end(server);
  });
}

/**
 * The X-Registry-Auth header: the credentials as JSON in the URL-safe base64 alphabet, with its
 * padding (the engine's decoder refuses base64url without it).
 */
export function registryAuthHeader(c: RegistryCredentials): string {
  return Buffer.from(JSON.stringify(c)).toString("base64").replace(/\+/g, "-").replace(/\//g, "_");
}
