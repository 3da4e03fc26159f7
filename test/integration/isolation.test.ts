import { execFileSync } from "node:child_process";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { ECHO_IMAGE, SGX_IMAGE } from "../support/fixtures.ts";
import { docker } from "../support/docker-env.ts";
import { startExecutor, until, type Harness } from "../support/harness.ts";
import { scratchDir } from "../support/scratch.ts";

const small = { cpu: 0.1, mem: 32 };
let h: Harness | undefined;
afterEach(async () => {
  if (h) expect(await h.close()).toEqual([]);
  h = undefined;
});

const inspect = (id: string) => JSON.parse(docker(["inspect", id]))[0];

describe("microVM runtime (runsc stands in for Kata)", () => {
  it('runs runtime "microVM" under microVM_runtime and "container" under the default', async () => {
    h = await startExecutor({ microVM_runtime: "runsc" });
    const vm = await h.execute({
      id: ECHO_IMAGE,
      resource: small,
      runtime: "microVM",
      input: "in a sandbox",
    });
    expect(vm).toMatchObject({ status: 200, body: { msg: "in a sandbox" } });
    const plain = await h.execute({
      id: ECHO_IMAGE,
      resource: small,
      runtime: "container",
      input: "plain",
    });
    expect(plain.body.msg).toBe("plain");
    const tasks = h.executor.tasks();
    expect(tasks).toHaveLength(2);
    const runtimes = tasks.map((t) => inspect(t.container_id!).HostConfig.Runtime).sort();
    expect(runtimes).toEqual(["runc", "runsc"]);
  });

  it("refuses microVM, never downgrading, when none is configured or the engine lacks it", async () => {
    h = await startExecutor({ microVM_runtime: "kata" });
    const r = await h.execute({ id: ECHO_IMAGE, resource: small, runtime: "microVM" });
    expect(r.status).toBe(400);
    expect(r.body.error).toBe("MICROVM_UNAVAILABLE");
    expect(r.body.msg).toContain('"kata"');
    expect(await h.containers()).toEqual([]);

    await h.call("POST", "/pause");
    await h.call("POST", "/update-config", { microVM_runtime: "" });
    await h.call("POST", "/unpause");
    expect(
      (await h.execute({ id: ECHO_IMAGE, resource: small, runtime: "microVM" })).body.msg,
    ).toContain("no microVM_runtime is configured");

    await h.call("POST", "/pause");
    await h.call("POST", "/update-config", { microVM_runtime: "runsc" });
    await h.call("POST", "/unpause");
    expect(
      (await h.execute({ id: ECHO_IMAGE, resource: small, runtime: "microVM", input: "now" })).body
        .msg,
    ).toBe("now");
  });
});

describe("SGX", () => {
  let dir: string;
  beforeAll(() => {
    dir = scratchDir("meca-sgx-");
    // A character device standing in for the enclave (same numbers as /dev/null) and a folder for the AESM socket.
    execFileSync("mknod", [join(dir, "enclave"), "c", "1", "3"]);
    mkdirSync(join(dir, "aesmd"));
  });

  it("maps the device and the AESM folder, and routes SGXRAREQUEST to /ra and other input to /run", async () => {
    h = await startExecutor({
      sgx: { enable: true, sgx_device: join(dir, "enclave"), aesmd_path: join(dir, "aesmd") },
    });
    const ra = await h.execute({
      id: SGX_IMAGE,
      resource: small,
      use_sgx: true,
      input: "SGXRAREQUEST",
    });
    expect(ra.status).toBe(200);
    expect(ra.body.msg).toMatch(/^ra-report:[0-9a-f]{32}$/);
    expect(
      (await h.execute({ id: SGX_IMAGE, resource: small, use_sgx: true, input: "secret work" }))
        .body.msg,
    ).toBe("sgx:secret work");
    const [task] = h.executor.tasks();
    const c = inspect(task!.container_id!);
    expect(c.HostConfig.Devices).toEqual([
      {
        PathOnHost: join(dir, "enclave"),
        PathInContainer: "/dev/sgx/enclave",
        CgroupPermissions: "rwm",
      },
    ]);
    expect(c.HostConfig.Mounts).toEqual([
      { Type: "bind", Source: join(dir, "aesmd"), Target: "/var/run/aesmd" },
    ]);
    const logs = docker(["logs", task!.container_id!]);
    expect(logs).toContain("sgx-device: yes");
    expect(logs).toContain("aesmd: yes");
    // The same image without SGX is another task.
    const plain = await h.execute({ id: SGX_IMAGE, resource: small, input: "x" });
    expect(plain.status).toBe(502); // the SGX fixture answers 404 on POST /
    expect(
      h.executor
        .tasks()
        .map((t) => t.sgx)
        .sort(),
    ).toEqual([false, true]);
  });

  it("refuses use_sgx where SGX is disabled, or where the engine finds the device or the AESM folder missing", async () => {
    h = await startExecutor();
    const off = await h.execute({ id: SGX_IMAGE, resource: small, use_sgx: true });
    expect(off).toMatchObject({ status: 400, body: { error: "SGX_UNAVAILABLE" } });
    await h.close();
    // Judged where the tasks run, by the engine: the device at start, the folder at create.
    h = await startExecutor({
      sgx: { enable: true, sgx_device: join(dir, "missing"), aesmd_path: join(dir, "aesmd") },
    });
    const missing = await h.execute({ id: SGX_IMAGE, resource: small, use_sgx: true });
    expect(missing).toMatchObject({ status: 400, body: { error: "SGX_UNAVAILABLE" } });
    expect(missing.body.msg).toContain(
      `the SGX device "${join(dir, "missing")}" is not available where tasks run`,
    );
    expect(missing.body.msg).toContain("error gathering device information");
    await h.close();
    h = await startExecutor({
      sgx: { enable: true, sgx_device: join(dir, "enclave"), aesmd_path: join(dir, "no-aesmd") },
    });
    const noAesm = await h.execute({ id: SGX_IMAGE, resource: small, use_sgx: true });
    expect(noAesm).toMatchObject({ status: 400, body: { error: "SGX_UNAVAILABLE" } });
    expect(noAesm.body.msg).toContain(
      `the AESM socket folder "${join(dir, "no-aesmd")}" does not exist where tasks run`,
    );
    await until(async () => (await h!.containers()).length === 0, "failed containers removed");
    expect(h.executor.ledger.used()).toEqual({ cpuTenths: 0, memMB: 0, gpus: [] });
  });
});

