/**
 * Images from where hosts keep them, on the real engine: a registry on 127.0.0.1 that needs a
 * password (Debian's docker-registry with htpasswd), one that accepts and never answers, and an
 * image whose registry must never be contacted under pull_policy "never".
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docker } from "../support/docker-env.ts";
import { ECHO_IMAGE } from "../support/fixtures.ts";
import { startExecutor, until } from "../support/harness.ts";
import { scratchDir } from "../support/scratch.ts";

const small = { cpu: 0.1, mem: 32 };
const USER = "meca";
const PASSWORD = "pull-s3cret-7c1e";

/** A TCP server on 127.0.0.1 that accepts connections and never answers; it counts them and sees them close. */
async function silentServer(): Promise<{
  server: Server;
  port: number;
  accepted: () => number;
  open: () => number;
  destroyAll: () => void;
}> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on("error", () => {});
    // Read (and drop) what comes, so that the engine's hang-up is seen.
    s.resume();
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const destroyAll = () => {
    for (const s of sockets) s.destroy();
  };
  return {
    server,
    port: (server.address() as { port: number }).port,
    accepted: () => accepted,
    open: () => sockets.size,
    destroyAll,
  };
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe("pulls from a registry that needs a password", () => {
  let registry: string;
  let image: string;
  let withLogin: string;
  let withoutLogin: string;
  let stop: () => void = () => {};

  beforeAll(async () => {
    const dir = scratchDir("meca-private-registry-");
    const port = await freePort();
    registry = `127.0.0.1:${port}`;
    mkdirSync(join(dir, "data"));
    writeFileSync(
      join(dir, "htpasswd"),
      execFileSync("htpasswd", ["-Bbn", USER, PASSWORD], { encoding: "utf8" }),
    );
    const config = join(dir, "config.yml");
    writeFileSync(
      config,
      [
        "version: 0.1",
        "log:",
        "  level: warn",
        "storage:",
        "  filesystem:",
        `    rootdirectory: ${join(dir, "data")}`,
        "http:",
        `  addr: ${registry}`,
        "auth:",
        "  htpasswd:",
        "    realm: meca-test",
        `    path: ${join(dir, "htpasswd")}`,
        "",
      ].join("\n"),
    );
    const child = spawn("docker-registry", ["serve", config], { stdio: "ignore" });
    stop = () => child.kill();
    await until(
      async () =>
        (await fetch(`http://${registry}/v2/`)
          .then((r) => r.status)
          .catch(() => 0)) === 401,
      "the private registry answers 401",
    );
    // The Docker client's own config, as `docker login` writes it; and one without it.
    withLogin = join(dir, "client");
    withoutLogin = join(dir, "nobody");
    mkdirSync(withoutLogin);
    execFileSync(
      "docker",
      ["--config", withLogin, "login", registry, "-u", USER, "--password-stdin"],
      { input: PASSWORD, stdio: ["pipe", "ignore", "pipe"] },
    );
    image = `${registry}/meca-test/private:1`;
    docker(["tag", ECHO_IMAGE, image]);
    execFileSync("docker", ["--config", withLogin, "push", image], { stdio: "ignore" });
    docker(["image", "rm", image]);
  });
  afterAll(() => {
    stop();
    docker(["image", "rm", "-f", image]);
  });

  it("pulls with the credentials of $DOCKER_CONFIG/config.json, and they appear in no log line, answer or /tasks", async () => {
    const h = await startExecutor({}, { ...process.env, DOCKER_CONFIG: withLogin });
    try {
      const r = await h.execute({ id: image, resource: small, input: "pulled with a password" });
      expect(r).toMatchObject({
        status: 200,
        body: { success: true, msg: "pulled with a password" },
      });
      const tasks = (await h.call("GET", "/tasks")).text;
      const everything = [JSON.stringify(h.logger.records), tasks, JSON.stringify(r.body)].join(
        "\n",
      );
      expect(everything).not.toContain(PASSWORD);
      expect(everything).not.toContain(Buffer.from(`${USER}:${PASSWORD}`).toString("base64"));
    } finally {
      expect(await h.close()).toEqual([]);
      docker(["image", "rm", "-f", image]);
    }
  });

  it("without credentials the refusal says so: IMAGE_PULL_FAILED naming authentication, nothing reserved", async () => {
    const h = await startExecutor({}, { ...process.env, DOCKER_CONFIG: withoutLogin });
    try {
      const r = await h.execute({ id: image, resource: small, input: "x" });
      expect(r.status).toBe(502);
      expect(r.body.error).toBe("IMAGE_PULL_FAILED");
      expect(r.body.msg).toMatch(/refused authentication/);
      expect(h.executor.ledger.used()).toEqual({ cpuTenths: 0, memMB: 0, gpus: [] });
    } finally {
      expect(await h.close()).toEqual([]);
    }
  });

  it("an unreadable Docker client config is a warning naming the file; pulls go without credentials", async () => {
    const broken = scratchDir("meca-broken-docker-config-");
    writeFileSync(join(broken, "config.json"), "{not json");
    const h = await startExecutor({}, { ...process.env, DOCKER_CONFIG: broken });
    try {
      const r = await h.execute({ id: image, resource: small, input: "x" });
      expect(r.body.error).toBe("IMAGE_PULL_FAILED");
      const warning = h.logger.records.find(
        (l) => l.level === "warn" && l.msg.includes("Docker client's config"),
      );
      expect(warning?.fields.file).toBe(join(broken, "config.json"));
    } finally {
      expect(await h.close()).toEqual([]);
    }
  });
});

