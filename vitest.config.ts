import { defineConfig } from "vitest/config";

// Two projects: `unit` (engine with in-memory ports, http through app.request)
// and `integration` (a real Docker engine, started by the global set-up).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/**/*.test.ts"],
          exclude: ["test/integration/**", "node_modules/**"],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/support/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          // Files share one Docker engine; run them one after another so that
          // resource-hungry cases do not starve each other on 2 cores.
          fileParallelism: false,
        },
      },
    ],
  },
});
