/** The state of one FakeBackend container and the behaviour of its image. */
import type { TaskRequest, TaskResponse } from "../../src/engine/ports.ts";

/** What a fake image answers: a status and a body. */
export type FakeAnswer = Pick<TaskResponse, "status" | "body">;
import type { ContainerSpec, ContainerState } from "../../src/platform/docker/backend.ts";

/** How a fake image behaves once started. */
export interface FakeImage {
  /**
   * `true` (default): prints `meca-init-done` at once; `"never"`: runs but never prints
   * it (the test may print it later with `backend.log(id, "meca-init-done")`);
   * `{ exitCode, lines }`: prints `lines` (stdout, unless given as `{ stream, line }`) and exits before the mark.
   */
  ready?: true | "never" | { exitCode: number; lines: (string | FakeLogLine)[] };
  /** Answers a request; defaults to echoing the body with 200 (the fake clients count its bytes). */
  respond?: (body: string, req: TaskRequest & { path: string }) => FakeAnswer | Promise<FakeAnswer>;
}

export interface FakeLogLine {
  stream: "stdout" | "stderr";
  line: string;
}

export const DEFAULT_MARK = "meca-init-done";

export class FakeContainer {
  readonly id: string;
  readonly spec: ContainerSpec;
  readonly image: FakeImage;
  status: "created" | "running" | "exited" = "created";
  exitCode = 0;
  oomKilled = false;
  /** Order of its start among the backend's starts (adoption keeps the most recent first). */
  startedAt = 0;
  readonly logs: FakeLogLine[] = [];
  #listeners = new Set<() => void>();

  constructor(id: string, spec: ContainerSpec, image: FakeImage) {
    this.id = id;
    this.spec = spec;
    this.image = image;
  }

  get name(): string {
    return this.spec.name;
  }

  get running(): boolean {
    return this.status === "running";
  }

  state(): ContainerState {
    return {
      id: this.id,
      running: this.running,
      status: this.status,
      exitCode: this.exitCode,
      oomKilled: this.oomKilled,
    };
  }

  print(line: string, stream: "stdout" | "stderr" = "stdout"): void {
    this.logs.push({ stream, line });
    this.changed();
  }

  exit(code: number, opts: { oom?: boolean } = {}): void {
    this.status = "exited";
    this.exitCode = code;
    this.oomKilled = opts.oom === true;
    this.changed();
  }

  /** Wakes everyone waiting on this container (logs, state, removal). */
  changed(): void {
    for (const fn of [...this.#listeners]) fn();
  }

  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  lastLines(n: number): string[] {
    return this.logs.slice(-n).map((l) => l.line);
  }
}

/** A promise with its resolve, for tests that hold a call until they let it go. */
export function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
} {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** `name` → `name:latest`; digests and tags stay as they are. */
export function normaliseRef(ref: string): string {
  if (ref.includes("@")) return ref;
  return ref.lastIndexOf(":") > ref.lastIndexOf("/") ? ref : `${ref}:latest`;
}
