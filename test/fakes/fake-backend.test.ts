import { TaskFailedError } from "../../src/engine/errors.ts";
import type { TaskRequest } from "../../src/engine/ports.ts";
import { CRASH_EXIT_CODE, CRASH_LOG_LINES, taskBody } from "../support/fixtures.ts";
import { containerBackendContract } from "../contract/container-backend.contract.ts";
import { FakeBackend, type FakeImage } from "./fake-backend.ts";
import { FakeTaskClient } from "./fake-task-client.ts";

const PULLABLE = "127.0.0.1:5055/meca-test/pulled:1";

containerBackendContract("FakeBackend", async () => {
  const backend = new FakeBackend({ pullable: { [PULLABLE]: {} } });
  /** The echo fixture's special bodies: exit under the request, or outgrow the memory limit. */
  const echo: FakeImage = {
    respond: (body: string, req: TaskRequest) => {
      const id = new URL(req.endpoint).pathname.split("/")[1]!;
      if (body === taskBody.oom) backend.kill(id, { oom: true });
      else if (body.startsWith("exit:"))
        backend.kill(id, { exitCode: Number(body.slice("exit:".length)) });
      else return { status: 200, body };
      throw new TaskFailedError(
        `Request to the task at "${req.endpoint}" failed: other side closed`,
      );
    },
  };
  backend
    .addImage("meca-test/echo:1", echo)
    .addImage("meca-test/crash:1", {
      ready: {
        exitCode: CRASH_EXIT_CODE,
        lines: [
          { stream: "stdout", line: CRASH_LOG_LINES[0] },
          { stream: "stderr", line: CRASH_LOG_LINES[1] },
        ],
      },
    })
    .addImage("meca-test/never-ready:1", { ready: "never" });
  return {
    backend,
    client: new FakeTaskClient(backend),
    images: {
      echo: "meca-test/echo:1",
      crash: "meca-test/crash:1",
      neverReady: "meca-test/never-ready:1",
      missing: "127.0.0.1:5055/meca-test/missing:1",
      pullable: PULLABLE,
    },
    unreachable: async () => {
      const down = new FakeBackend();
      down.setUnavailable(true);
      return down;
    },
    kill: async (id) => backend.kill(id),
    removeImage: async (ref) => void backend.removeImage(ref),
    controlled: async () => {
      const other = new FakeBackend();
      return {
        backend: other,
        endStreams: () => other.endEvents(),
        goAway: async () => other.setUnavailable(true),
        cleanup: () => other.close(),
      };
    },
    cleanup: () => backend.close(),
  };
});
