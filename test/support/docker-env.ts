/**
 * The real parts the integration tests run against: a Docker engine (Debian's
 * docker.io, with gVisor's runsc registered as an extra runtime), the fixture
 * images, and Debian's docker-registry on 127.0.0.1:5055 for pull tests.
 * Each `ensure*` starts what does not answer yet and leaves it running after
 * the tests (detached, in its own session), so the next run finds it warm.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ECHO_IMAGE, PULLED_IMAGE, REGISTRY, TEST_LABEL } from "./fixtures.ts";

/** What installs everything the integration tests use (scripts/host-setup.sh --tests through it). */
export const INSTALL_HINT = "sudo bash scripts/test.sh";
const DEFAULT_SOCKET = "/var/run/docker.sock";
const DAEMON_JSON = "/etc/docker/daemon.json";
const DOCKERD_LOG = "/tmp/meca-dockerd.log";
const REGISTRY_LOG = "/tmp/meca-registry.log";
const START_DEADLINE_MS = 60_000;

type DockerEndpoint = { socketPath: string } | { host: string; port: number };

/** Where the engine is expected: DOCKER_HOST (unix:// or tcp://), else the default socket. */
export function dockerEndpoint(
  env: Record<string, string | undefined> = process.env,
): DockerEndpoint {
  const host = env.DOCKER_HOST;
  if (!host) return { socketPath: DEFAULT_SOCKET };
  if (host.startsWith("unix://")) return { socketPath: host.slice("unix://".length) };
  const url = new URL(host.replace(/^tcp:/, "http:"));
  return { host: url.hostname, port: Number(url.port || 2375) };
}

/** True when the engine answers `GET /_ping` with 200. */
export function pingDocker(endpoint: DockerEndpoint = dockerEndpoint()): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ ...endpoint, path: "/_ping", timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}

/** Makes sure a Docker engine answers, starting Debian's dockerd when none does. */
export async function ensureDocker(): Promise<void> {
  const endpoint = dockerEndpoint();
  if (await pingDocker(endpoint)) return;
  if (!("socketPath" in endpoint)) {
    throw new Error(
      `Cannot reach the Docker engine at "${process.env.DOCKER_HOST}": it does not answer`,
    );
  }
  // MECA_TEST_DOCKERD names another dockerd (or a missing one, to see what a newcomer sees).
  const dockerd = findExecutable(process.env.MECA_TEST_DOCKERD ?? "dockerd");
  if (!dockerd) {
    throw new Error(
      `Cannot start the Docker engine: dockerd is not installed (as root: ${INSTALL_HINT})`,
    );
  }
  const runsc = findExecutable("runsc");
  if (runsc) registerRunsc(runsc);
  const args =
    endpoint.socketPath === DEFAULT_SOCKET ? [] : ["--host", `unix://${endpoint.socketPath}`];
  const child = startDetached(dockerd, args, DOCKERD_LOG);
  await waitUntil(() => pingDocker(endpoint), {
    what: "the Docker engine",
    child,
    log: DOCKERD_LOG,
  });
}

/** Adds runsc (gVisor) to the engine's runtimes in daemon.json, keeping every other key. */
export function registerRunsc(runscPath: string, file = DAEMON_JSON): void {
  let config: Record<string, unknown> = {};
  if (existsSync(file)) {
    const text = readFileSync(file, "utf8");
    try {
      config = text.trim() ? JSON.parse(text) : {};
    } catch (err) {
      throw new Error(`Cannot register runsc in "${file}": the file is not valid JSON`, {
        cause: err,
      });
    }
  }
  const runtimes = (config.runtimes ?? {}) as Record<string, unknown>;
  if (runtimes.runsc) return;
  config.runtimes = { ...runtimes, runsc: { path: runscPath, runtimeArgs: ["--network=host"] } };
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
}

/** True when the engine lists `name` among its runtimes (e.g. "runsc"). */
export function hasRuntime(name: string): boolean {
  const runtimes = JSON.parse(docker(["info", "--format", "{{json .Runtimes}}"])) as Record<
    string,
    unknown
  >;
  return Object.hasOwn(runtimes ?? {}, name);
}

/** Builds the fixture images (quick when they are up to date). */
export function buildFixtures(): void {
  if (!findExecutable(process.env.CC ?? "gcc")) {
    throw new Error(
      "Cannot build the fixture images: gcc is not installed (as root: apt-get install -y gcc libc6-dev)",
    );
  }
  const script = fileURLToPath(new URL("../fixtures/build-images.sh", import.meta.url));
  execFileSync("bash", [script], { stdio: ["ignore", "inherit", "inherit"] });
}

/**
 * Makes sure the registry answers on `REGISTRY`, starting Debian's docker-registry
 * when nothing does, then pushes the echo image there as `PULLED_IMAGE` and drops
 * that name locally, so that a test that runs it really pulls it.
 */
