import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  ConfigError,
  engineSettings,
  loadConfig,
  prewarmEntries,
  settingsUpdate,
  updateAnswer,
  updateSchema,
  type ConfigSource,
} from "../src/config.ts";

const files = (
  map: Record<string, string>,
  env: Record<string, string> = {},
  flag?: string,
): ConfigSource => ({
  flag,
  env,
  readFile: (p) => {
    if (!(p in map)) throw new Error(`ENOENT: no such file "${p}"`);
    return map[p]!;
  },
  exists: (p) => p in map,
});

describe("loadConfig()", () => {
  it("refuses a timeout past a week and seconds past a week, naming the key: a timer cannot hold them", () => {
    const load = (yaml: string) => () => loadConfig(files({ "/c.yaml": yaml }, {}, "/c.yaml"));
    expect(load("timeout: 1e308")).toThrow(/timeout: timeout must be at most 10080 minutes/);
    expect(load("timeout: 10080")).not.toThrow();
    for (const key of [
      "ready_timeout",
      "request_timeout",
      "queue_timeout",
      "headers_timeout",
      "request_read_timeout",
      "idle_timeout",
      "drain_timeout",
    ]) {
      expect(load(`${key}: 604801`), key).toThrow(
        new RegExp(`${key}: ${key} must be at most 604800 seconds`),
      );
      expect(load(`${key}: 604800`), key).not.toThrow();
    }
    expect(load("request_read_timeout: 0")).toThrow(
      /request_read_timeout: request_read_timeout must be greater than 0/,
    );
  });

  it("refuses an unknown failure_status or pull_policy, and a pull_timeout that is not a positive number, naming the key", () => {
    const load = (yaml: string) => () => loadConfig(files({ "/c.yaml": yaml }, {}, "/c.yaml"));
    expect(load("failure_status: maybe")).toThrow(
      /failure_status: failure_status must be "ok" or "http"/,
    );
    expect(load("pull_policy: sometimes")).toThrow(
      /pull_policy: pull_policy must be "missing", "never" or "always"/,
    );
    expect(load("pull_timeout: -1")).toThrow(/pull_timeout: pull_timeout must be greater than 0/);
    expect(load("pull_timeout: soon")).toThrow(
      /pull_timeout: pull_timeout must be a number of seconds/,
    );
    expect(load("pull_stall_timeout: 0")).toThrow(
      /pull_stall_timeout: pull_stall_timeout must be greater than 0/,
    );
    expect(loadConfig(files({})).config).toMatchObject({
      failure_status: "ok",
      pull_policy: "missing",
      pull_timeout: 3600,
      pull_stall_timeout: 120,
    });
  });

  it("uses the built-in defaults when no file is named or present", () => {
    const { config, path } = loadConfig(files({}));
    expect(path).toBeUndefined();
    expect(config).toMatchObject({
      type: "docker",
      timeout: 1,
      cpu: 4,
      mem: 4096,
      has_gpu: false,
      port: 2591,
    });
  });

  it("takes --config, else MECA_EXECUTOR_CONFIG, else /app/meca_executor.yaml, else /app/mecanywhere_executor.yaml", () => {
    const map = {
      "/a.yaml": "cpu: 1",
      "/b.yaml": "cpu: 2",
      "/app/meca_executor.yaml": "cpu: 3",
      "/app/mecanywhere_executor.yaml": "cpu: 4",
    };
    expect(loadConfig(files(map, { MECA_EXECUTOR_CONFIG: "/b.yaml" }, "/a.yaml")).config.cpu).toBe(
      1,
    );
    expect(loadConfig(files(map, { MECA_EXECUTOR_CONFIG: "/b.yaml" })).config.cpu).toBe(2);
    expect(loadConfig(files(map)).config.cpu).toBe(3);
    const { "/app/meca_executor.yaml": _, ...desktop } = map;
    expect(loadConfig(files(desktop))).toMatchObject({
      path: "/app/mecanywhere_executor.yaml",
      config: { cpu: 4 },
    });
  });

  it("reads the seed's sample config and the desktop app's, with has_gpu as 0/1", () => {
    const seed = loadConfig(
      files({ "/s.yaml": "type: docker\ntimeout: 1\ncpu: 2\nmem: 2048\n" }, {}, "/s.yaml"),
    ).config;
    expect(seed).toMatchObject({ type: "docker", timeout: 1, cpu: 2, mem: 2048, network: "auto" });
    expect(seed.host).toBeUndefined(); // resolved where the executor runs (main.ts)
    const desktop = (has: string) =>
      loadConfig(
        files({ "/d.yaml": `type: docker\ncpu: 1\nmem: 1024\nhas_gpu: ${has}\n` }, {}, "/d.yaml"),
      ).config.has_gpu;
    expect([desktop("1"), desktop("0"), desktop("true"), desktop("false")]).toEqual([
      true,
      false,
      true,
      false,
    ]);
    expect(() => desktop("2")).toThrow(/has_gpu: has_gpu must be true, false, 0 or 1/);
    expect(() => loadConfig(files({ "/k.yaml": "type: kubernetes" }, {}, "/k.yaml"))).toThrow(
      /type: only "docker" is supported/,
    );
  });

  it("loads every sample config in conf/", () => {
    for (const name of ["docker", "gpu", "kata", "sgx"]) {
      const path = `conf/${name}.yaml`;
      const { config } = loadConfig(files({ [path]: readFileSync(path, "utf8") }, {}, path));
      expect(config.type).toBe("docker");
    }
  });

  it("stops on a bad file, naming the key and the reason", () => {
    const bad = (text: string) => () => loadConfig(files({ "/c.yaml": text }, {}, "/c.yaml"));
    expect(bad("cpu: 1.25")).toThrow(ConfigError);
    expect(bad("cpu: 1.25")).toThrow(/"\/c.yaml": cpu: cpu must have at most one decimal/);
    expect(bad("sgx:\n  enable: maybe")).toThrow(/sgx.enable: Expected boolean/);
    expect(bad("mem: -5")).toThrow(/mem: mem must be greater than 0/);
    expect(bad("cpus: 4")).toThrow(/cpus: unknown key/);
    expect(bad("cpu: [")).toThrow(/Cannot parse config/);
    expect(() => loadConfig(files({}, {}, "/missing.yaml"))).toThrow(
      /Cannot read config "\/missing.yaml"/,
    );
  });

  it("reads prewarm entries in the execute request's shape, and names a bad one", () => {
    const load = (text: string) => loadConfig(files({ "/c.yaml": text }, {}, "/c.yaml")).config;
    expect(
      load(
        "prewarm:\n  - id: echo:1\n    resource: {cpu: 0.5, mem: 64}\n    count: 2\n  - id: sgx:1\n    use_sgx: true\n    runtime: microVM\n",
      ).prewarm,
    ).toEqual([
      { id: "echo:1", resource: { cpu: 0.5, mem: 64 }, count: 2 },
      { id: "sgx:1", use_sgx: true, runtime: "microVM", count: 1 },
    ]);
    expect(
      prewarmEntries(
        load("prewarm:\n  - id: echo:1\n    resource: {cpu: 0.5, use_gpu: true}\n").prewarm,
      ),
    ).toEqual([
      {
        intent: {
          image: "echo:1",
          cpu: 0.5,
          mem: undefined,
          useGpu: true,
          gpuCount: undefined,
          runtime: "",
          useSgx: false,
        },
        count: 1,
      },
    ]);
    expect(() => load("prewarm:\n  - id: echo:1\n    count: 0\n")).toThrow(
      /prewarm\.0\.count: count must be greater than 0/,
    );
    expect(() => load("prewarm:\n  - id: echo:1\n    cores: 1\n")).toThrow(
      /prewarm\.0\.cores: unknown key/,
    );
    expect(() => load("prewarm:\n  - resource: {cpu: 1}\n")).toThrow(
      /prewarm\.0\.id: id is required/,
    );
    expect(() => load("prewarm:\n  - id: echo:1\n    resource: {cpu: 0.25}\n")).toThrow(
      /prewarm\.0\.resource\.cpu: cpu must be in steps of 0\.1 core/,
    );
    expect(() => load("prewarm: echo:1\n")).toThrow(/prewarm: prewarm must be a list of tasks/);
  });

  it("bounds the task disk by default and stops on a bound that is not a non-negative integer, naming the key", () => {
    const load = (text: string) => loadConfig(files({ "/c.yaml": text }, {}, "/c.yaml")).config;
    expect(load("")).toMatchObject({
      task_disk_mb: 1024,
      task_disk_check_interval: 0.5,
      min_free_disk_mb: 2048,
      task_host_firewall: "auto",
    });
    expect(load("task_disk_mb: 0\nmin_free_disk_mb: 0")).toMatchObject({
      task_disk_mb: 0,
      min_free_disk_mb: 0,
    });
    for (const key of ["task_disk_mb", "min_free_disk_mb"]) {
      for (const value of ["-1", "1.5", "lots"])
        expect(() => load(`${key}: ${value}`)).toThrow(new RegExp(`"/c.yaml": ${key}: `));
    }
    expect(() => load("task_disk_check_interval: 0")).toThrow(/task_disk_check_interval/);
    expect(() => load("task_host_firewall: maybe")).toThrow(
      /task_host_firewall: task_host_firewall must be "auto", "on" or "off"/,
    );
  });

  it("keeps 512 MB of the host's memory free by default; stops on a min_free_host_mem_mb that is not a non-negative integer, naming the key", () => {
    const load = (text: string) => loadConfig(files({ "/c.yaml": text }, {}, "/c.yaml")).config;
    expect(load("").min_free_host_mem_mb).toBe(512);
    expect(load("min_free_host_mem_mb: 0").min_free_host_mem_mb).toBe(0);
    expect(load("min_free_host_mem_mb: 4096").min_free_host_mem_mb).toBe(4096);
    for (const value of ["-1", "1.5", "lots"])
      expect(() => load(`min_free_host_mem_mb: ${value}`)).toThrow(
        /"\/c.yaml": min_free_host_mem_mb: min_free_host_mem_mb must be/,
      );
  });

  it("keeps no task through a stop unless keep_tasks_on_stop is true, and names a value that is not a boolean", () => {
    const load = (text: string) => loadConfig(files({ "/c.yaml": text }, {}, "/c.yaml")).config;
    expect(load("").keep_tasks_on_stop).toBe(false);
    expect(load("keep_tasks_on_stop: true").keep_tasks_on_stop).toBe(true);
    expect(() => load("keep_tasks_on_stop: sometimes")).toThrow(
      /keep_tasks_on_stop: keep_tasks_on_stop must be true or false/,
    );
  });

  it("takes the admin token and NVML library from the environment", () => {
    const { config } = loadConfig(
      files({}, { MECA_ADMIN_TOKEN: "s3cret", MECA_NVML_LIBRARY: "/x/libnvidia-ml.so.1" }),
    );
    expect(config.admin_token).toBe("s3cret");
    expect(config.nvml_library).toBe("/x/libnvidia-ml.so.1");
  });

  it("refuses at start-up an admin_token a bearer header cannot carry, naming the allowed characters", () => {
    const file = (token: string) =>
      files({ "/c.yaml": `admin_token: ${JSON.stringify(token)}` }, {}, "/c.yaml");
    expect(() => loadConfig(file("p@ss word!"))).toThrow(
      /admin_token: a bearer token may hold only letters, digits and - \. _ ~ \+ \//,
    );
    expect(() => loadConfig(files({}, { MECA_ADMIN_TOKEN: "bad token" }))).toThrow(
      /MECA_ADMIN_TOKEN/,
    );
    expect(loadConfig(file("Abc-1.2_3~4+5/6==")).config.admin_token).toBe("Abc-1.2_3~4+5/6==");
  });

  it("bounds what clients and tasks send, with documented defaults", () => {
    expect(loadConfig(files({})).config).toMatchObject({
      max_answer_bytes: 16 * 1024 * 1024,
      max_admin_body_bytes: 64 * 1024,
      max_buffered_input_bytes: 256 * 1024 * 1024,
      max_connections: 512,
      headers_timeout: 30,
      idle_timeout: 5,
      task_log_max_size: "10m",
      task_log_max_file: 3,
      allowed_origins: [],
    });
    expect(() =>
      loadConfig(files({ "/c.yaml": "task_log_max_size: lots" }, {}, "/c.yaml")),
    ).toThrow(/task_log_max_size/);
  });
});

