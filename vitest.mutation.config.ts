import { BaseSequencer, type TestSpecification } from "vitest/node";
import { defineConfig } from "vitest/config";

/** Property-based and long scenario files: the slowest, so they run last. */
const SLOW = /\.property\.test\.ts$|\/ghosts\.test\.ts$/;

/**
 * Vitest runs the longest files first; Stryker stops a mutant's run at its first failing test,
 * so the fast focused tests go first and the property tests (seconds each) only run for the
 * mutants the others let through. Within each group the usual order holds (last failed first).
 */
class FastFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    return [
      ...sorted.filter((f) => !SLOW.test(f.moduleId)),
      ...sorted.filter((f) => SLOW.test(f.moduleId)),
    ];
  }
}

// The tests Stryker runs against each mutant of the engine's core (stryker.config.mjs):
// the unit tests that reach it (engine, http over the fake executor, config, the fakes'
// contract). No Docker, no sockets of the platform tests, no Deno-only cases.
export default defineConfig({
  test: {
    include: [
      "test/engine/**/*.test.ts",
      "test/http/**/*.test.ts",
      "test/fakes/**/*.test.ts",
      "test/config.test.ts",
    ],
    testTimeout: 20_000,
    setupFiles: ["test/support/mutation-setup.ts"],
    sequence: { sequencer: FastFirst },
  },
});