export async function ensureRegistry(): Promise<void> {
  if (!(await pingRegistry())) {
    const bin = findExecutable("docker-registry");
    if (!bin) {
      throw new Error(
        `Cannot start the image registry: docker-registry is not installed (as root: ${INSTALL_HINT})`,
      );
    }
    const dir = join(tmpdir(), "meca-test-registry");
    mkdirSync(join(dir, "data"), { recursive: true });
    const config = join(dir, "config.yml");
    writeFileSync(config, registryConfig(join(dir, "data")));
    const child = startDetached(bin, ["serve", config], REGISTRY_LOG);
    await waitUntil(pingRegistry, {
      what: `the registry on ${REGISTRY}`,
      child,
      log: REGISTRY_LOG,
    });
  }
  docker(["tag", ECHO_IMAGE, PULLED_IMAGE]);
  docker(["push", PULLED_IMAGE]);
  docker(["image", "rm", PULLED_IMAGE]);
}

/** Force-removes every container labelled `meca.test=1`. */
export function removeTestContainers(): void {
  const [key, value] = Object.entries(TEST_LABEL)[0];
  const ids = docker(["ps", "-aq", "--filter", `label=${key}=${value}`])
    .split("\n")
    .filter(Boolean);
  for (const id of ids) {
    try {
      docker(["rm", "-f", id]);
    } catch {
      // Already gone, or its removal is already in progress.
    }
  }
}

/** A container's log, standard output and standard error together (the executor logs to the latter). */
export function containerLogs(id: string): string {
  const res = spawnSync("docker", ["logs", id], { encoding: "utf8" });
  return `${res.stdout ?? ""}${res.stderr ?? ""}`;
}

/**
 * Where a task container answers from this host: its port published on 127.0.0.1, else its
 * address on its (own) network, as the executor calls it on a bare host.
 */
export function taskUrl(containerId: string): string {
  const c = JSON.parse(docker(["inspect", containerId]))[0] as {
    NetworkSettings: {
      Ports?: Record<string, { HostPort: string }[] | null> | null;
      Networks: Record<string, { IPAddress: string }>;
    };
  };
  const port = c.NetworkSettings.Ports?.["8080/tcp"]?.[0]?.HostPort;
  if (port) return `http://127.0.0.1:${port}`;
  return `http://${Object.values(c.NetworkSettings.Networks)[0]!.IPAddress}:8080`;
}

/** Runs the docker CLI and returns its stdout; throws with its stderr. */
export function docker(args: string[]): string {
  try {
    return execFileSync("docker", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? "").trim();
    throw new Error(`Cannot run "docker ${args.join(" ")}": ${stderr || (err as Error).message}`, {
      cause: err,
    });
  }
}

async function pingRegistry(): Promise<boolean> {
  let res: Response;
  try {
    res = await fetch(`http://${REGISTRY}/v2/`, { signal: AbortSignal.timeout(2_000) });
  } catch {
    return false;
  }
  await res.body?.cancel();
  if (!res.headers.has("docker-distribution-api-version")) {
    throw new Error(
      `Cannot use ${REGISTRY} as the test registry: something else answers there (status ${res.status})`,
    );
  }
  return res.ok;
}

function registryConfig(dataDir: string): string {
  return [
    "version: 0.1",
    "log:",
    "  level: warn",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${dataDir}`,
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: ${REGISTRY}`,
    "",
  ].join("\n");
}

function findExecutable(name: string): string | undefined {
  if (name.includes("/")) return isExecutable(name) ? name : undefined;
  const dirs = [
    ...(process.env.PATH ?? "").split(delimiter),
    "/usr/local/sbin",
    "/usr/sbin",
    "/sbin",
    "/usr/bin",
  ];
  return dirs
    .filter(Boolean)
    .map((d) => join(d, name))
    .find(isExecutable);
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Starts `cmd` in its own session (it outlives the tests), output appended to `log`. */
function startDetached(cmd: string, args: string[], log: string): ChildProcess {
  const fd = openSync(log, "a");
  try {
    const child = spawn(cmd, args, { detached: true, stdio: ["ignore", fd, fd] });
    child.on("error", () => {}); // reported through the exit code below
    child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

async function waitUntil(
  ready: () => Promise<boolean>,
  opts: { what: string; child: ChildProcess; log: string },
): Promise<void> {
  const deadline = Date.now() + START_DEADLINE_MS;
  for (;;) {
    if (await ready()) return;
    const exited = opts.child.exitCode !== null || opts.child.signalCode !== null;
    // Another process may have started it first (ours then exits on the lock): ask once more.
    if (exited && (await ready())) return;
    if (exited || Date.now() > deadline) {
      const why = exited
        ? `it exited (${opts.child.exitCode ?? opts.child.signalCode})`
        : "it did not answer in time";
      throw new Error(
        `Cannot start ${opts.what}: ${why}; last lines of ${opts.log}:\n${tail(opts.log, 15)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}
