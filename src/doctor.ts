/**
 * `meca-executor doctor`: what this host can do, checked against what the
 * config asks for. Exits non-zero when something asked for is missing.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "./config.ts";
import { clipCapacity } from "./engine/settings.ts";
import type { EngineInfo, GpuDevice, Logger } from "./engine/ports.ts";
import { createDockerBackend } from "./platform/docker/create-backend.ts";
import type { DockerBackend } from "./platform/docker/docker-backend.ts";
import { detectPlacement, type Placement } from "./platform/docker/placement.ts";
import { hostRoutes, poolConflict } from "./platform/docker/subnet-pool.ts";
import { DockerDisk, visibleDataRoot } from "./platform/docker/task-disk.ts";
import { firewallCheck, firewallPlace, type RunCommand } from "./platform/host-firewall.ts";
import { ownership } from "./platform/docker/labels.ts";
import { SystemHostProbe } from "./platform/host.ts";
import { loadNvml } from "./platform/nvml.ts";
import { checkSgx } from "./platform/sgx.ts";
import { setupTaskParent } from "./platform/docker/cpu-priority.ts";

interface Check {
  name: string;
  ok: boolean;
  /** Only a failed check the config asks for fails the doctor. */
  required: boolean;
  detail: string;
  fix?: string;
}

export interface DoctorReport {
  config: string;
  host: { cores: number; memoryMB: number; taskCpu: number; taskMemMB: number };
  engine?: EngineInfo;
  gpus: GpuDevice[];
  nvmlDriver?: string;
  checks: Check[];
  ok: boolean;
}

export async function collectReport(o: {
  config: Config;
  configFile?: string;
  env: Record<string, string | undefined>;
}): Promise<DoctorReport> {
  const c = o.config;
  const checks: Check[] = [];
  const host = new SystemHostProbe();
  const cores = await host.cores();
  const memoryMB = await host.memoryMB();
  const cap = clipCapacity({ cpu: c.cpu, memMB: c.mem }, { cores, memoryMB });

  let engine: EngineInfo | undefined;
  const backend = await createDockerBackend(o.env);
  try {
    engine = await backend.info(AbortSignal.timeout(5_000));
    checks.push({
      name: "docker",
      ok: true,
      required: true,
      detail: `Docker ${engine.version} (API ${engine.apiVersion}) over ${engine.transport}; runtimes: ${engine.runtimes.join(", ")} (default ${engine.defaultRuntime})`,
    });
    checks.push(...(await networkChecks(c, backend)));
    checks.push(...(await hostChecks(c, backend, o.env)));
  } catch (e) {
    checks.push({
      name: "docker",
      ok: false,
      required: true,
      detail: `Docker engine unreachable: ${(e as Error).message}`,
      fix: "apt-get install docker.io && dockerd & (or set DOCKER_HOST)",
    });
  } finally {
    await backend.close().catch(() => {});
  }

  if (c.microVM_runtime || engine) {
    const has = engine?.runtimes.includes(c.microVM_runtime) ?? false;
    checks.push({
      name: "microVM",
      ok: c.microVM_runtime ? has : true,
      required: c.microVM_runtime !== "",
      detail: c.microVM_runtime
        ? `microVM_runtime "${c.microVM_runtime}" ${has ? "is registered" : "is not registered"} in the engine`
        : 'microVM_runtime is not set: runtime "microVM" is refused',
      fix:
        c.microVM_runtime && !has
          ? `install Kata Containers and register "${c.microVM_runtime}" under "runtimes" in /etc/docker/daemon.json, then restart dockerd`
          : undefined,
    });
  }

  const sgxReason = await checkSgx({ device: c.sgx.sgx_device, aesmdPath: c.sgx.aesmd_path });
  checks.push({
    name: "sgx",
    ok: sgxReason === undefined,
    required: c.sgx.enable,
    detail:
      sgxReason === undefined
        ? `SGX device "${c.sgx.sgx_device}" and AESM folder "${c.sgx.aesmd_path}" present`
        : `SGX unavailable: ${sgxReason}`,
    fix:
      sgxReason && c.sgx.enable
        ? "install the Intel SGX driver and the AESM service (sgx-aesm-service), or set sgx.enable: false"
        : undefined,
  });

  let gpus: GpuDevice[] = [];
  let nvmlDriver: string | undefined;
  try {
    const nvml = await loadNvml({ library: c.nvml_library });
    try {
      gpus = await nvml.sample();
      nvmlDriver = nvml.driverVersion();
    } finally {
      nvml.close();
    }
    checks.push({
      name: "nvml",
      ok: true,
      required: c.has_gpu,
      detail: `NVML "${c.nvml_library}" loaded: driver ${nvmlDriver}, ${gpus.length} GPU(s)`,
    });
  } catch (e) {
    checks.push({
      name: "nvml",
      ok: false,
      required: c.has_gpu,
      detail: `NVML unavailable: ${(e as Error).message}`,
      fix: c.has_gpu
        ? "install the NVIDIA driver (libnvidia-ml.so.1) and nvidia-container-toolkit, or set nvml_library / MECA_NVML_LIBRARY"
        : undefined,
    });
  }

  if (c.has_gpu) checks.push(gpuContainersCheck(engine, o.env));

  return {
    config: o.configFile ?? "(built-in defaults)",
    host: { cores, memoryMB, taskCpu: cap.cpuTenths / 10, taskMemMB: cap.memMB },
    engine,
    gpus,
    nvmlDriver,
    checks,
    ok: checks.every((ch) => ch.ok || !ch.required),
  };
}

