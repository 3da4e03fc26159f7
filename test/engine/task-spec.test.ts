import { describe, expect, it } from "vitest";
import { BadRequestError, ForbiddenError, type ExecutorError } from "../../src/engine/errors.ts";
import {
  containerName,
  isWholeTenths,
  keyHash,
  MIN_MEM_MB,
  parseSpecLabel,
  recordableImage,
  resolveSpec,
  specLabel,
  taskKey,
  type SpecLimits,
} from "../../src/engine/task-spec.ts";
import { parseImageRef } from "../../src/engine/image-ref.ts";

const limits: SpecLimits = {
  capacity: { cpuTenths: 40, memMB: 4096, gpus: 2 },
  microVMRuntime: "",
  sgxEnabled: false,
  allowedImages: [],
};

describe("resolveSpec()", () => {
  it("uses 1 core and 128 MB when resource is absent or both are 0", () => {
    expect(resolveSpec({ image: "echo" }, limits)).toMatchObject({
      image: "echo:latest",
      cpuTenths: 10,
      memMB: 128,
      gpuCount: 0,
    });
    expect(resolveSpec({ image: "echo", cpu: 0, mem: 0 }, limits)).toMatchObject({
      cpuTenths: 10,
      memMB: 128,
    });
  });

  it("keeps one-decimal CPU as integer tenths", () => {
    expect(resolveSpec({ image: "echo:1", cpu: 0.3, mem: 256 }, limits)).toMatchObject({
      cpuTenths: 3,
      memMB: 256,
    });
  });

  it("refuses at once what can never fit, naming the field", () => {
    expect(() => resolveSpec({ image: "echo", cpu: 5 }, limits)).toThrow(
      /"resource.cpu" asks for 5 cores/,
    );
    expect(() => resolveSpec({ image: "echo", mem: 5000 }, limits)).toThrow(/"resource.mem"/);
    expect(() => resolveSpec({ image: "echo", useGpu: true, gpuCount: 3 }, limits)).toThrow(
      /gpu_count/,
    );
  });

  it("refuses microVM without a configured runtime and SGX when disabled", () => {
    expect(() => resolveSpec({ image: "echo", runtime: "microVM" }, limits)).toThrow(
      /no microVM_runtime is configured/,
    );
    expect(
      resolveSpec({ image: "echo", runtime: "microVM" }, { ...limits, microVMRuntime: "kata" }),
    ).toMatchObject({ runtime: "kata", runtimeKind: "microVM" });
    expect(() => resolveSpec({ image: "echo", useSgx: true }, limits)).toThrow(
      /SGX is not enabled/,
    );
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
    expect(parseImageRef("127.0.0.1:5055/meca-test/echo:1")).toMatchObject({
      domain: "127.0.0.1:5055",
      path: "meca-test/echo",
      tag: "1",
    });
    expect(parseImageRef("library/busybox@sha256:" + "a".repeat(64))).toMatchObject({
      path: "library/busybox",
    });
    expect(parseImageRef("UPPER/case")).toHaveProperty("error");
    expect(parseImageRef("a:b:c")).toHaveProperty("error");
  });
});

const caught = (f: () => unknown): ExecutorError => {
  try {
    f();
  } catch (e) {
    return e as ExecutorError;
  }
  throw new Error("did not throw");
};

