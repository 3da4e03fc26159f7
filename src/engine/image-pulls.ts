/**
 * Making sure a task's image is on the engine before anything is reserved for it: one pull per
 * image whoever waits on it, bounded in all (`pull_timeout`) and without progress
 * (`pull_stall_timeout`) on the engine's Clock, cancelled (the runtime's signal) when a bound ends
 * it, and visible while it runs (GET /tasks, /ui). `pull_policy` says when to pull: `missing` (an
 * absent image), `always` (every cold start a request causes), `never` (MECA builds task images
 * on the host: an absent image is answered at once, no registry is contacted).
 * See docs/architecture.md, "Images".
 */
import {
  ExecutorError,
  ImageNotPresentError,
  ImagePullFailedError,
  TaskStartError,
} from "./errors.ts";
import type { EngineMetrics } from "./metrics.ts";
import type { Clock, Logger, PullProgress, TaskRuntime } from "./ports.ts";
import type { PullPolicy } from "./settings.ts";
import { raceAbort } from "./waits.ts";

export interface ImagePullsDeps {
  images: Pick<TaskRuntime, "hasImage" | "pullImage">;
  clock: Clock;
  logger: Logger;
  settings: () => { pullPolicy: PullPolicy; pullTimeoutMs: number; pullStallTimeoutMs: number };
  metrics?: EngineMetrics;
}

/** A pull under way, as GET /tasks shows it. */
export interface PullInfo {
  image: string;
  /** Milliseconds since the epoch when it began. */
  started: number;
  layers: number;
  layers_done: number;
  bytes_done: number;
  bytes_total: number;
  /** Requests waiting on it now. */
  waiting: number;
}

interface Pull {
  info: PullInfo;
  done: Promise<void>;
}

/** Images remembered as present at most; past it the memory starts again (a host runs few images). */
const KNOWN_MAX = 1024;

export class ImagePulls {
  #d: ImagePullsDeps;
  #log: Logger;
  #pulls = new Map<string, Pull>();
  /** Images the engine had at the last look (or that a pull brought): a request for one needs no engine call. */
  #known = new Set<string>();

  constructor(deps: ImagePullsDeps) {
    this.#d = deps;
    this.#log = deps.logger.child({ component: "pull" });
  }

  /**
   * Whether a request for `image` can go straight to admission: it was on the engine at the last
   * look and the policy does not pull at every cold start. No engine call, no await: the warm and
   * the usual cold path keep their timing.
   */
  ready(image: string): boolean {
    return this.#d.settings().pullPolicy !== "always" && this.#known.has(image);
  }

  /** The pulls under way. */
  list(): PullInfo[] {
    return [...this.#pulls.values()].map((p) => ({ ...p.info }));
  }

  /**
   * Resolves once `image` is on the engine, under the pull policy; `always: true` pulls even when it
   * is, under `pull_policy: always` (for the cold start of a request). A waiter that gives up
   * (`signal`) stops waiting; the pull goes on for the others, within its bounds.
   */
  async ensure(
    image: string,
    signal: AbortSignal | undefined,
    opts: { always?: boolean } = {},
  ): Promise<void> {
    const policy = this.#d.settings().pullPolicy;
    let pull = this.#pulls.get(image);
    if (pull === undefined) {
      const wanted = policy === "always" && opts.always === true;
      if (!wanted && (await this.#present(image))) return;
      if (policy === "never") throw new ImageNotPresentError(image);
      // Another waiter may have started it while this one asked the engine.
      pull = this.#pulls.get(image) ?? this.#start(image);
    }
    const info = pull.info;
    info.waiting++;
    try {
      await raceAbort(pull.done, signal);
    } finally {
      info.waiting--;
    }
  }

  /** Whether the engine has `image`; a failure that is not one of the family is a failed start, as in TaskPool.launch. */
  async #present(image: string): Promise<boolean> {
    try {
      const present = await this.#d.images.hasImage(image);
      if (present) this.#remember(image);
      else this.#known.delete(image);
      return present;
    } catch (e) {
      throw e instanceof ExecutorError
        ? e
        : new TaskStartError(`Cannot start task "${image}": ${(e as Error).message}`, { cause: e });
    }
  }

  #remember(image: string): void {
    // Stryker disable next-line ConditionalExpression,EqualityOperator: the bound only caps the memory; clearing it at any size gives the same answers
    if (this.#known.size >= KNOWN_MAX) this.#known.clear();
    this.#known.add(image);
  }

  #start(image: string): Pull {
    const s = this.#d.settings();
    const clock = this.#d.clock;
    const info: PullInfo = {
      image,
      started: clock.now(),
      layers: 0,
      layers_done: 0,
      bytes_done: 0,
      bytes_total: 0,
      waiting: 0,
    };
    const ac = new AbortController();
    let cancelStall = (): void => {};
    const stall = () => {
      cancelStall();
      cancelStall = clock.setTimer(s.pullStallTimeoutMs, () =>
        ac.abort(
          new ImagePullFailedError(
            image,
            `no progress for ${s.pullStallTimeoutMs / 1000} s (pull_stall_timeout)`,
          ),
        ),
      );
    };
    const cancelTotal = clock.setTimer(s.pullTimeoutMs, () =>
      ac.abort(
        new ImagePullFailedError(
          image,
          `not done within pull_timeout (${s.pullTimeoutMs / 1000} s)`,
        ),
      ),
    );
    stall();
    this.#log.info("Pulling image", { image });
    this.#d.metrics?.pulls.inc();
    const onProgress = (p: PullProgress) => {
      stall();
      info.layers = p.layers;
      info.layers_done = p.layersDone;
      info.bytes_done = p.bytesDone;
      info.bytes_total = p.bytesTotal;
      if (p.line !== undefined) this.#log.info("Pull progress", { image, progress: p.line });
    };
    const done = (async () => {
      try {
        await this.#d.images.pullImage(image, { onProgress, signal: ac.signal });
        this.#remember(image);
        this.#log.info("Pulled image", { image, ms: clock.now() - info.started });
      } catch (e) {
        // A bound ended it: the engine's pull was cancelled with the signal, and every waiter is told which bound.
        const error: unknown = ac.signal.aborted
          ? ac.signal.reason
          : e instanceof ExecutorError
            ? e
            : new ImagePullFailedError(image, (e as Error).message, { cause: e });
        this.#log.warn("Cannot pull image", { image, error: (error as Error).message });
        throw error;
      } finally {
        cancelTotal();
        cancelStall();
        this.#pulls.delete(image);
      }
    })();
    // A pull nobody waits on any more still ends in a handled promise.
    done.catch(() => {});
    const pull = { info, done };
    this.#pulls.set(image, pull);
    return pull;
  }
}