/**
 * How tasks are reached and isolated (the `network` key, resolved where the executor runs), the
 * task networks there now, and whether the API is exposed to them.
 */
async function networkChecks(c: Config, backend: DockerBackend): Promise<Check[]> {
  let p: Placement;
  try {
    p = await detectPlacement({
      setting: c.network,
      inspect: (ref) => backend.inspectJson(ref),
      waitMs: 0,
    });
  } catch (e) {
    return [
      {
        name: "network",
        ok: false,
        required: true,
        detail: (e as Error).message,
        fix: "mount the engine's socket, or set network: publish or a network's name",
      },
    ];
  }
  const checks: Check[] = [];
  if (p.mode === "isolated") {
    const nets = await backend.listNetworks(ownership(c.instance, { taskNetwork: true }));
    const conflict = poolConflict(c.task_subnet_pool, await backend.listNetworks({}), hostRoutes());
    checks.push({
      name: "network",
      ok: conflict === undefined,
      required: true,
      detail: `isolation: each task on a network of its own, ${c.task_egress ? "with" : "without"} egress, from ${c.task_subnet_pool}; ${nets.length} task network(s) now${nets.length ? ` (${nets.map((n) => `${n.name} ${n.subnets.join(",")}`).join("; ")})` : ""}; ${p.reason}`,
      fix: conflict,
    });
  } else {
    checks.push({
      name: "network",
      ok: true,
      required: false,
      detail: `isolation: none (tasks share ${p.mode === "publish" ? "Docker's default bridge" : `network "${p.network}"`}: weaker); ${p.reason}`,
    });
  }
  // On a host, a listener beyond loopback is reachable from task networks through their gateways.
  const hostSide = !p.ownNetwork;
  const exposed = hostSide && c.host !== undefined && !/^(127\.|localhost$|::1$)/.test(c.host);
  checks.push({
    name: "api",
    ok: !exposed,
    required: false,
    detail: exposed
      ? `the API listens on "${c.host}" on the host's side: tasks can connect to it through their network's gateway`
      : `the API is out of the tasks' reach (${p.ownNetwork ? "its own networks' addresses in a container" : "loopback on the host"})`,
    fix: exposed
      ? "listen on 127.0.0.1, or add the firewall rule in the README (Isolation) that drops task networks' traffic to the API port"
      : undefined,
  });
  return checks;
}

/**
 * What a task can take from the host beyond its limits: its disk (the bound and who holds it, the
 * data root's free space), the host's memory (min_free_host_mem_mb), the host's addresses (the firewall rule), its logs (a driver without
 * rotation) and the I/O weight (dropped without a weighted I/O scheduler). See docs/isolation.md, "Threat model".
 */
