/**
 * A newcomer without Docker: `npm test` runs every unit test first (its own vitest run), and the
 * integration project then fails with one message that names the install command, without a
 * second stack trace from the teardown. Seen here by running the integration project against an
 * engine that is not there and a dockerd that is not installed.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { INSTALL_HINT } from "./support/docker-env.ts";

describe("npm test on a machine without a Docker engine", () => {
  it("runs the unit project on its own before the integration project", () => {
    const script = JSON.parse(readFileSync("package.json", "utf8")).scripts.test as string;
    expect(script.indexOf("--project unit")).toBeGreaterThanOrEqual(0);
    expect(script.indexOf("--project unit")).toBeLessThan(script.indexOf("--project integration"));
    expect(script).not.toMatch(/--project unit\s*&&/); // a failed unit test must not hide the integration run
  });

  it("says in one line that the integration tests need an engine and how to get one, and exits 1, before the integration project starts", () => {
    const script = JSON.parse(readFileSync("package.json", "utf8")).scripts.test as string;
    expect(script).toMatch(
      /tsx test\/support\/need-engine\.ts && vitest run --project integration/,
    );
    const r = spawnSync("npx", ["tsx", "test/support/need-engine.ts"], {
      encoding: "utf8",
      env: {
        ...process.env,
        DOCKER_HOST: "unix:///nonexistent/meca-test-docker.sock",
        MECA_TEST_DOCKERD: "/nonexistent/dockerd",
      },
      timeout: 60_000,
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("the integration tests need a Docker engine");
    expect(lines[0]).toContain("dockerd is not installed");
    expect(lines[0]).toContain(INSTALL_HINT);
    expect(r.stderr).not.toMatch(/No test files found|Unhandled Error|\n\s+at /);
  });

  it("fails the integration project with one message naming the install command, and no teardown error", () => {
    const r = spawnSync(
      "npx",
      ["vitest", "run", "--project", "integration", "test/integration/systemd-unit.test.ts"],
      {
        encoding: "utf8",
        env: {
          ...process.env,
          DOCKER_HOST: "unix:///nonexistent/meca-test-docker.sock",
          MECA_TEST_DOCKERD: "/nonexistent/dockerd",
          CI: "true",
        },
        timeout: 120_000,
      },
    );
    const out = `${r.stdout}${r.stderr}`;
    expect(r.status).toBe(1);
    expect(out.split(INSTALL_HINT).length - 1).toBe(1);
    expect(out).toContain(
      "The integration tests need a Docker engine. Cannot start the Docker engine: dockerd is not installed",
    );
    expect(out).not.toMatch(/\n\s+at |❯/); // no stack trace
    expect(out).not.toContain("removeTestContainers");
  });
});
