/**
 * Under Deno (`deno task test`), loadNvml binds the stand-in libnvidia-ml.so.1
 * with the real Deno.dlopen; under Node these cases are skipped (the Node
 * path, koffi, is covered by test/platform/nvml.test.ts).
 */
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { loadNvml } from "../../src/platform/nvml.ts";

const underDeno = "Deno" in globalThis;

describe.skipIf(!underDeno)("loadNvml() under Deno, with the real Deno.dlopen", () => {
  it("reads the stand-in's devices and closes", async () => {
    const script = new URL("../fixtures/nvml/build.sh", import.meta.url).pathname;
    const library = execFileSync("sh", [script], { encoding: "utf8" }).trim();
    const probe = await loadNvml({ library });
    try {
      expect(probe.driverVersion()).toBe("550.54.15");
      expect(await probe.sample()).toEqual([
        expect.objectContaining({
          index: 0,
          model: "NVIDIA Fake A100",
          utilizationPercent: 0,
          memoryUsedMB: 100,
          memoryTotalMB: 40960,
        }),
        expect.objectContaining({ index: 1, utilizationPercent: 87, memoryUsedMB: 30000 }),
      ]);
    } finally {
      probe.close();
    }
  });

  it("rejects a missing library with NVML_LOAD_FAILED", async () => {
    await expect(loadNvml({ library: "/nonexistent/libnvidia-ml.so.1" })).rejects.toMatchObject({
      code: "NVML_LOAD_FAILED",
    });
  });
});