describe("resolveSpec() fields", () => {
  it("names the image field, its problem and the image, cut at 80 characters", () => {
    const e = caught(() => resolveSpec({ image: "Bad Image!" }, limits)) as BadRequestError;
    expect(e).toBeInstanceOf(BadRequestError);
    expect([e.message, e.field, e.code]).toEqual([
      'Field "id" is not a valid image reference (expected name[:tag][@digest], lowercase): "Bad Image!"',
      "id",
      "INVALID_IMAGE",
    ]);
    const at80 = `A${"b".repeat(79)}`;
    expect(caught(() => resolveSpec({ image: at80 }, limits)).message).toContain(`: "${at80}"`);
    const at81 = `A${"b".repeat(80)}`;
    expect(caught(() => resolveSpec({ image: at81 }, limits)).message).toContain(
      `: "${at81.slice(0, 77)}..."`,
    );
  });

  it("checks allowed_images against the normalized and the written name", () => {
    expect(
      resolveSpec({ image: "echo" }, { ...limits, allowedImages: ["echo:latest"] }).image,
    ).toBe("echo:latest");
    expect(resolveSpec({ image: "echo" }, { ...limits, allowedImages: ["echo"] }).image).toBe(
      "echo:latest",
    );
    const e = caught(() =>
      resolveSpec({ image: "other:1" }, { ...limits, allowedImages: ["echo:*"] }),
    );
    expect(e).toBeInstanceOf(ForbiddenError);
    expect([e.message, e.code]).toEqual([
      'Image "other:1" is not in allowed_images',
      "IMAGE_NOT_ALLOWED",
    ]);
  });

  it("gives a missing cpu or mem its default and takes the other as given", () => {
    expect(resolveSpec({ image: "echo", cpu: 2 }, limits)).toMatchObject({
      cpuTenths: 20,
      memMB: 128,
    });
    expect(resolveSpec({ image: "echo", mem: 256 }, limits)).toMatchObject({
      cpuTenths: 10,
      memMB: 256,
    });
    expect(resolveSpec({ image: "echo", cpu: 0 }, limits)).toMatchObject({
      cpuTenths: 10,
      memMB: 128,
    });
    expect(resolveSpec({ image: "echo", mem: 0 }, limits)).toMatchObject({
      cpuTenths: 10,
      memMB: 128,
    });
  });

  it("refuses a zero cpu or mem next to a given other one, naming the field", () => {
    const cpu = caught(() =>
      resolveSpec({ image: "echo", cpu: 0, mem: 256 }, limits),
    ) as BadRequestError;
    expect([cpu.message, cpu.field, cpu.code]).toEqual([
      'Field "resource.cpu" must be greater than 0',
      "resource.cpu",
      "BAD_REQUEST",
    ]);
    const mem = caught(() =>
      resolveSpec({ image: "echo", cpu: 1, mem: 0 }, limits),
    ) as BadRequestError;
    expect([mem.message, mem.field]).toEqual([
      'Field "resource.mem" must be a positive whole number of MB',
      "resource.mem",
    ]);
    expect(
      caught(() => resolveSpec({ image: "echo", cpu: 0.04, mem: 256 }, limits)).message,
    ).toMatch(/"resource.cpu" must be greater than 0/);
    expect(caught(() => resolveSpec({ image: "echo", cpu: 1, mem: -5 }, limits)).message).toMatch(
      /"resource.mem"/,
    );
    const tiny = caught(() =>
      resolveSpec({ image: "echo", cpu: 1, mem: MIN_MEM_MB - 1 }, limits),
    ) as BadRequestError;
    expect([tiny.field, tiny.message]).toEqual([
      "resource.mem",
      `Field "resource.mem" must be at least ${MIN_MEM_MB} MB, the least the container engine accepts`,
    ]);
  });

  it("asks for GPUs only with use_gpu, at least one", () => {
    expect(resolveSpec({ image: "echo", useGpu: true }, limits).gpuCount).toBe(1);
    expect(resolveSpec({ image: "echo", useGpu: true, gpuCount: 0 }, limits).gpuCount).toBe(1);
    expect(resolveSpec({ image: "echo", useGpu: true, gpuCount: 2 }, limits).gpuCount).toBe(2);
    expect(resolveSpec({ image: "echo", useGpu: false, gpuCount: 2 }, limits).gpuCount).toBe(0);
    expect(resolveSpec({ image: "echo", gpuCount: 2 }, limits).gpuCount).toBe(0);
  });

  it("runs containers on the engine's default runtime unless microVM is asked for", () => {
    expect(resolveSpec({ image: "echo" }, { ...limits, microVMRuntime: "kata" })).toMatchObject({
      runtimeKind: "container",
      runtime: undefined,
    });
    expect(
      resolveSpec({ image: "echo", runtime: "container" }, { ...limits, microVMRuntime: "kata" }),
    ).toMatchObject({ runtimeKind: "container", runtime: undefined });
    const e = caught(() =>
      resolveSpec({ image: "echo", runtime: "microVM" }, limits),
    ) as BadRequestError;
    expect([e.message, e.field, e.code]).toEqual([
      'Field "runtime" asks for "microVM" but no microVM_runtime is configured on this host',
      "runtime",
      "MICROVM_UNAVAILABLE",
    ]);
  });

  it("takes SGX only where it is enabled", () => {
    expect(resolveSpec({ image: "echo", useSgx: true }, { ...limits, sgxEnabled: true }).sgx).toBe(
      true,
    );
    expect(resolveSpec({ image: "echo" }, { ...limits, sgxEnabled: true }).sgx).toBe(false);
    expect(resolveSpec({ image: "echo", useSgx: false }, limits).sgx).toBe(false);
    const e = caught(() => resolveSpec({ image: "echo", useSgx: true }, limits)) as BadRequestError;
    expect([e.message, e.field, e.code]).toEqual([
      'Field "use_sgx" asks for SGX but SGX is not enabled on this host',
      "use_sgx",
      "SGX_UNAVAILABLE",
    ]);
  });

  it("takes the whole capacity and refuses one step more, with the numbers", () => {
    expect(
      resolveSpec({ image: "echo", cpu: 4, mem: 4096, useGpu: true, gpuCount: 2 }, limits),
    ).toEqual({
      image: "echo:latest",
      runtimeKind: "container",
      runtime: undefined,
      cpuTenths: 40,
      memMB: 4096,
      gpuCount: 2,
      sgx: false,
    });
    const cpu = caught(() => resolveSpec({ image: "echo", cpu: 4.1 }, limits));
    expect([cpu.message, cpu.code]).toEqual([
      'Field "resource.cpu" asks for 4.1 cores but tasks may use at most 4 on this host',
      "EXCEEDS_CAPACITY",
    ]);
    expect(caught(() => resolveSpec({ image: "echo", mem: 4097 }, limits)).message).toBe(
      'Field "resource.mem" asks for 4097 MB but tasks may use at most 4096 MB on this host',
    );
    expect(
      caught(() => resolveSpec({ image: "echo", useGpu: true, gpuCount: 3 }, limits)).message,
    ).toBe('Field "resource.gpu_count" asks for 3 GPUs but this host has 2');
  });
});

