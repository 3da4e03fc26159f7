/** The container a task launch runs in, as the backend is asked to create it. */
import type { TaskLaunch } from "../../engine/ports.ts";
import type { ContainerSpec } from "./backend.ts";
import { LABELS, ownership } from "./labels.ts";
import type { DockerTaskSettings } from "./task-settings.ts";
import type { TaskNet } from "./task-networks.ts";

const MB = 1024 * 1024;
const SHM_MB = 64;

/**
 * Labels say whose it is (instance, run) and which key it serves; limits come from the launch's
 * spec. With `sharesNamespace`, it joins the namespace of its network's holder (netns-holder.ts).
 */
export function containerSpecFor(
  launch: TaskLaunch,
  s: DockerTaskSettings,
  o: { run: string; net?: TaskNet; sharesNamespace?: boolean },
): ContainerSpec {
  const spec = launch.spec;
  return {
    name: launch.name,
    image: spec.image,
    labels: {
      ...ownership(s.instance, { run: o.run }),
      [LABELS.key]: launch.keyHash,
      [LABELS.image]: spec.image,
      [LABELS.spec]: launch.specLabel,
    },
    nanoCpus: spec.cpuTenths * 100_000_000,
    memoryBytes: spec.memMB * MB,
    pidsLimit: s.pidsLimit,
    runtime: spec.runtime,
    gpus: launch.gpus.length > 0 ? [...launch.gpus] : undefined,
    sgx: spec.sgx ? { device: s.sgx.device, aesmdPath: s.sgx.aesmdPath } : undefined,
    ...(o.sharesNamespace && o.net?.holder
      ? { sharesNetworkOf: o.net.holder.id }
      : { network: o.net?.name ?? (s.network || undefined) }),
    securityOpt: s.noNewPrivileges ? ["no-new-privileges:true"] : [],
    capDrop: [...s.capDrop],
    nofile: s.nofile,
    diskBytes: s.taskDiskMB > 0 ? s.taskDiskMB * MB : undefined,
    // Docker's own default size, never more than the memory it is charged to.
    shmBytes: Math.min(SHM_MB, spec.memMB) * MB,
    cgroupParent: s.cgroupParent || undefined,
    privileged: false,
  };
}