describe("updateSchema (POST /update-config)", () => {
  it("takes every body the seed's README and the desktop app send", () => {
    expect(
      updateSchema.parse({
        type: "docker",
        timeout: 2,
        cpu: 2,
        mem: 2048,
        has_gpu: false,
        microVM_runtime: "",
      }),
    ).toMatchObject({ timeout: 2, cpu: 2, has_gpu: false });
    expect(updateSchema.parse({ cpu: 1.5, mem: 1024 })).toEqual({ cpu: 1.5, mem: 1024 });
    expect(updateSchema.parse({ has_gpu: 1 })).toEqual({ has_gpu: true });
    expect(updateSchema.parse({ has_gpu: 0 })).toEqual({ has_gpu: false });
  });

  it("refuses another engine type and unknown keys, naming them", () => {
    const r = updateSchema.safeParse({ type: "podman" });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]).toMatchObject({
      path: ["type"],
      message: 'only "docker" is supported',
    });
    expect(updateSchema.safeParse({ cpus: 2 }).error?.issues[0]?.code).toBe("unrecognized_keys");
  });
});

describe("the settings table (one row per key)", () => {
  it("gives the engine every setting, each from its key and converted", () => {
    const yaml = [
      "timeout: 2",
      "cpu: 1.5",
      "mem: 512",
      "has_gpu: 1",
      "microVM_runtime: kata",
      "sgx: {enable: true, sgx_device: /dev/sgx_enclave, aesmd_path: /run/aesmd}",
      "task_disk_check_interval: 0.25",
      "ready_timeout: 7",
      "request_timeout: 8",
      "queue_timeout: 9",
      "gpu_sample_interval: 3",
      "pull_timeout: 11",
      "pull_stall_timeout: 12",
      "prewarm: [{id: 'a/b:1', count: 2}]",
    ].join("\n");
    const { config } = loadConfig(files({ "/c.yaml": yaml }, {}, "/c.yaml"));
    const s = engineSettings(config, { mode: "isolated", inContainer: true });
    expect(s).toEqual({
      idleTimeoutMinutes: 2,
      cpu: 1.5,
      memMB: 512,
      hasGpu: true,
      microVMRuntime: "kata",
      sgx: { enable: true, device: "/dev/sgx_enclave", aesmdPath: "/run/aesmd" },
      network: "",
      isolate: true,
      taskSubnetPool: "10.201.0.0/16",
      taskNetworkSpares: 2,
      taskEgress: false,
      capDrop: ["NET_RAW"],
      nofile: 4096,
      taskDiskMB: 1024,
      diskCheckIntervalMs: 250,
      minFreeDiskMB: 2048,
      minFreeHostMemMB: 512,
      usage: true,
      instance: "default",
      readyTimeoutMs: 7000,
      requestTimeoutMs: 8000,
      queueTimeoutMs: 9000,
      drainTimeoutMs: 5000,
      pidsLimit: 1024,
      noNewPrivileges: true,
      allowedImages: [],
      gpuIdlePercent: 10,
      gpuSampleIntervalMs: 3000,
      taskConcurrency: 0,
      maxReplicas: 0,
      prewarm: prewarmEntries([{ id: "a/b:1", count: 2 }]),
      keepTasksOnStop: false,
      pullPolicy: "missing",
      pullTimeoutMs: 11000,
      pullStallTimeoutMs: 12000,
    });
    const host = engineSettings(config, {
      mode: "network",
      network: "mecanywhere",
      inContainer: false,
    });
    expect([host.network, host.isolate, host.drainTimeoutMs]).toEqual([
      "mecanywhere",
      false,
      30000,
    ]);
    expect(engineSettings(config, { mode: "publish", inContainer: false }).network).toBe("");
  });

  it("lets update-config change exactly the keys marked updatable, and answers in the file's terms", () => {
    expect(Object.keys(updateSchema.shape).sort()).toEqual(
      ["type", "timeout", "cpu", "mem", "has_gpu", "microVM_runtime", "prewarm"].sort(),
    );
    const u = updateSchema.parse({ timeout: 3, has_gpu: 0, prewarm: [{ id: "a/b:1" }] });
    expect(settingsUpdate(u)).toEqual({
      idleTimeoutMinutes: 3,
      hasGpu: false,
      prewarm: prewarmEntries([{ id: "a/b:1", count: 1 }]),
    });
    const { config } = loadConfig(files({}));
    const s = engineSettings(config, { mode: "publish", inContainer: false });
    const answer = updateAnswer(s, {
      idleTimeoutMinutes: { from: 1, to: 3 },
      prewarm: { from: [], to: prewarmEntries([{ id: "a/b:1", count: 1 }]) },
    });
    expect(answer).toEqual({
      config: { timeout: 1, cpu: 4, mem: 4096, has_gpu: false, microVM_runtime: "", prewarm: 0 },
      changed: { timeout: { from: 1, to: 3 }, prewarm: { from: 0, to: 1 } },
    });
  });
});
