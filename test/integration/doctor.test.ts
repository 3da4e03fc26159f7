import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../support/process.ts";
import { scratchDir } from "../support/scratch.ts";

describe("meca-executor doctor", () => {
  let dir: string;
  let lib: string;
  beforeAll(() => {
    dir = scratchDir("meca-doctor-");
    lib = execFileSync("sh", ["test/fixtures/nvml/build.sh"], { encoding: "utf8" }).trim();
    execFileSync("mknod", [join(dir, "enclave"), "c", "1", "3"]);
    mkdirSync(join(dir, "aesmd"));
  });
  const config = (text: string) => {
    const file = join(dir, `${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, text);
    return file;
  };

  it("reports the engine, runtimes, SGX, each GPU and the capacity, and exits 0 when all asked for is here", async () => {
    const file = config(
      `microVM_runtime: runsc\nhas_gpu: true\nnvml_library: ${lib}\nsgx:\n  enable: true\n  sgx_device: ${join(dir, "enclave")}\n  aesmd_path: ${join(dir, "aesmd")}\n`,
    );
    // A stand-in for the NVIDIA container toolkit's hook, so GPU containers count as possible.
    const bin = join(dir, "bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "nvidia-container-runtime-hook"), "#!/bin/sh\nexit 0\n", {
      mode: 0o755,
    });
    const r = await runCli(["doctor", "--config", file], { PATH: `${bin}:${process.env.PATH}` });
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain(
      `NVIDIA container hook at "${join(bin, "nvidia-container-runtime-hook")}"`,
    );
    expect(r.out).toMatch(
      /Docker \d+\.\d+.* \(API 1\.\d+\) over unix:\/\/\/var\/run\/docker\.sock/,
    );
    expect(r.out).toContain('microVM_runtime "runsc" is registered');
    expect(r.out).toMatch(/runtimes: .*runsc/);
    expect(r.out).toContain("SGX device");
    expect(r.out).toMatch(/gpu 0 {2}NVIDIA Fake A100 {2}util 0 %/);
    expect(r.out).toMatch(/gpu 1 {2}NVIDIA Fake A100 {2}util 87 %/);
    expect(r.out).toMatch(/task capacity \d+(\.\d)? cores, \d+ MB/);
  });

  it("exits non-zero and says what to install when something asked for is missing", async () => {
    const file = config(
      `microVM_runtime: kata\nhas_gpu: true\nnvml_library: /nonexistent/libnvidia-ml.so.1\nsgx:\n  enable: true\n  sgx_device: ${join(dir, "nope")}\n`,
    );
    const r = await runCli(["doctor", "--config", file]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('"kata" is not registered');
    expect(r.out).toContain("install Kata Containers");
    expect(r.out).toContain("install the NVIDIA driver");
    expect(r.out).toContain("install the Intel SGX driver");
    expect(r.out).toContain("install nvidia-container-toolkit");
  });

  it("says how the host is protected from tasks: the disk bound and who holds it, free space, logs, I/O weight, the host firewall", async () => {
    const r = await runCli(["doctor", "--config", config("instance: doctor-host\n")]);
    expect(r.out).toMatch(
      /\[ok {2}\] disk +task_disk_mb 1024 MB per task, held by the (executor \(a check each 0\.5 s\)|engine): /,
    );
    expect(r.out).toMatch(
      /\[ok {2}\] free +the engine's data root \S+ has \d+ MB free; new starts stop below min_free_disk_mb \(2048 MB\)/,
    );
    expect(r.out).toMatch(/\[ok {2}\] logs +task logs: json-file, rotated/);
    expect(r.out).toMatch(
      /\[ok {2}\] cpu +task_cpu_priority: idle: a start gives the cgroup \S+\/meca-tasks-\S+ cpu\.(shares 2|weight 1) \(cgroupfs\): tasks get only the CPU the host's own programs leave idle/,
    );
    expect(r.out).toMatch(/\[(ok {2}|WARN)\] io +disk I\/O: /);
    expect(r.out).toMatch(
      /\[ok {2}\] firewall a start closes the host to tasks: it inserts "-i mecat\+ \.\.\. -j REJECT" into INPUT/,
    );
    const weak = await runCli([
      "doctor",
      "--config",
      config(
        "task_disk_mb: 0\nmin_free_disk_mb: 99999999\nmin_free_host_mem_mb: 99999999\ntask_host_firewall: off\n",
      ),
    ]);
    expect(weak.code).toBe(0); // warnings, not failures
    expect(weak.out).toMatch(
      /\[WARN\] disk +task_disk_mb: 0: a task's writable layer is unbounded/,
    );
    expect(weak.out).toMatch(
      /\[WARN\] free +the engine's data root \S+ has \d+ MB free; new starts stop below min_free_disk_mb \(99999999 MB\)/,
    );
    expect(weak.out).toMatch(
      /\[WARN\] memory +the host has \d+ MB of memory available; new starts stop, and idle tasks go, below min_free_host_mem_mb \(99999999 MB\)/,
    );
    expect(weak.out).toMatch(
      /\[WARN\] firewall task_host_firewall: off: tasks can connect to every address of the host/,
    );
    expect(weak.out).toContain(
      "fix: set task_host_firewall: auto, or run once as root: iptables -I INPUT -i mecat+ -m conntrack ! --ctstate ESTABLISHED,RELATED -j REJECT && ip6tables -I INPUT",
    );
  });

  it("takes the original executor's -config FILE", async () => {
    const file = config("cpu: 1\n");
    for (const args of [["-config", file], [`-config=${file}`]]) {
      const r = await runCli(["doctor", "--json", ...args]);
      expect(JSON.parse(r.out).config).toBe(file);
    }
  });

  it("prints JSON with --json", async () => {
    const r = await runCli(["doctor", "--json", "--config", config(`nvml_library: ${lib}\n`)]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out);
    expect(report.engine.runtimes).toContain("runc");
    expect(report.gpus).toHaveLength(2);
    expect(report.host.cores).toBeGreaterThan(0);
  });

  it("shows the isolation in force, and warns when the API listens where task networks reach it", async () => {
    const safe = await runCli(["doctor", "--config", config("instance: doctor-iso\n")]);
    expect(safe.out).toMatch(
      /\[ok {2}\] network +isolation: each task on a network of its own, without egress, from 10\.201\.0\.0\/16; \d+ task network\(s\) now/,
    );
    expect(safe.out).toMatch(
      /\[ok {2}\] api +the API is out of the tasks' reach \(loopback on the host\)/,
    );
    const open = await runCli(["doctor", "--config", config("host: 0.0.0.0\nnetwork: publish\n")]);
    expect(open.out).toMatch(
      /\[ok {2}\] network +isolation: none \(tasks share Docker's default bridge: weaker\)/,
    );
    expect(open.out).toMatch(
      /\[WARN\] api +the API listens on "0\.0\.0\.0" on the host's side: tasks can connect to it through their network's gateway/,
    );
    expect(open.out).toContain(
      "fix: listen on 127.0.0.1, or add the firewall rule in the README (Isolation)",
    );
    expect(open.code).toBe(0); // a warning, not a failure
  });

  it("fails plainly when no engine answers", async () => {
    const r = await runCli(["doctor"], { DOCKER_HOST: "unix:///tmp/meca-no-such-docker.sock" });
    expect(r.code).toBe(1);
    expect(r.out).toContain("Docker engine unreachable");
    expect(r.out).toContain("apt-get install docker.io");
  });
});