describe("pulls that must not hang or be made", () => {
  let silent: Awaited<ReturnType<typeof silentServer>>;
  beforeAll(async () => {
    silent = await silentServer();
  });
  afterAll(async () => {
    silent.destroyAll();
    await new Promise((r) => silent.server.close(r));
  });

  it("pull_policy never: an absent image is IMAGE_NOT_PRESENT at once, and its registry is never contacted", async () => {
    const h = await startExecutor({ pull_policy: "never" });
    try {
      const r = await h.execute({
        id: `127.0.0.1:${silent.port}/meca-test/built-on-the-host:1`,
        resource: small,
        input: "x",
      });
      expect(r.status).toBe(400);
      expect(r.body.error).toBe("IMAGE_NOT_PRESENT");
      expect(r.body.msg).toMatch(/must be built or pulled on this host/);
      expect(silent.accepted()).toBe(0);
      expect((await h.execute({ id: ECHO_IMAGE, resource: small, input: "local" })).body.msg).toBe(
        "local",
      );
    } finally {
      expect(await h.close()).toEqual([]);
    }
  });

  it("a registry that accepts and never answers: IMAGE_PULL_FAILED naming pull_stall_timeout to every waiter, other tasks served meanwhile, the engine's pull cancelled", async () => {
    const h = await startExecutor({ pull_stall_timeout: 3, pull_timeout: 600 });
    try {
      await h.execute({ id: ECHO_IMAGE, resource: small, input: "warm" });
      const ref = `127.0.0.1:${silent.port}/meca-test/never:1`;
      const waiting = [
        h.execute({ id: ref, resource: small, input: "a" }),
        h.execute({ id: ref, resource: { cpu: 0.2, mem: 32 }, input: "b" }),
      ];
      await until(() => silent.accepted() > 0, "the engine connected to the registry");
      const tasks = (await h.call("GET", "/tasks")).body as {
        pulls: { image: string; waiting: number }[];
      };
      expect(tasks.pulls).toMatchObject([{ image: ref, waiting: 2 }]);
      expect(
        (await h.execute({ id: ECHO_IMAGE, resource: small, input: "served meanwhile" })).body.msg,
      ).toBe("served meanwhile");
      expect(h.executor.ledger.used().cpuTenths).toBe(1);
      for (const r of await Promise.all(waiting)) {
        expect(r.status).toBe(502);
        expect(r.body.error).toBe("IMAGE_PULL_FAILED");
        expect(r.body.msg).toContain("no progress for 3 s (pull_stall_timeout)");
      }
      expect((await h.call("GET", "/tasks")).body.pulls).toEqual([]);
      // Cancelled: the engine hangs up on the registry (its own TLS handshake bound, 10 s, at most).
      await until(
        () => silent.open() === 0,
        "the engine closed its connections to the registry",
        30_000,
      );
    } finally {
      expect(await h.close()).toEqual([]);
    }
  });
});
