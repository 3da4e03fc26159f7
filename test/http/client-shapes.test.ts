/**
 * POST / in the MECA clients' own shapes: the host actor's task config.json as `resource`
 * (`resource.resource`), the desktop app's task test (`resource.task_cpu`, top-level camelCase).
 * Each is read as the intent it means, checked on the container the fake engine was asked for.
 */
import { describe, expect, it } from "vitest";
import { fakeApp } from "../support/fake-app.ts";
import { fakeGpus } from "../support/fake-executor.ts";

const limits = (spec: { nanoCpus: number; memoryBytes: number }) => ({
  cpu: spec.nanoCpus / 1e9,
  mem: spec.memoryBytes / 2 ** 20,
});

describe("POST / in the clients' shapes", () => {
  it.each([
    ["the plain shape", { id: "echo:1", resource: { cpu: 2, mem: 1024 }, input: "x" }],
    [
      "the host actor's config.json as resource",
      { id: "echo:1", resource: { resource: { cpu: 2, mem: 1024 } }, input: "x" },
    ],
    [
      "the desktop app's task test",
      {
        id: "echo:1",
        resource: { task_cpu: 2, task_mem: 1024 },
        useGpu: false,
        gpuCount: 0,
        useSgx: false,
        input: "x",
      },
    ],
    [
      "two shapes that agree",
      { id: "echo:1", resource: { cpu: 2, resource: { cpu: 2, mem: 1024 } }, input: "x" },
    ],
    [
      "a config.json that says memory (the SGX sample task's)",
      {
        id: "echo:1",
        resource: { resource: { cpu: 2, memory: 1024, use_sgx: false } },
        input: "x",
      },
    ],
    ["memory beside cpu", { id: "echo:1", resource: { cpu: 2, memory: 1024 }, input: "x" }],
    [
      "mem and memory that agree",
      { id: "echo:1", resource: { cpu: 2, mem: 1024, memory: 1024 }, input: "x" },
    ],
  ])("runs %s with the declared resources", async (_name, body) => {
    const { request, backend } = await fakeApp();
    const r = await request("POST", "/", body);
    expect(r).toMatchObject({ status: 200, body: { success: true, msg: "x" } });
    expect(backend.created.map(limits)).toEqual([{ cpu: 2, mem: 1024 }]);
  });

  it.each([
    [
      "resource.resource.cpu",
      { id: "echo:1", resource: { resource: { cpu: 0.25 } } },
      /Field "resource.resource.cpu" must be in steps of 0.1 core/,
    ],
    [
      "resource.task_mem",
      { id: "echo:1", resource: { task_mem: "big" } },
      /Field "resource.task_mem" must be a whole number of MB/,
    ],
    [
      "resource.memory",
      { id: "echo:1", resource: { memory: 1.5 } },
      /Field "resource.memory" must be a whole number of MB/,
    ],
    ["useGpu", { id: "echo:1", useGpu: "yes" }, /Field "useGpu" must be true or false/],
    [
      "gpuCount",
      { id: "echo:1", useGpu: true, gpuCount: -2 },
      /Field "gpuCount" must be 0 or more/,
    ],
    ["useSgx", { id: "echo:1", useSgx: 1 }, /Field "useSgx" must be true or false/],
    [
      "resource.resource",
      { id: "echo:1", resource: { resource: 5 } },
      /Field "resource.resource" must be an object/,
    ],
    [
      "resource beside a desktop flag",
      { id: "echo:1", resource: 5, gpuCount: 0 },
      /Field "resource" /,
    ],
  ])(
    "refuses a bad %s with the same rules as the plain shape, naming the client's field",
    async (_field, body, msg) => {
      const { request, backend } = await fakeApp();
      const r = await request("POST", "/", body);
      expect(r).toMatchObject({ status: 400, body: { success: false, error: "BAD_REQUEST" } });
      expect(r.body.msg).toMatch(msg);
      expect(backend.created).toEqual([]);
    },
  );

  it.each([
    [
      { id: "echo:1", resource: { cpu: 1, resource: { cpu: 2 } } },
      /Fields "resource.cpu" and "resource.resource.cpu" disagree: 1 and 2/,
    ],
    [
      { id: "echo:1", resource: { mem: 256, task_mem: 512 } },
      /Fields "resource.mem" and "resource.task_mem" disagree: 256 and 512/,
    ],
    [
      { id: "echo:1", resource: { mem: 256, memory: 512 } },
      /Fields "resource.mem" and "resource.memory" disagree: 256 and 512/,
    ],
    [
      { id: "echo:1", resource: { resource: { mem: 256, memory: 512 } } },
      /Fields "resource.resource.mem" and "resource.resource.memory" disagree: 256 and 512/,
    ],
    [
      { id: "echo:1", resource: { use_gpu: false }, useGpu: true },
      /Fields "resource.use_gpu" and "useGpu" disagree: false and true/,
    ],
    [
      { id: "echo:1", use_sgx: true, useSgx: false },
      /Fields "use_sgx" and "useSgx" disagree: true and false/,
    ],
  ])(
    "refuses two shapes that give one field different values, naming both (%#)",
    async (body, msg) => {
      const { request, backend } = await fakeApp();
      const r = await request("POST", "/", body);
      expect(r).toMatchObject({
        status: 400,
        body: { success: false, error: "CONFLICTING_FIELDS" },
      });
      expect(r.body.msg).toMatch(msg);
      expect(backend.created).toEqual([]);
    },
  );

  it("takes the desktop app's useGpu/gpuCount, and use_gpu with gpu_count 0 as one GPU", async () => {
    const gpus = fakeGpus(2);
    const { request, backend } = await fakeApp({ settings: { hasGpu: true }, gpus });
    expect(
      (
        await request("POST", "/", {
          id: "echo:1",
          resource: { task_cpu: 1, task_mem: 128 },
          useGpu: true,
          gpuCount: 2,
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await request("POST", "/", {
          id: "echo:1",
          resource: { cpu: 1, mem: 256, use_gpu: true, gpu_count: 0 },
        })
      ).status,
    ).toBe(200);
    // Docker is asked for GPUs by UUID (the fake NVML's "GPU-<index>").
    expect(backend.created.map((s) => s.gpus)).toEqual([
      ["GPU-0", "GPU-1"],
      [expect.stringMatching(/^GPU-[01]$/)],
    ]);
  });

  it("takes the desktop app's useSgx as use_sgx", async () => {
    const { request } = await fakeApp();
    const r = await request("POST", "/", { id: "echo:1", useSgx: true });
    expect(r).toMatchObject({ status: 400, body: { error: "SGX_UNAVAILABLE" } });
  });
});
