/**
 * What the host's page costs an executor: idle RSS of the built executable that nobody looks at,
 * against the same executable after the page was loaded once (with one round of its reads), both
 * measured the same time after start, three starts each, interleaved.
 *
 *   npm run build && npm run bench:ui
 */
import { writeFileSync } from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ExecutorProcess, sleep } from "./lib/executor-process.ts";
import { median } from "./lib/stats.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const work = mkdtempSync(join(tmpdir(), "meca-bench-ui-"));
const config = join(work, "ui.yaml");
writeFileSync(config, "instance: bench-ui\n");
const without: number[] = [];
const withPage: number[] = [];
try {
  for (let i = 0; i < 3; i++) {
    for (const look of [false, true]) {
      const p = await ExecutorProcess.start({
        target: "bin",
        root: ROOT,
        config,
        file: join(ROOT, "dist/meca-executor"),
      });
      try {
        await sleep(2_000);
        if (look)
          for (const path of ["/ui", "/stats", "/tasks", "/requests"])
            await (await fetch(p.origin + path)).text();
        await sleep(10_000);
        (look ? withPage : without).push(p.rssMB());
      } finally {
        await p.stop();
      }
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
const f = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(", ");
console.log(
  `idle RSS 12 s after start, the binary (MB): nobody looked ${median(without).toFixed(1)} (${f(without)}); the page loaded once ${median(withPage).toFixed(1)} (${f(withPage)}); difference ${(median(withPage) - median(without)).toFixed(1)} MB`,
);
