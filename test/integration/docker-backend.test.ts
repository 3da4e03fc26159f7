/**
 * The Docker backend against the real engine: the shared contract (over node:http
 * and over dockerode; pulls from the local registry, OOM events and an engine
 * that goes away are cases there), then what only a real engine can show: the
 * HostConfig that reaches Docker, and a TCP engine that does not answer.
 */
import { tmpdir } from "node:os";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestError, EngineUnavailableError } from "../../src/engine/errors.ts";
import type { ContainerSpec } from "../../src/platform/docker/backend.ts";
import { createDockerBackend } from "../../src/platform/docker/create-backend.ts";
import { DockerBackend } from "../../src/platform/docker/docker-backend.ts";
import { DockerodeApi } from "../../src/platform/docker/dockerode-backend.ts";
import { UndiciTaskClient } from "../../src/platform/task-client.ts";
import { containerBackendContract } from "../contract/container-backend.contract.ts";
import { taskRuntimeContract } from "../contract/task-runtime.contract.ts";
import { dockerRuntimeSubject } from "../support/docker-runtime.ts";
import { docker, dockerEndpoint } from "../support/docker-env.ts";
import { startEngineFront } from "../support/engine-front.ts";
import { scratchDir } from "../support/scratch.ts";
import {
  CRASH_IMAGE,
  ECHO_IMAGE,
  NEVER_READY_IMAGE,
  PULLED_IMAGE,
  REGISTRY,
  TEST_LABEL,
} from "../support/fixtures.ts";

const images = {
  echo: ECHO_IMAGE,
  crash: CRASH_IMAGE,
  neverReady: NEVER_READY_IMAGE,
  missing: `${REGISTRY}/meca-test/missing:1`,
  pullable: PULLED_IMAGE,
};
/** What the real engine does outside the backend: `docker kill`, `docker image rm`. */
const outside = {
  kill: async (id: string) => void docker(["kill", id]),
  removeImage: async (ref: string) => void docker(["image", "rm", "--force", ref]),
};

containerBackendContract("DockerBackend over node:http", async () => {
  const backend = await createDockerBackend(process.env);
  const client = new UndiciTaskClient();
  return {
    backend,
    client,
    images,
    ...outside,
    unreachable: () => createDockerBackend({ DOCKER_HOST: "unix:///tmp/meca-no-such-docker.sock" }),
    controlled: async () => {
      const front = await startEngineFront(scratchDir("meca-engine-front-"));
      const other = await createDockerBackend({ DOCKER_HOST: `unix://${front.socketPath}` });
      return {
        backend: other,
        endStreams: front.endStreams,
        goAway: front.goAway,
        cleanup: async () => void (await Promise.all([other.close(), front.close()])),
      };
    },
    cleanup: async () => void (await Promise.all([backend.close(), client.close()])),
  };
});

containerBackendContract("DockerBackend over dockerode", async () => {
  const backend = new DockerBackend(new DockerodeApi(new Docker(dockerEndpoint()), "dockerode"));
  const client = new UndiciTaskClient();
  return {
    backend,
    client,
    images,
    ...outside,
    unreachable: async () =>
      new DockerBackend(
        new DockerodeApi(new Docker({ socketPath: "/tmp/meca-no-such-docker.sock" }), "dockerode"),
      ),
    controlled: async () => {
      const front = await startEngineFront(scratchDir("meca-engine-front-"));
      const other = new DockerBackend(
        new DockerodeApi(new Docker({ socketPath: front.socketPath }), "dockerode"),
      );
      return {
        backend: other,
        endStreams: front.endStreams,
        goAway: front.goAway,
        cleanup: async () => void (await Promise.all([other.close(), front.close()])),
      };
    },
    cleanup: async () => void (await Promise.all([backend.close(), client.close()])),
  };
});

for (const isolate of [false, true])
  taskRuntimeContract(
    `DockerTasks over node:http, ${isolate ? "each task on a network of its own" : "published"}`,
    async () =>
      dockerRuntimeSubject({
        backend: await createDockerBackend(process.env),
        client: new UndiciTaskClient(),
        unreachable: await createDockerBackend({
          DOCKER_HOST: "unix:///tmp/meca-no-such-docker.sock",
        }),
        isolate,
      }),
  );

