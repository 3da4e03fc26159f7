import { defineConfig } from "vitest/config";

// The tests Stryker runs against each mutant of the engine's core (stryker.config.mjs):
// the unit tests that reach it (engine, http over the fake executor, config, the fakes'
// contract). No Docker, no sockets of the platform tests, no Deno-only cases.
export default defineConfig({
  test: {
    include: ["test/engine/**/*.test.ts", "test/http/**/*.test.ts", "test/fakes/**/*.test.ts", "test/config.test.ts"],
    testTimeout: 20_000,
    setupFiles: ["test/support/mutation-setup.ts"],
  },
});
