import { CRASH_EXIT_CODE, CRASH_LOG_LINES } from "../support/fixtures.ts";
import { containerBackendContract } from "../contract/container-backend.contract.ts";
import { FakeBackend } from "./fake-backend.ts";
import { FakeTaskClient } from "./fake-task-client.ts";

containerBackendContract("FakeBackend", async () => {
  const backend = new FakeBackend({
    images: {
      "meca-test/echo:1": {},
      "meca-test/crash:1": {
        ready: {
          exitCode: CRASH_EXIT_CODE,
          lines: [
            { stream: "stdout", line: CRASH_LOG_LINES[0] },
            { stream: "stderr", line: CRASH_LOG_LINES[1] },
          ],
        },
      },
      "meca-test/never-ready:1": { ready: "never" },
    },
  });
  return {
    backend,
    client: new FakeTaskClient(backend),
    images: {
      echo: "meca-test/echo:1",
      crash: "meca-test/crash:1",
      neverReady: "meca-test/never-ready:1",
      missing: "127.0.0.1:5055/meca-test/missing:1",
    },
    cleanup: () => backend.close(),
  };
});
