/**
 * A TaskClient that serves requests from FakeBackend containers: their
 * image's `respond` (echo by default). A missing or stopped container gives
 * TaskConnectError, as a refused connection does for real.
 */
import { TaskConnectError } from "../../src/engine/errors.ts";
import type {
  ConnectProbe,
  TaskClient,
  TaskRequest,
  TaskResponse,
} from "../../src/engine/ports.ts";
import type { FakeBackend } from "./fake-backend.ts";

export class FakeTaskClient implements TaskClient {
  /** Every request, in order. */
  readonly sent: TaskRequest[] = [];
  /** Endpoints passed to forget(). */
  readonly forgotten: string[] = [];
  #backend: FakeBackend;

  constructor(backend: FakeBackend) {
    this.#backend = backend;
  }

  async send(req: TaskRequest): Promise<TaskResponse> {
    this.sent.push(req);
    req.signal?.throwIfAborted();
    const url = new URL(req.endpoint + req.path);
    const { container, path } = this.#backend.resolve(url);
    if (container === undefined || !container.running) {
      throw new TaskConnectError("Cannot connect to the task (ECONNREFUSED)", {
        where: url.origin,
      });
    }
    const respond = container.image.respond ?? ((body: string) => ({ status: 200, body }));
    const answer = Promise.resolve(respond(req.body ?? "", { ...req, path })).then((r) =>
      withBytes(req, r),
    );
    if (req.signal === undefined) return answer;
    const signal = req.signal;
    return new Promise<TaskResponse>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      answer.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  }

  forget(endpoint: string): void {
    this.forgotten.push(endpoint);
  }

  async close(): Promise<void> {}
}

/** A ConnectProbe over the fake's containers: a running container at the endpoint accepts. */
export function fakeProbe(backend: FakeBackend): ConnectProbe {
  return async (endpoint) => backend.resolve(new URL(endpoint)).container?.running === true;
}

const utf8 = new TextEncoder();

/** An answer with its bytes counted as a real client counts them: the request's body sent, the answer's received. */
export function withBytes(req: TaskRequest, r: { status: number; body: string }): TaskResponse {
  return {
    ...r,
    sent: req.body === undefined ? 0 : utf8.encode(req.body).length,
    received: utf8.encode(r.body).length,
  };
}
