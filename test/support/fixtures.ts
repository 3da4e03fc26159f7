/**
 * Names of the fixture task images that `test/fixtures/build-images.sh` builds
 * (the static C server `test/fixtures/server.c` in five modes, and the hostile
 * tasks of `test/fixtures/hostile.c`) and of the
 * local registry that serves pull tests. The global set-up of the integration
 * project builds them all and starts the registry.
 */

/** Listens, prints the mark, echoes `POST /`; see `taskBody` for the special bodies. */
export const ECHO_IMAGE = "meca-test/echo:1";
/** Prints the mark, then listens only 700 ms later (like a Flask app), then behaves like echo. */
export const READY_LATE_IMAGE = "meca-test/ready-late:1";
/** Prints `starting` (stdout) and `fatal: cannot open model file` (stderr), exits 3, no mark. */
export const CRASH_IMAGE = "meca-test/crash:1";
/** Listens and serves like echo, but never prints the mark. */
export const NEVER_READY_IMAGE = "meca-test/never-ready:1";
/**
 * Prints `sgx-device: yes|no` (does /dev/sgx/enclave exist) and `aesmd: yes|no`
 * (is /var/run/aesmd a folder), then the mark; `GET /ra` answers
 * `ra-report:<32 hex digits>` (fixed per container), `POST /run` answers `sgx:` + body,
 * `POST /` answers 404.
 */
export const SGX_IMAGE = "meca-test/sgx:1";
/** Like echo, but every `POST /` first burns 50 ms of CPU time: a CPU-bound task (replicas bench). */
export const CPU_IMAGE = "meca-test/cpu:1";

/**
 * Tasks built to misbehave (`test/fixtures/hostile.c`), by mode. Each prints the mark once
 * it listens, except `mark-storm` (10000 marks) and `exit-after-mark` (exits at once).
 */
export const HOSTILE = {
  /** Answers "Content-Length: 8 GiB" and streams 'x' until the peer hangs up. */
  stream: "meca-test/hostile-stream:1",
  /** Streams 'x' chunked, announcing no length, up to 8 GiB. */
  streamChunked: "meca-test/hostile-stream-chunked:1",
  /** Answers "ok" while writing 64 KiB lines to stdout without pause. */
  logFlood: "meca-test/hostile-log-flood:1",
  /** Sends headers and 10 of 100 announced bytes, then holds the connection. */
  neverFinish: "meca-test/hostile-never-finish:1",
  /** Reads the request, never answers. */
  noHeaders: "meca-test/hostile-no-headers:1",
  /** Answers bytes that are not HTTP (with a terminal escape), then closes. */
  invalidHttp: "meca-test/hostile-invalid-http:1",
  /** Prints the mark 10000 times, then answers "ok". */
  markStorm: "meca-test/hostile-mark-storm:1",
  /** Forks until the pids limit refuses, kills the children, answers "forked <n>". */
  forkBomb: "meca-test/hostile-fork-bomb:1",
  /** Prints the mark and exits 0. */
  exitAfterMark: "meca-test/hostile-exit-after-mark:1",
} as const;

/** Every image built locally by the fixtures script. */
export const FIXTURE_IMAGES = [
  ECHO_IMAGE,
  READY_LATE_IMAGE,
  CRASH_IMAGE,
  NEVER_READY_IMAGE,
  SGX_IMAGE,
  ...Object.values(HOSTILE),
] as const;

/** Debian's docker-registry, started by the global set-up, on loopback only. */
export const REGISTRY = "127.0.0.1:5055";
/** The echo binary, served only by `REGISTRY`: absent from the local image store after set-up. */
export const PULLED_IMAGE = `${REGISTRY}/meca-test/pulled:1`;

/** The line a task prints on stdout once it can serve. */
export const READY_MARK = "meca-init-done";
/** Exit code and log lines of `CRASH_IMAGE`. */
export const CRASH_EXIT_CODE = 3;
export const CRASH_LOG_LINES = ["starting", "fatal: cannot open model file"] as const;

/** Label for containers a test creates directly; the global teardown removes them. */
export const TEST_LABEL = { "meca.test": "1" } as const;

/** Request bodies with a special meaning to the echo-like images (`POST /`). */
export const taskBody = {
  /** Answers the container's hostname (its short id unless a hostname was set). */
  whoami: "whoami",
  /** Answers `slept:<ms>` after `ms` milliseconds, without blocking other requests. */
  sleep: (ms: number): string => `sleep:${ms}`,
  /** Answers `held:<name>` only once a `release(name)` request arrives: in flight as long as a test wants. */
  hold: (name: string): string => `hold:${name}`,
  /** Answers every request held as `name` and then `released:<count>`. */
  release: (name: string): string => `release:${name}`,
  /** Answers status `n` with the body `failed with <n>`. */
  status: (n: number): string => `status:${n}`,
  /** The process exits with `code` at once, without answering. */
  exit: (code: number): string => `exit:${code}`,
  /** Allocates and touches memory until the memory limit kills it (exit 137 after 8 GiB regardless). */
  oom: "oom",
  /** Burns `ms` of CPU time (blocking the task's loop, like a CPU-bound handler), then answers `spun:<ms>`. */
  spin: (ms: number): string => `spin:${ms}`,
  /** Answers `n` bytes of `x`. */
  big: (n: number): string => `big:${n}`,
  /** Answers the bytes `hex` spells, two hex digits each (up to 256): bytes that need not be UTF-8. */
  bytes: (hex: string): string => `bytes:${hex}`,
  /** Creates `n` empty files in the container's layer (/many), then answers `files:<n>`. */
  files: (n: number): string => `files:${n}`,
} as const;

/**
 * Releases the requests held as `name` on the task at `url` (its 8080, reached directly), polling
 * until one was there to release: a held request may still be on its way in. Fails after 20 s.
 */
export async function releaseHeld(url: string, name: string): Promise<number> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const res = await fetch(`${url}/`, { method: "POST", body: taskBody.release(name) });
    const count = Number(/^released:(\d+)$/.exec(await res.text())?.[1] ?? 0);
    if (count > 0) return count;
    if (Date.now() > deadline)
      throw new Error(`No request held as "${name}" at ${url} within 20 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
