import { taskRuntimeContract } from "../contract/task-runtime.contract.ts";
import { CRASH_EXIT_CODE, CRASH_LOG_LINES } from "../support/fixtures.ts";
import { FakeTaskEngine, FakeTasks } from "./fake-tasks.ts";

taskRuntimeContract("FakeTasks", async () => {
  const engine = new FakeTaskEngine({
    "echo:1": {},
    "crash:1": { ready: { exitCode: CRASH_EXIT_CODE, lines: [...CRASH_LOG_LINES] } },
    "never:1": { ready: "never" },
  });
  return {
    runtime: () => new FakeTasks(engine),
    client: engine.client(),
    images: { echo: "echo:1", crash: "crash:1", neverReady: "never:1", missing: "missing:1" },
    kill: async (id) => engine.kill(id, 137),
    unreachable: () => new FakeTasks(engine, { unreachable: true }),
    cleanup: async () => {},
  };
});
