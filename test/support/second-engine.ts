/**
 * A second Docker engine for the remote-engine tests, sharing nothing with
 * the main one: its own data-root, exec-root (and so its own containerd),
 * pidfile, unix socket and bridge, no iptables rules (published ports go
 * through docker-proxy), and a TLS listener on 127.0.0.1 whose certificates
 * `makeCertificates` makes with openssl. `stop()` ends it and removes all.
 */
import { execFileSync, spawn } from "node:child_process";
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { pingDocker } from "./docker-env.ts";

export interface SecondEngine {
  /** `tcp://127.0.0.1:<port>`, TLS with client certificates. */
  tcpHost: string;
  socketPath: string;
  /** DOCKER_CERT_PATH for a client the engine trusts: ca.pem, cert.pem, key.pem. */
  certPath: string;
  /** The docker CLI against this engine (over its unix socket). */
  docker(args: string[], input?: Buffer): string;
  stop(): Promise<void>;
}

/** Starts dockerd in `dir` and loads `images` from the main engine into it. */
export async function startSecondEngine(
  dir: string,
  opts: { images: string[] },
): Promise<SecondEngine> {
  const certs = makeCertificates(join(dir, "certs"));
  const socketPath = join(dir, "docker.sock");
  const pidfile = join(dir, "docker.pid");
  const log = join(dir, "dockerd.log");
  // Interface names hold at most 15 characters.
  const bridge = `mecatls${process.pid % 100_000}`;
  const cgroupParent = `meca-test-${bridge}`;
  const port = await freePort();
  ip(["link", "del", bridge], true);
  ip(["link", "add", bridge, "type", "bridge"]);
  ip(["addr", "add", "10.213.57.1/24", "dev", bridge]);
  ip(["link", "set", bridge, "up"]);
  for (const d of ["data", "exec"]) mkdirSync(join(dir, d), { recursive: true });
  const fd = openSync(log, "a");
  const child = spawn(
    "dockerd",
    [
      ...["--data-root", join(dir, "data"), "--exec-root", join(dir, "exec"), "--pidfile", pidfile],
      ...["-H", `unix://${socketPath}`, "-H", `tcp://127.0.0.1:${port}`],
      ...[
        "--tlsverify",
        "--tlscacert",
        certs.ca,
        "--tlscert",
        certs.serverCert,
        "--tlskey",
        certs.serverKey,
      ],
      ...[
        "--bridge",
        bridge,
        "--iptables=false",
        "--ip-masq=false",
        "--ip-forward=false",
        "--cgroup-parent",
        cgroupParent,
      ],
    ],
    { detached: true, stdio: ["ignore", fd, fd] },
  );
  closeSync(fd);
  child.on("error", () => {});
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const docker = (args: string[], input?: Buffer) => {
    try {
      return execFileSync("docker", ["-H", `unix://${socketPath}`, ...args], {
        encoding: "utf8",
        input,
        stdio: ["pipe", "pipe", "pipe"],
      });
    } catch (err) {
      throw new Error(
        `Cannot run "docker ${args.join(" ")}" on the second engine: ${String((err as { stderr?: unknown }).stderr ?? err)}`,
      );
    }
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        docker(["rm", "-f", ...docker(["ps", "-aq"]).split("\n").filter(Boolean)]);
      } catch {
        // nothing to remove, or the engine is already gone
      }
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
    ip(["link", "del", bridge], true);
    removeCgroup(cgroupParent);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 60_000;
    while (!(await pingDocker({ socketPath }))) {
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(
          `Cannot start the second dockerd:\n${readFileSync(log, "utf8").slice(-2000)}`,
        );
      await new Promise((r) => setTimeout(r, 200));
    }
    docker(
      ["load", "-q"],
      execFileSync("docker", ["save", ...opts.images], { maxBuffer: 512 * 2 ** 20 }),
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    tcpHost: `tcp://127.0.0.1:${port}`,
    socketPath,
    certPath: certs.clientDir,
    docker,
    stop,
  };
}

export interface Certificates {
  ca: string;
  serverCert: string;
  serverKey: string;
  /** ca.pem, cert.pem and key.pem of a client, as DOCKER_CERT_PATH wants them. */
  clientDir: string;
}

/** A CA, a server certificate for IP 127.0.0.1 and a client certificate, made with openssl. */
export function makeCertificates(dir: string, name = "meca-test"): Certificates {
  const clientDir = join(dir, "client");
  mkdirSync(clientDir, { recursive: true });
  const at = (f: string) => join(dir, f);
  const openssl = (args: string[]) =>
    execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  openssl([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    at("ca-key.pem"),
    "-out",
    at("ca.pem"),
    "-days",
    "2",
    "-subj",
    `/CN=${name}-ca`,
  ]);
  const sign = (prefix: string, subject: string, ext: string, certOut: string, keyOut: string) => {
    writeFileSync(at(`${prefix}.ext`), ext);
    openssl([
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      keyOut,
      "-out",
      at(`${prefix}.csr`),
      "-subj",
      subject,
    ]);
    openssl([
      ...[
        "x509",
        "-req",
        "-in",
        at(`${prefix}.csr`),
        "-CA",
        at("ca.pem"),
        "-CAkey",
        at("ca-key.pem"),
        "-CAcreateserial",
      ],
      ...["-days", "2", "-extfile", at(`${prefix}.ext`), "-out", certOut],
    ]);
  };
  sign(
    "server",
    "/CN=127.0.0.1",
    "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    at("server-cert.pem"),
    at("server-key.pem"),
  );
  sign(
    "client",
    `/CN=${name}-client`,
    "extendedKeyUsage=clientAuth\n",
    join(clientDir, "cert.pem"),
    join(clientDir, "key.pem"),
  );
  writeFileSync(join(clientDir, "ca.pem"), readFileSync(at("ca.pem")));
  return {
    ca: at("ca.pem"),
    serverCert: at("server-cert.pem"),
    serverKey: at("server-key.pem"),
    clientDir,
  };
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function ip(args: string[], mayFail = false): void {
  try {
    execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    if (!mayFail)
      throw new Error(
        `Cannot run "ip ${args.join(" ")}": ${String((err as { stderr?: unknown }).stderr ?? err)}`,
      );
  }
}

/** Removes the engine's (now empty) parent cgroup, under cgroup v2 or in each v1 hierarchy. */
function removeCgroup(name: string): void {
  const root = "/sys/fs/cgroup";
  const dirs = [join(root, name), ...readdirSync(root).map((h) => join(root, h, name))];
  for (const d of dirs) {
    try {
      rmdirSync(d);
    } catch {
      // absent in this hierarchy
    }
  }
}
