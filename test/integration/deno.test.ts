/**
 * The Deno side on the real engine: runs test/deno/real-engine.test.ts under
 * Deno (the ContainerBackend contract over Deno's fetch transport, and the
 * executor served by Deno.serve), after this project's set-up has built the
 * fixtures and started the registry.
 */
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";

describe("under Deno on the real engine", () => {
  it("the backend contract passes over Deno's transport, and the executor serves through Deno.serve", async () => {
    const child = spawn(
      "npx",
      [
        "deno",
        "run",
        "-A",
        "npm:vitest",
        "run",
        "--project",
        "unit",
        "--reporter",
        "verbose",
        "test/deno/real-engine.test.ts",
      ],
      {
        env: { ...process.env, MECA_DENO_REAL_ENGINE: "1", NO_COLOR: "1", FORCE_COLOR: "0" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    expect(code, out.slice(-4000)).toBe(0);
    // Every case ran (none skipped): the contract's and the harness's.
    expect(out).toMatch(/Tests\s+\d+ passed \(\d+\)/);
    expect(out).not.toMatch(/skipped/);
    expect(out).toContain("ContainerBackend contract: DockerBackend over Deno's fetch");
    expect(out).toContain("TaskRuntime contract: DockerTasks over Deno's fetch");
    expect(out).toContain("served by Deno.serve");
  }, 300_000);
});