async function hostChecks(
  c: Config,
  backend: DockerBackend,
  env: Record<string, string | undefined>,
  run?: RunCommand,
): Promise<Check[]> {
  const checks: Check[] = [];
  const storage = await backend
    .probeStorage()
    .catch((e: unknown) => ({ error: (e as Error).message }));
  const heldBy =
    c.task_disk_mb === 0
      ? "none"
      : "error" in storage
        ? "executor"
        : storage.quota
          ? "engine"
          : "executor";
  const how =
    "error" in storage ? `cannot read the storage driver (${storage.error})` : storage.reason;
  checks.push({
    name: "disk",
    ok: c.task_disk_mb > 0,
    required: false,
    detail:
      c.task_disk_mb === 0
        ? "task_disk_mb: 0: a task's writable layer is unbounded and can fill the engine's disk"
        : `task_disk_mb ${c.task_disk_mb} MB per task, held by the ${heldBy}${heldBy === "executor" ? ` (a check each ${c.task_disk_check_interval} s)` : ""}: ${how}`,
    fix: c.task_disk_mb === 0 ? "set task_disk_mb (default 1024)" : undefined,
  });
  const dataRoot = "error" in storage ? undefined : storage.dataRoot;
  const free =
    dataRoot === undefined
      ? undefined
      : await new DockerDisk(backend, { dataRoot: visibleDataRoot(dataRoot) }).freeMB();
  checks.push({
    name: "free",
    ok: free !== undefined && free >= c.min_free_disk_mb,
    required: false,
    detail:
      free === undefined
        ? `cannot see the free space of the engine's data root${dataRoot ? ` (${dataRoot})` : ""} from here: min_free_disk_mb is not enforced`
        : `the engine's data root ${dataRoot} has ${free} MB free; new starts stop below min_free_disk_mb (${c.min_free_disk_mb} MB)`,
    fix:
      free !== undefined && free < c.min_free_disk_mb
        ? `free space under ${dataRoot} (docker system prune), or lower min_free_disk_mb`
        : undefined,
  });
  const available = await new SystemHostProbe().availableMemoryMB().catch(() => undefined);
  const minMem = c.min_free_host_mem_mb;
  checks.push({
    name: "memory",
    ok: minMem === 0 || (available !== undefined && available >= minMem),
    required: false,
    detail:
      minMem === 0
        ? "min_free_host_mem_mb: 0: tasks may start while the host is short of memory"
        : available === undefined
          ? "cannot read the host's available memory: min_free_host_mem_mb is not enforced"
          : `the host has ${available} MB of memory available; new starts stop, and idle tasks go, below min_free_host_mem_mb (${minMem} MB)`,
    fix:
      available !== undefined && available < minMem
        ? "free memory on the host, or lower min_free_host_mem_mb"
        : undefined,
  });
  const driver = await backend.logDriver().catch(() => undefined);
  const rotated = driver === "json-file" || driver === "local";
  checks.push({
    name: "logs",
    ok: rotated,
    required: false,
    detail: rotated
      ? `task logs: ${driver}, rotated at task_log_max_size ${c.task_log_max_size} x ${c.task_log_max_file} files`
      : `task logs: the engine's log driver is ${driver ?? "unknown"}: the executor cannot rotate them, a chatty task fills wherever that driver writes`,
    fix: rotated
      ? undefined
      : 'set "log-driver": "local" (or json-file) in /etc/docker/daemon.json, or bound that driver\'s own store',
  });
  const weighted = ioWeighted();
  checks.push({
    name: "io",
    ok: weighted,
    required: false,
    detail: weighted
      ? "disk I/O: tasks run at a fifth of the default I/O weight"
      : "disk I/O: no weighted I/O scheduler here (the engine drops the tasks' low BlkioWeight): a task's disk I/O competes with the host's as an equal",
    fix: weighted
      ? undefined
      : "use the bfq I/O scheduler on the engine's disk (echo bfq > /sys/block/<disk>/queue/scheduler)",
  });
  let placement: Placement | undefined;
  try {
    placement = await detectPlacement({
      setting: c.network,
      inspect: (ref) => backend.inspectJson(ref),
      waitMs: 0,
    });
  } catch {
    // networkChecks says why
  }
  const cgroups = await backend.cgroups().catch(() => ({ driver: "cgroupfs", version: "1" }));
  const cpu = (
    await setupTaskParent({
      priority: c.task_cpu_priority,
      instance: c.instance,
      driver: cgroups.driver,
      version: cgroups.version,
      inContainer: placement?.self !== undefined,
      logger: quiet,
      dryRun: true,
    })
  ).status;
  checks.push({
    name: "cpu",
    ok: cpu.state === "set",
    required: false,
    detail: `task_cpu_priority: ${cpu.task_cpu_priority}: ${cpu.detail}`,
    fix: cpu.command ?? (cpu.state === "normal" ? "set task_cpu_priority: idle" : undefined),
  });
  if (placement)
    checks.push(
      await firewallCheck({
        setting: c.task_host_firewall,
        instance: c.instance,
        place: firewallPlace(placement, env, c.task_egress),
        run,
      }),
    );
  return checks;
}