describe("isWholeTenths()", () => {
  it("is true for whole tenths of a core, whatever the float error, and false otherwise", () => {
    for (const ok of [0, 0.3, 2, 0.1 + 0.2, 12.7]) expect(isWholeTenths(ok), String(ok)).toBe(true);
    // 1e-10 core is off a whole tenth by exactly the tolerance.
    for (const bad of [0.25, 0.01, 1.05, 3.333, 1e-10])
      expect(isWholeTenths(bad), String(bad)).toBe(false);
  });
});

describe("keys and names", () => {
  const spec = resolveSpec({ image: "echo:1" }, limits);

  it("the key lists every field that makes a task", () => {
    expect(taskKey(spec)).toBe("echo:1|container||10|128|0|");
    expect(
      taskKey({ ...spec, runtimeKind: "microVM", runtime: "kata", gpuCount: 1, sgx: true }),
    ).toBe("echo:1|microVM|kata|10|128|1|sgx");
  });

  it("hashes with 64-bit FNV-1a over UTF-8, as 16 hex digits", () => {
    // Published FNV-1a 64 test vectors, and keys whose hash has a leading zero.
    expect(keyHash("")).toBe("cbf29ce484222325");
    expect(keyHash("a")).toBe("af63dc4c8601ec8c");
    expect(keyHash("foobar")).toBe("85944171f73967e8");
    expect(keyHash("k0")).toBe("08be0e07b562230e");
    expect(keyHash("é")).toBe("0ac21707b7181e01");
  });

  it("names a container after its image, without the digest, at most 40 characters that start alphanumeric", () => {
    const o = { instance: "i", run: "r", serial: 3 };
    const hash = (image: string) => keyHash(taskKey({ ...spec, image })).slice(0, 12);
    const name = (image: string) => containerName({ ...spec, image }, o);
    const digested = `Reg.Example:5000/team/echo:1@sha256:${"a".repeat(64)}`;
    expect(name(digested)).toBe(`meca-i-Reg.Example_5000_team_echo_1-${hash(digested)}-rn3`);
    expect(name("[::1]:5000/echo:1")).toBe(`meca-i-1_5000_echo_1-${hash("[::1]:5000/echo:1")}-rn3`);
    const long = `reg.example/x__${"b".repeat(36)}:1`;
    expect(name(long)).toBe(`meca-i-${"b".repeat(36)}_1-${hash(long)}-rn3`);
    const long2 = `reg.example/${"c".repeat(45)}:1`;
    expect(name(long2)).toBe(`meca-i-${"c".repeat(38)}_1-${hash(long2)}-rn3`);
  });
});