describe("DockerBackend on the real engine", () => {
  let backend: DockerBackend;
  const run = Math.random().toString(36).slice(2, 8);
  const labels = { ...TEST_LABEL, "meca.backend-test": run };
  let serial = 0;
  const spec = (extra: Partial<ContainerSpec> = {}): ContainerSpec => ({
    name: `meca-backend-${run}-${++serial}`,
    image: ECHO_IMAGE,
    labels,
    nanoCpus: 1_500_000_000,
    memoryBytes: 96 * 2 ** 20,
    pidsLimit: 48,
    securityOpt: ["no-new-privileges"],
    privileged: false,
    ...extra,
  });
  /** GET /containers/{id}/json, raw, for what the port does not show. */
  const rawInspect = async (id: string) =>
    JSON.parse(docker(["inspect", "--format", "{{json .}}", id])) as {
      HostConfig: Record<string, unknown>;
      Config: { Tty: boolean; ExposedPorts: Record<string, unknown> };
    };

  beforeAll(async () => {
    backend = await createDockerBackend(process.env);
  });

  afterAll(async () => {
    for (const c of await backend.list(labels)) await backend.remove(c.id);
    await backend.close();
  });

  it("info() reports the engine version, its runtimes and the transport", async () => {
    const info = await backend.info();
    expect(info.version).toMatch(/^\d+\.\d+/);
    expect(info.apiVersion).toMatch(/^1\.\d+$/);
    expect(info.runtimes).toContain("runc");
    expect(info.defaultRuntime).toBeTruthy();
    expect(info.transport).toMatch(/^(unix|tcp):\/\//);
  });

  it("create() passes limits, security options and the loopback port binding to Docker", async () => {
    const id = await backend.create(spec());
    const { HostConfig: hc, Config } = await rawInspect(id);
    expect(hc).toMatchObject({
      NanoCpus: 1_500_000_000,
      Memory: 96 * 2 ** 20,
      MemorySwap: 96 * 2 ** 20,
      PidsLimit: 48,
      SecurityOpt: ["no-new-privileges"],
      Privileged: false,
      PortBindings: { "8080/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] },
    });
    expect(Config.Tty).toBe(false);
    expect(Config.ExposedPorts).toHaveProperty("8080/tcp");
  });

  it("create() passes the runtime, GPU device requests, the SGX device and the AESM folder as a bind mount, and the network", async () => {
    const aesmd = scratchDir("meca-aesmd-");
    const id = await backend.create(
      spec({
        runtime: "runsc",
        gpus: ["GPU-a", "GPU-b"],
        sgx: { device: "/dev/null", aesmdPath: aesmd },
        network: "bridge",
      }),
    );
    const { HostConfig: hc } = await rawInspect(id);
    expect(hc).toMatchObject({
      Runtime: "runsc",
      DeviceRequests: [
        { Driver: "nvidia", DeviceIDs: ["GPU-a", "GPU-b"], Capabilities: [["gpu"]] },
      ],
      Devices: [
        { PathOnHost: "/dev/null", PathInContainer: "/dev/sgx/enclave", CgroupPermissions: "rwm" },
      ],
      Mounts: [{ Type: "bind", Source: aesmd, Target: "/var/run/aesmd" }],
      NetworkMode: "bridge",
    });
    expect(hc.Binds ?? []).toEqual([]);
    expect(hc.PortBindings ?? {}).toEqual({});
  });

  it("create() of an SGX task whose AESM folder is missing is a 400 naming the folder, with the engine's reason", async () => {
    const err = await backend
      .create(spec({ sgx: { device: "/dev/null", aesmdPath: "/nonexistent/aesmd" } }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err).toMatchObject({ code: "SGX_UNAVAILABLE", field: "use_sgx" });
    expect((err as Error).message).toContain(
      'the AESM socket folder "/nonexistent/aesmd" does not exist where tasks run',
    );
    expect((err as Error).message).toContain("bind source path does not exist");
  });

  it("start() of a task whose SGX device or GPUs the engine cannot give is a 400 naming them, with the engine's reason", async () => {
    const sgx = await backend.create(
      spec({ sgx: { device: "/nonexistent/enclave", aesmdPath: tmpdir() } }),
    );
    const e1 = await backend.start(sgx).catch((e: unknown) => e);
    expect(e1).toMatchObject({ code: "SGX_UNAVAILABLE", field: "use_sgx" });
    expect((e1 as Error).message).toContain(
      'the SGX device "/nonexistent/enclave" is not available where tasks run',
    );
    const gpu = await backend.create(spec({ gpus: ["GPU-fa4e0000-0000-4000-8000-000000000000"] }));
    const e2 = await backend.start(gpu).catch((e: unknown) => e);
    expect(e2).toMatchObject({ code: "GPU_UNAVAILABLE", field: "resource.use_gpu" });
    expect((e2 as Error).message).toContain('"GPU-fa4e0000-0000-4000-8000-000000000000"');
    expect((e2 as Error).message).toContain('device driver "nvidia"');
  });

  it("an engine that does not answer gives EngineUnavailableError", async () => {
    const nowhere = await createDockerBackend({
      DOCKER_HOST: "unix:///tmp/meca-no-such-docker.sock",
    });
    await expect(nowhere.info()).rejects.toBeInstanceOf(EngineUnavailableError);
    await expect(nowhere.list(labels)).rejects.toBeInstanceOf(EngineUnavailableError);
    await nowhere.close();
    const closedPort = await createDockerBackend({ DOCKER_HOST: "tcp://127.0.0.1:1" });
    await expect(closedPort.hasImage(ECHO_IMAGE)).rejects.toBeInstanceOf(EngineUnavailableError);
    await closedPort.close();
  });
});
