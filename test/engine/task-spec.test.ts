import { describe, expect, it } from "vitest";
import { resolveSpec, taskKey, containerName, type SpecLimits } from "../../src/engine/task-spec.ts";
import { parseImageRef } from "../../src/engine/image-ref.ts";

const limits: SpecLimits = { capacity: { cpuTenths: 40, memMB: 4096, gpus: 2 }, microVMRuntime: "", sgxEnabled: false, allowedImages: [] };

describe("resolveSpec()", () => {
  it("uses 1 core and 128 MB when resource is absent or both are 0", () => {
    expect(resolveSpec({ image: "echo" }, limits)).toMatchObject({ image: "echo:latest", cpuTenths: 10, memMB: 128, gpuCount: 0 });
    expect(resolveSpec({ image: "echo", cpu: 0, mem: 0 }, limits)).toMatchObject({ cpuTenths: 10, memMB: 128 });
  });

  it("keeps one-decimal CPU as integer tenths", () => {
    expect(resolveSpec({ image: "echo:1", cpu: 0.3, mem: 256 }, limits)).toMatchObject({ cpuTenths: 3, memMB: 256 });
  });

  it("refuses at once what can never fit, naming the field", () => {
    expect(() => resolveSpec({ image: "echo", cpu: 5 }, limits)).toThrow(/"resource.cpu" asks for 5 cores/);
    expect(() => resolveSpec({ image: "echo", mem: 5000 }, limits)).toThrow(/"resource.mem"/);
    expect(() => resolveSpec({ image: "echo", useGpu: true, gpuCount: 3 }, limits)).toThrow(/gpu_count/);
  });

  it("refuses microVM without a configured runtime and SGX when disabled", () => {
    expect(() => resolveSpec({ image: "echo", runtime: "microVM" }, limits)).toThrow(/no microVM_runtime is configured/);
    expect(resolveSpec({ image: "echo", runtime: "microVM" }, { ...limits, microVMRuntime: "kata" })).toMatchObject({ runtime: "kata", runtimeKind: "microVM" });
    expect(() => resolveSpec({ image: "echo", useSgx: true }, limits)).toThrow(/SGX is not enabled/);
  });

  it("gives different keys and container names to different intents for one image", () => {
    const a = resolveSpec({ image: "echo:1", cpu: 1, mem: 128 }, limits);
    const b = resolveSpec({ image: "echo:1", cpu: 2, mem: 128 }, limits);
    expect(taskKey(a)).not.toBe(taskKey(b));
    const o = { instance: "default", run: "x1y2", serial: 1 };
    expect(containerName(a, o)).toMatch(/^meca-default-echo_1-[0-9a-f]{12}-x1y2n1$/);
    expect(containerName(a, o).split("-")[3]).not.toBe(containerName(b, o).split("-")[3]);
  });

  it("validates the image reference", () => {
    expect(() => resolveSpec({ image: "Bad Image!" }, limits)).toThrow(/Field "id"/);
    expect(parseImageRef("127.0.0.1:5055/meca-test/echo:1")).toMatchObject({ domain: "127.0.0.1:5055", path: "meca-test/echo", tag: "1" });
    expect(parseImageRef("library/busybox@sha256:" + "a".repeat(64))).toMatchObject({ path: "library/busybox" });
    expect(parseImageRef("UPPER/case")).toHaveProperty("error");
    expect(parseImageRef("a:b:c")).toHaveProperty("error");
  });
});
