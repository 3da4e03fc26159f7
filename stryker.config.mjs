// Mutation testing of the engine's core: `npm run test:mutation` (README, "Mutation testing").
// Surviving mutants are killed by a test, or marked equivalent in the source with a
// `// Stryker disable next-line <mutator>: <why>` comment.
/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  testRunner: "vitest",
  vitest: { configFile: "vitest.mutation.config.ts" },
  plugins: ["@stryker-mutator/vitest-runner"],
  mutate: [
    "src/engine/ledger.ts",
    "src/engine/policy.ts",
    "src/engine/task.ts",
    "src/engine/admission.ts",
    "src/engine/task-spec.ts",
    "src/engine/image-ref.ts",
    "src/engine/waits.ts",
    "src/engine/usage.ts",
    "src/engine/in-flight.ts",
  ],
  coverageAnalysis: "perTest",
  reporters: ["clear-text", "progress", "html", "json"],
  htmlReporter: { fileName: "reports/mutation/index.html" },
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  tempDirName: ".stryker-tmp",
  cleanTempDir: "always",
  thresholds: { high: 90, low: 80, break: 90 },
};