describe("recordableImage()", () => {
  it("keeps a valid image reference and nothing else of a client's id", () => {
    expect(recordableImage("meca-test/echo:1")).toBe("meca-test/echo:1");
    expect(recordableImage("Not An Image!")).toBe("");
    expect(recordableImage(`a/${"b".repeat(600)}:1`)).toBe("");
    // Once resolved (the memo of normalized references), the same answer.
    resolveSpec({ image: "meca-test/echo:2" }, limits);
    expect(recordableImage("meca-test/echo:2")).toBe("meca-test/echo:2");
  });
});

describe("specLabel() and parseSpecLabel(): the spec a launch keeps for adoption", () => {
  const spec = {
    image: "echo:1",
    runtimeKind: "container" as const,
    cpuTenths: 15,
    memMB: 256,
    gpuCount: 0,
    sgx: false,
  };

  it("writes the spec as JSON, the default runtime as an empty string", () => {
    expect(JSON.parse(specLabel(spec))).toEqual({ ...spec, runtime: "" });
    expect(
      JSON.parse(specLabel({ ...spec, runtimeKind: "microVM", runtime: "kata" })),
    ).toMatchObject({ runtimeKind: "microVM", runtime: "kata" });
  });

  it("reads it back as the intent a request for the same task gives", () => {
    expect(parseSpecLabel(specLabel(spec))).toEqual({
      image: "echo:1",
      cpu: 1.5,
      mem: 256,
      useGpu: false,
      gpuCount: 0,
      runtime: "",
      useSgx: false,
    });
    expect(
      parseSpecLabel(
        specLabel({ ...spec, runtimeKind: "microVM", runtime: "kata", gpuCount: 2, sgx: true }),
      ),
    ).toMatchObject({ runtime: "microVM", useGpu: true, gpuCount: 2, useSgx: true });
    expect(parseSpecLabel(specLabel({ ...spec, cpuTenths: 0, memMB: 0 }))).toMatchObject({
      cpu: 0,
      mem: 0,
    });
  });

  it("is undefined for anything that is not one, and never throws", () => {
    const label = (o: Record<string, unknown>) => JSON.stringify({ ...spec, runtime: "", ...o });
    for (const text of [
      undefined,
      "",
      "{",
      "null",
      "5",
      '"echo:1"',
      label({ image: 5 }),
      label({ cpuTenths: 1.5 }),
      label({ cpuTenths: -1 }),
      label({ cpuTenths: "15" }),
      label({ memMB: -256 }),
      label({ memMB: 2.5 }),
      label({ gpuCount: -1 }),
      label({ gpuCount: "1" }),
      label({ runtimeKind: "" }),
      label({ runtimeKind: "vm" }),
      label({ sgx: "false" }),
    ])
      expect(parseSpecLabel(text), String(text)).toBeUndefined();
  });
});
