/**
 * Under Deno, against the real engine: the ContainerBackend contract over
 * Deno's fetch transport (Deno.createHttpClient on the engine's unix socket)
 * and Deno's task client, and the executor served by Deno.serve through the
 * integration harness. test/integration/deno.test.ts runs this file under
 * Deno once the integration set-up has built the fixtures and started the
 * registry (MECA_DENO_REAL_ENGINE=1); skipped everywhere else.
 */
import { describe, expect, it } from "vitest";
import { createDockerBackend } from "../../src/platform/docker/create-backend.ts";
import { FetchTaskClient } from "../../src/platform/fetch-task-client.ts";
import { containerBackendContract } from "../contract/container-backend.contract.ts";
import { taskRuntimeContract } from "../contract/task-runtime.contract.ts";
import { dockerRuntimeSubject } from "../support/docker-runtime.ts";
import { docker } from "../support/docker-env.ts";
import { startEngineFront } from "../support/engine-front.ts";
import { scratchDir } from "../support/scratch.ts";
import {
  CRASH_IMAGE,
  ECHO_IMAGE,
  NEVER_READY_IMAGE,
  PULLED_IMAGE,
  REGISTRY,
  taskBody,
} from "../support/fixtures.ts";
import { startExecutor } from "../support/harness.ts";

const enabled = "Deno" in globalThis && process.env.MECA_DENO_REAL_ENGINE === "1";

if (enabled) {
  containerBackendContract("DockerBackend over Deno's fetch", async () => {
    const backend = await createDockerBackend(process.env);
    const client = new FetchTaskClient();
    return {
      backend,
      client,
      images: {
        echo: ECHO_IMAGE,
        crash: CRASH_IMAGE,
        neverReady: NEVER_READY_IMAGE,
        missing: `${REGISTRY}/meca-test/missing:1`,
        pullable: PULLED_IMAGE,
      },
      kill: async (id) => void docker(["kill", id]),
      removeImage: async (ref) => void docker(["image", "rm", "--force", ref]),
      unreachable: () =>
        createDockerBackend({ DOCKER_HOST: "unix:///tmp/meca-no-such-docker.sock" }),
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
  taskRuntimeContract("DockerTasks over Deno's fetch", async () =>
    dockerRuntimeSubject({
      backend: await createDockerBackend(process.env),
      client: new FetchTaskClient(),
      unreachable: await createDockerBackend({
        DOCKER_HOST: "unix:///tmp/meca-no-such-docker.sock",
      }),
    }),
  );
}

describe.skipIf(!enabled)(
  "the executor under Deno on the real engine, served by Deno.serve",
  () => {
    it("serves a task, reuses it, reports a task's failure, and leaves nothing behind", async () => {
      const h = await startExecutor({ ready_timeout: 10 });
      let left: unknown[] = [];
      try {
        const small = { cpu: 0.1, mem: 32 };
        const a = await h.execute({ id: ECHO_IMAGE, resource: small, input: taskBody.whoami });
        expect(a.status, JSON.stringify(a.body)).toBe(200);
        expect(
          (await h.execute({ id: ECHO_IMAGE, resource: small, input: taskBody.whoami })).body.msg,
        ).toBe(a.body.msg);
        expect(
          await h.execute({ id: ECHO_IMAGE, resource: small, input: "héllo ✓" }),
        ).toMatchObject({ status: 200, body: { success: true, msg: "héllo ✓" } });
        expect(
          await h.execute({ id: ECHO_IMAGE, resource: small, input: taskBody.status(500) }),
        ).toMatchObject({ status: 502, body: { error: "TASK_FAILED" } });
        expect(await h.execute({ id: CRASH_IMAGE, resource: small })).toMatchObject({
          status: 502,
          body: { error: "TASK_EXITED" },
        });
        expect((await h.call("GET", "/tasks")).body.tasks).toHaveLength(1);
        // The host's page under Deno too: the same document and policy, and the record it draws.
        const ui = await h.call("GET", "/ui");
        expect(ui.status).toBe(200);
        expect(ui.headers.get("content-security-policy")).toMatch(
          /^default-src 'none'; script-src 'sha256-/,
        );
        expect(ui.text).toContain("<title>meca-executor</title>");
        expect(
          (await h.call("GET", "/requests")).body.requests.map(
            (r: { outcome: string }) => r.outcome,
          ),
        ).toEqual(["ok", "ok", "ok", "TASK_FAILED", "TASK_EXITED"]);
      } finally {
        left = await h.close();
      }
      expect(left).toEqual([]);
    });
  },
);