/** Whether the kernel weighs block I/O between cgroups (cgroup v1 blkio.weight / bfq, v2 io.weight / io.bfq.weight). */
function ioWeighted(): boolean {
  return (
    [
      "/sys/fs/cgroup/blkio/blkio.weight",
      "/sys/fs/cgroup/blkio/blkio.bfq.weight",
      "/sys/fs/cgroup/io.weight",
      "/sys/fs/cgroup/io.bfq.weight",
    ].some((f) => existsSync(f)) || cgroup2ChildWeighted()
  );
}

/** On cgroup v2 the root has no io.weight: look one level down (system.slice, docker, ...). */
function cgroup2ChildWeighted(): boolean {
  return [
    "/sys/fs/cgroup/system.slice/io.weight",
    "/sys/fs/cgroup/system.slice/io.bfq.weight",
    "/sys/fs/cgroup/docker/io.weight",
    "/sys/fs/cgroup/docker/io.bfq.weight",
  ].some((f) => existsSync(f));
}

/**
 * Docker passes GPUs (DeviceRequests, driver "nvidia") only with the NVIDIA container toolkit: its
 * runtime registered in the engine, or its hook on the PATH of a local dockerd.
 */
function gpuContainersCheck(
  engine: EngineInfo | undefined,
  env: Record<string, string | undefined>,
): Check {
  const runtime = engine?.runtimes.includes("nvidia") ?? false;
  const hook = (env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    .split(":")
    .map((dir) => join(dir, "nvidia-container-runtime-hook"))
    .find((path) => existsSync(path));
  const ok = runtime || hook !== undefined;
  return {
    name: "gpu-ctr",
    ok,
    required: true,
    detail: ok
      ? `GPU containers: ${runtime ? 'runtime "nvidia" registered in the engine' : `NVIDIA container hook at "${hook}"`}`
      : 'GPU containers: neither a "nvidia" runtime in the engine nor nvidia-container-runtime-hook on the PATH',
    fix: ok
      ? undefined
      : "install nvidia-container-toolkit (nvidia-ctk runtime configure --runtime=docker), then restart dockerd",
  };
}

export function formatReport(r: DoctorReport): string {
  const lines = [`meca-executor doctor (config: ${r.config})`, ""];
  lines.push(
    `host      ${r.host.cores} cores, ${r.host.memoryMB} MB; task capacity ${r.host.taskCpu} cores, ${r.host.taskMemMB} MB (clipped to the host: its cores, 80 % of its memory)`,
  );
  for (const ch of r.checks) {
    const mark = ch.ok ? "ok  " : ch.required ? "FAIL" : ch.fix ? "WARN" : "--  ";
    lines.push(`[${mark}] ${ch.name.padEnd(8)} ${ch.detail}`);
    if (!ch.ok && ch.fix) lines.push(`         fix: ${ch.fix}`);
  }
  for (const g of r.gpus) {
    lines.push(
      `  gpu ${g.index}  ${g.model}  util ${g.utilizationPercent} %  memory ${g.memoryUsedMB}/${g.memoryTotalMB} MB  ${g.uuid}`,
    );
  }
  lines.push(
    "",
    r.ok
      ? "Everything the config asks for is here."
      : "Something the config asks for is missing (see FAIL above).",
  );
  return lines.join("\n");
}

export async function runDoctor(o: {
  config: Config;
  configFile?: string;
  env: Record<string, string | undefined>;
  json: boolean;
}): Promise<number> {
  const report = await collectReport(o);
  console.log(o.json ? JSON.stringify(report, null, 2) : formatReport(report));
  return report.ok ? 0 : 1;
}

/** A logger that drops everything (doctor's dry run says what it finds in its report instead). */
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
