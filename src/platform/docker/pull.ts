/**
 * Image pulls: reference parsing, reading Docker's JSON-lines progress
 * stream, and turning its failures into the engine's errors.
 */
import { ExecutorError, ImageNotFoundError, TaskStartError } from "../../engine/errors.ts";
import { DockerApiError } from "./docker-api.ts";
import { jsonLines } from "./json-lines.ts";
import type { ByteSource } from "./log-demux.ts";

/** `registry:5000/a/b:tag@sha256:…` → fromImage `registry:5000/a/b`, tag `tag` or the digest. */
export function splitImageRef(ref: string): { fromImage: string; tag: string } {
  const at = ref.indexOf("@");
  if (at >= 0) return { fromImage: stripTag(ref.slice(0, at)), tag: ref.slice(at + 1) };
  const slash = ref.lastIndexOf("/");
  const colon = ref.lastIndexOf(":");
  // Without a tag Docker would pull every tag of the repository: ask for latest.
  if (colon <= slash) return { fromImage: ref, tag: "latest" };
  return { fromImage: ref.slice(0, colon), tag: ref.slice(colon + 1) };
}

function stripTag(name: string): string {
  const slash = name.lastIndexOf("/");
  const colon = name.lastIndexOf(":");
  return colon > slash ? name.slice(0, colon) : name;
}

/** Messages that mean "there is no such image to be had". */
const NOT_FOUND =
  /not found|manifest unknown|repository does not exist|no such image|connection refused|no such host|invalid reference format|name unknown|does not exist/i;

/** Maps a pull failure (HTTP status or an `error` line of the stream) to the engine's errors. */
export function pullError(ref: string, err: unknown): ExecutorError {
  if (err instanceof ExecutorError) return err;
  const reason = err instanceof DockerApiError ? err.reason : err instanceof Error ? err.message : String(err);
  const status = err instanceof DockerApiError ? err.status : undefined;
  if (status === 404 || status === 400 || NOT_FOUND.test(reason)) {
    return new ImageNotFoundError(ref, reason, { cause: err });
  }
  return new TaskStartError(`Cannot pull image "${ref}": ${reason}`, { cause: err, code: "IMAGE_PULL_FAILED" });
}

interface PullMessage {
  status?: string;
  id?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}

/** A failure reported inside the pull stream (the HTTP status was already 200). */
export class PullStreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PullStreamError";
  }
}

/**
 * Reads the progress stream to its end. Throws PullStreamError for an
 * `error` line. Byte-progress lines ("Downloading", "Extracting") reach
 * `onProgress` at most once per `throttleMs`; every other line passes.
 */
export async function readPullStream(
  source: ByteSource,
  opts: { onProgress?: (line: string) => void; throttleMs?: number; now?: () => number } = {},
): Promise<void> {
  const throttleMs = opts.throttleMs ?? 1000;
  const now = opts.now ?? Date.now;
  let lastProgressAt = -Infinity;
  for await (const value of jsonLines(source)) {
    const msg = value as PullMessage;
    const error = msg.errorDetail?.message ?? msg.error;
    if (error !== undefined) throw new PullStreamError(error);
    if (opts.onProgress === undefined || msg.status === undefined) continue;
    const isByteProgress = msg.progressDetail?.total !== undefined || msg.progress !== undefined;
    if (isByteProgress) {
      const t = now();
      if (t - lastProgressAt < throttleMs) continue;
      lastProgressAt = t;
    }
    opts.onProgress(formatProgress(msg));
  }
}

/** "3f4ca61aafcd: Downloading 1.2 MB / 5.0 MB" or "Digest: sha256:…". */
export function formatProgress(msg: PullMessage): string {
  const head = msg.id !== undefined && msg.id !== "" ? `${msg.id}: ${msg.status}` : (msg.status ?? "");
  const current = msg.progressDetail?.current;
  const total = msg.progressDetail?.total;
  if (current !== undefined && total !== undefined && total > 0) return `${head} ${formatMB(current)} / ${formatMB(total)}`;
  return head;
}

function formatMB(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}
