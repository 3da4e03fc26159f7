import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isMainThread } from "node:worker_threads";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type * as Koffi from "koffi";
import type { Logger } from "../../src/engine/ports.ts";
import type { DenoFfi } from "../../src/platform/_nvml-deno.ts";
import { loadNvml, NvmlError, type NvmlGpuProbe } from "../../src/platform/nvml.ts";

// The stand-in library reads FAKE_NVML_STATE and FAKE_NVML_FAIL_INIT with getenv() on
// every call; setting process.env reaches it because vitest runs files in forked processes.
const ENV_KEYS = ["FAKE_NVML_STATE", "FAKE_NVML_FAIL_INIT"] as const;

let library: string;
let dir: string;
const probes: NvmlGpuProbe[] = [];

beforeAll(() => {
  if (!isMainThread)
    throw new Error(
      'These tests need vitest\'s "forks" pool: in a worker thread process.env never reaches getenv()',
    );
  const script = new URL("../fixtures/nvml/build.sh", import.meta.url).pathname;
  library = execFileSync("sh", [script], { encoding: "utf8" }).trim();
  dir = mkdtempSync(join(tmpdir(), "fake-nvml-"));
});

afterEach(() => {
  for (const probe of probes.splice(0)) probe.close();
  for (const key of ENV_KEYS) delete process.env[key];
});

afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

async function open(logger?: Logger): Promise<NvmlGpuProbe> {
  const probe = await loadNvml({ library, logger });
  probes.push(probe);
  return probe;
}

/** Writes the state file atomically, as a reader may be sampling it. */
function writeState(lines: string[]): void {
  const path = join(dir, "state");
  writeFileSync(`${path}.tmp`, `${lines.join("\n")}\n`);
  renameSync(`${path}.tmp`, path);
  process.env.FAKE_NVML_STATE = path;
}

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  const logger = {
    warnings,
    debug() {},
    info() {},
    warn: (msg: string) => void warnings.push(msg),
    error() {},
    child: () => logger,
  };
  return logger;
}

describe("loadNvml()", () => {
  it("reads the stand-in's two default devices: one idle, one busy", async () => {
    const probe = await open();
    expect(await probe.sample()).toEqual([
      {
        index: 0,
        uuid: "GPU-fa4e0000-0000-4000-8000-000000000000",
        model: "NVIDIA Fake A100",
        utilizationPercent: 0,
        memoryUsedMB: 100,
        memoryTotalMB: 40960,
      },
      {
        index: 1,
        uuid: "GPU-fa4e0000-0000-4000-8000-000000000001",
        model: "NVIDIA Fake A100",
        utilizationPercent: 87,
        memoryUsedMB: 30000,
        memoryTotalMB: 40960,
      },
    ]);
  });

  it("driverVersion() returns the driver's version string", async () => {
    const probe = await open();
    expect(probe.driverVersion()).toBe("550.54.15");
  });

  it("sample() sees utilisation and memory change between calls", async () => {
    writeState(["0 10 81920 NVIDIA Fake H100 80GB HBM3"]);
    const probe = await open();
    expect(await probe.sample()).toMatchObject([
      {
        index: 0,
        model: "NVIDIA Fake H100 80GB HBM3",
        utilizationPercent: 0,
        memoryUsedMB: 10,
        memoryTotalMB: 81920,
      },
    ]);

    writeState([
      "# busy now, and a second card appeared",
      "95 70000 81920 NVIDIA Fake H100 80GB HBM3",
      "",
      "3 0 16384 Tesla T4",
    ]);
    expect(await probe.sample()).toMatchObject([
      { index: 0, utilizationPercent: 95, memoryUsedMB: 70000 },
      { index: 1, model: "Tesla T4", utilizationPercent: 3, memoryUsedMB: 0, memoryTotalMB: 16384 },
    ]);
  });

  it("sample() returns no devices when NVML counts none", async () => {
    writeState([]);
    expect(await (await open()).sample()).toEqual([]);
  });

  it("rejects when nvmlInit_v2 fails, naming the call, NVML's reason and the library", async () => {
    process.env.FAKE_NVML_FAIL_INIT = "1";
    const error = await loadNvml({ library }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NvmlError);
    expect(error).toMatchObject({
      message: `NVML call "nvmlInit_v2" failed: Driver Not Loaded (library "${library}")`,
      code: "NVML_CALL_FAILED",
      kind: "unavailable",
      call: "nvmlInit_v2",
      returnCode: 9,
    });
  });

  it("rejects for a missing library, naming its path and dlopen's reason", async () => {
    const missing = join(dir, "no-such-dir", "libnvidia-ml.so.1");
    const error = await loadNvml({ library: missing }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NvmlError);
    expect(error).toMatchObject({ code: "NVML_LOAD_FAILED" });
    expect((error as Error).message).toContain(`Cannot load NVML library "${missing}": `);
    expect((error as Error).message).toMatch(/No such file or directory/);
    expect((error as Error).cause).toBeInstanceOf(Error);
  });
});