describe("GPUs through NVML (stand-in libnvidia-ml.so.1)", () => {
  let lib: string;
  let state: string;
  const writeState = (lines: string[]) => {
    writeFileSync(`${state}.tmp`, `${lines.join("\n")}\n`);
    renameSync(`${state}.tmp`, state);
  };
  beforeAll(() => {
    lib = execFileSync("sh", ["test/fixtures/nvml/build.sh"], { encoding: "utf8" }).trim();
    state = join(scratchDir("meca-nvml-"), "state");
    writeState(["0 100 40960 NVIDIA Fake A100", "87 30000 40960 NVIDIA Fake A100"]);
    process.env.FAKE_NVML_STATE = state;
  });

  it("counts the GPUs, reserves only idle ones, refuses too many at once, and returns them when a start fails", async () => {
    h = await startExecutor({
      has_gpu: true,
      nvml_library: lib,
      gpu_sample_interval: 0.1,
      queue_timeout: 1,
    });
    const stats = (await h.call("GET", "/stats")).body;
    expect(stats).toMatchObject({ task_gpu: 2, task_used_gpu: 0, gpu_model: "NVIDIA Fake A100" });

    const tooMany = await h.execute({
      id: ECHO_IMAGE,
      resource: { ...small, use_gpu: true, gpu_count: 3 },
    });
    expect(tooMany).toMatchObject({ status: 400, body: { error: "EXCEEDS_CAPACITY" } });

    // GPU 1 is busy with someone else's work: two GPUs are not free, so the request waits, then 503.
    const short = await h.execute({
      id: ECHO_IMAGE,
      resource: { ...small, use_gpu: true, gpu_count: 2 },
    });
    expect(short).toMatchObject({ status: 503, body: { error: "NO_CAPACITY" } });
    expect(short.headers.get("retry-after")).toBeTruthy();

    // One GPU is free: the executor asks Docker for device 0 by its UUID. This engine has no
    // NVIDIA runtime, so the start fails with a 400 naming the device, and the GPU comes back.
    const one = await h.execute({
      id: ECHO_IMAGE,
      resource: { ...small, use_gpu: true, gpu_count: 1 },
    });
    expect(one).toMatchObject({ status: 400, body: { error: "GPU_UNAVAILABLE" } });
    expect(one.body.msg).toContain('"GPU-fa4e0000-0000-4000-8000-000000000000"');
    expect(h.executor.ledger.used()).toEqual({ cpuTenths: 0, memMB: 0, gpus: [] });
    await until(async () => (await h!.containers()).length === 0, "failed container removed");

    // When GPU 1 goes idle, two GPUs pass admission.
    writeState(["0 100 40960 NVIDIA Fake A100", "2 100 40960 NVIDIA Fake A100"]);
    await until(() => h!.executor.ledger.freeGpus().length === 2, "GPU 1 sampled idle");
    const two = await h.execute({
      id: ECHO_IMAGE,
      resource: { ...small, use_gpu: true, gpu_count: 2 },
    });
    expect(two.body.error).not.toBe("NO_CAPACITY");
  });

  it("says plainly when NVML cannot be loaded and counts 0 GPUs", async () => {
    h = await startExecutor({ has_gpu: true, nvml_library: "/nonexistent/libnvidia-ml.so.1" });
    const warn = h.logger.records.find((l) => l.level === "warn" && l.msg.includes("NVML"));
    expect(warn?.msg).toContain("counts 0 GPUs");
    expect(String(warn?.fields.error)).toContain("/nonexistent/libnvidia-ml.so.1");
    expect((await h.call("GET", "/stats")).body).toMatchObject({ task_gpu: 0 });
    const r = await h.execute({ id: ECHO_IMAGE, resource: { ...small, use_gpu: true } });
    expect(r).toMatchObject({ status: 400, body: { error: "EXCEEDS_CAPACITY" } });
  });
});
