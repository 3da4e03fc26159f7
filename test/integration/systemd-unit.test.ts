/**
 * deploy/meca-executor.service, the unit for the bare executable: `systemd-analyze verify` finds
 * nothing to say (it warns, and still exits 0, on a bad value), and the unit starts after docker,
 * restarts on failure and raises the open-files limit.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const UNIT = "deploy/meca-executor.service";

describe(UNIT, () => {
  it("passes systemd-analyze verify without a warning", () => {
    const dir = mkdtempSync(join(tmpdir(), "meca-unit-"));
    try {
      // verify checks that ExecStart's program exists: stand an executable in for the installed one.
      const unit = join(dir, "meca-executor.service");
      writeFileSync(
        unit,
        readFileSync(UNIT, "utf8").replaceAll("/usr/local/bin/meca-executor", "/bin/true"),
      );
      const r = spawnSync("systemd-analyze", ["verify", unit], { encoding: "utf8" });
      expect(r.error, "systemd-analyze is missing: apt-get install -y systemd").toBeUndefined();
      expect(`${r.stdout}${r.stderr}`).toBe("");
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("starts after docker, restarts on failure and sets an open-files limit", () => {
    const text = readFileSync(UNIT, "utf8");
    expect(text).toMatch(/^After=.*\bdocker\.service\b/m);
    expect(text).toMatch(/^Restart=on-failure$/m);
    expect(text).toMatch(/^LimitNOFILE=\d+$/m);
    expect(text).toMatch(/^ExecStart=\/usr\/local\/bin\/meca-executor serve --config /m);
  });
});