describe("NvmlGpuProbe", () => {
  it("sample() rejects with the failed call and nvmlErrorString's text", async () => {
    const probe = await open();
    writeState(["0 100 40960 NVIDIA Fake A100", "fail nvmlDeviceGetCount_v2 9"]);
    await expect(probe.sample()).rejects.toMatchObject({
      message: 'NVML call "nvmlDeviceGetCount_v2" failed: Driver Not Loaded',
      returnCode: 9,
    });

    writeState(["0 100 40960 NVIDIA Fake A100", "fail nvmlDeviceGetMemoryInfo 15"]);
    await expect(probe.sample()).rejects.toThrow(
      'NVML call "nvmlDeviceGetMemoryInfo" failed: GPU is lost',
    );
  });

  it("sample() counts a device without utilisation support as 0 % and warns once", async () => {
    const logger = recordingLogger();
    const probe = await open(logger);
    writeState([
      "50 100 40960 NVIDIA Fake A100 MIG 1g.5gb",
      "fail nvmlDeviceGetUtilizationRates 3",
    ]);
    expect(await probe.sample()).toMatchObject([{ utilizationPercent: 0, memoryUsedMB: 100 }]);
    await probe.sample();
    expect(logger.warnings.filter((w) => w.includes("utilisation"))).toHaveLength(1);
  });

  it("close() shuts NVML down once, however often it is called", async () => {
    const first = await open();
    const second = await open();
    first.close();
    first.close();
    // NVML counts inits: a second nvmlShutdown would leave `second` uninitialised.
    expect(await second.sample()).toHaveLength(2);
    await expect(first.sample()).rejects.toThrow(
      'Cannot call NVML "nvmlDeviceGetCount_v2": the probe is closed',
    );
  });
});

/**
 * Deno.dlopen's contract, played by koffi: pointers are opaque objects, "buffer"
 * parameters take typed arrays. Enough to run the Deno adapter's marshalling here.
 */
function denoOverKoffi(): DenoFfi {
  const koffi = createRequire(import.meta.url)("koffi") as typeof Koffi;
  const ctype = {
    i32: "int",
    u32: "unsigned int",
    buffer: "void *",
    pointer: "uintptr_t",
  } as const;
  return {
    dlopen(path, symbols) {
      const lib = koffi.load(path);
      const fns: Record<string, (...args: unknown[]) => unknown> = {};
      for (const [name, def] of Object.entries(symbols)) {
        const fn = lib.func(
          name,
          def.result === "pointer" ? "void *" : ctype[def.result],
          def.parameters.map((p) => ctype[p]),
        );
        fns[name] = (...args) =>
          fn(
            ...args.map((a, i) =>
              def.parameters[i] === "pointer" ? (a as { address: bigint }).address : a,
            ),
          );
      }
      return { symbols: fns, close: () => lib.unload() };
    },
    UnsafePointer: { create: (address) => (address === 0n ? null : { address }) },
    UnsafePointerView: { getCString: (pointer) => koffi.decode(pointer, "char", -1) as string },
  };
}

describe("loadNvml() under Deno", () => {
  it("binds NVML through Deno.dlopen when globalThis.Deno exists", async () => {
    const global = globalThis as { Deno?: DenoFfi };
    global.Deno = denoOverKoffi();
    let probe: NvmlGpuProbe;
    try {
      probe = await open();
    } finally {
      delete global.Deno;
    }
    expect(probe.driverVersion()).toBe("550.54.15");
    expect(await probe.sample()).toEqual([
      expect.objectContaining({
        index: 0,
        model: "NVIDIA Fake A100",
        utilizationPercent: 0,
        memoryUsedMB: 100,
        memoryTotalMB: 40960,
      }),
      expect.objectContaining({
        index: 1,
        uuid: "GPU-fa4e0000-0000-4000-8000-000000000001",
        utilizationPercent: 87,
        memoryUsedMB: 30000,
      }),
    ]);
    writeState(["fail nvmlDeviceGetCount_v2 9"]);
    await expect(probe.sample()).rejects.toThrow(
      'NVML call "nvmlDeviceGetCount_v2" failed: Driver Not Loaded',
    );
  });
});

describe("src/platform/nvml.ts", () => {
  it("imports koffi only lazily, so bundles and Deno do not load it", () => {
    for (const file of ["nvml.ts", "_nvml-koffi.ts", "_nvml-deno.ts", "_nvml-symbols.ts"]) {
      const source = readFileSync(new URL(`../../src/platform/${file}`, import.meta.url), "utf8");
      expect(source, file).not.toMatch(/^import (?!type )[^;]*from "koffi"/m);
    }
  });
});
