/**
 * The Docker task runtime on the real engine as a TaskRuntime contract subject: runtimes over one
 * backend, one instance of their own (so their leftovers are theirs alone), tasks published on
 * 127.0.0.1 or each on a network of its own.
 */
import type { TaskClient } from "../../src/engine/ports.ts";
import type { ContainerBackend } from "../../src/platform/docker/backend.ts";
import { DockerTasks } from "../../src/platform/docker/docker-tasks.ts";
import type { DockerTaskSettings } from "../../src/platform/docker/task-settings.ts";
import { systemClock } from "../../src/platform/clock.ts";
import type { RuntimeSubject } from "../contract/task-runtime.contract.ts";
import { memoryLogger } from "../fakes/fake-logger.ts";
import { docker } from "./docker-env.ts";
import { CRASH_IMAGE, ECHO_IMAGE, NEVER_READY_IMAGE, REGISTRY } from "./fixtures.ts";

export function dockerRuntimeSubject(o: {
  backend: ContainerBackend;
  client: TaskClient;
  /** A backend of the same kind whose engine does not answer. */
  unreachable: ContainerBackend;
  isolate?: boolean;
}): RuntimeSubject {
  const settings: DockerTaskSettings = {
    instance: `contract-${Math.random().toString(36).slice(2, 8)}`,
    network: "",
    isolate: o.isolate === true,
    taskSubnetPool: "10.230.0.0/24",
    taskNetworkSpares: 1,
    taskEgress: false,
    capDrop: ["NET_RAW"],
    nofile: 1024,
    pidsLimit: 64,
    noNewPrivileges: true,
    taskDiskMB: 0,
    sgx: { device: "/dev/sgx/enclave", aesmdPath: "/var/run/aesmd" },
    queueTimeoutMs: 10_000,
    cgroupParent: "",
    cgroupDriver: "cgroupfs",
    cgroupVersion: "1",
    usage: false,
  };
  const make = (backend: ContainerBackend) =>
    new DockerTasks({ backend, clock: systemClock, logger: memoryLogger(), settings });
  return {
    runtime: () => make(o.backend),
    client: o.client,
    images: {
      echo: ECHO_IMAGE,
      crash: CRASH_IMAGE,
      neverReady: NEVER_READY_IMAGE,
      missing: `${REGISTRY}/meca-test/missing:1`,
    },
    kill: async (id) => void docker(["kill", id]),
    unreachable: () => make(o.unreachable),
    cleanup: async () => {
      await Promise.all([o.backend.close(), o.unreachable.close(), o.client.close()]);
    },
  };
}
