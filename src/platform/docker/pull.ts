/**
 * Image pulls: reference parsing, reading Docker's JSON-lines progress
 * stream, and turning its failures into the engine's errors.
 */
import { ExecutorError, ImageNotFoundError, ImagePullFailedError } from "../../engine/errors.ts";
import type { PullProgress } from "../../engine/ports.ts";
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

/** Messages that mean the registry refused the credentials, or wanted some and got none. */
const AUTH_REFUSED =
  /no basic auth credentials|unauthorized|authentication required|incorrect username or password|denied: requested access/i;

/** Maps a pull failure (HTTP status or an `error` line of the stream) to the engine's errors. */
export function pullError(ref: string, err: unknown): ExecutorError {
  if (err instanceof ExecutorError) return err;
  const reason =
    err instanceof DockerApiError ? err.reason : err instanceof Error ? err.message : String(err);
  const status = err instanceof DockerApiError ? err.status : undefined;
  if (AUTH_REFUSED.test(reason) && !/repository does not exist/i.test(reason)) {
    return new ImagePullFailedError(
      ref,
      `the registry refused authentication (credentials come from the Docker client's config.json; see docs/configuration.md, "Images"): ${reason}`,
      { cause: err },
    );
  }
  if (status === 404 || status === 400 || NOT_FOUND.test(reason)) {
    return new ImageNotFoundError(ref, reason, { cause: err });
  }
  return new ImagePullFailedError(ref, reason, { cause: err });
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

/** Statuses of one layer, by what they say of it. */
const LAYER_DONE = new Set(["Pull complete", "Already exists"]);
const LAYER_STATUS = new Set([
  "Pulling fs layer",
  "Waiting",
  "Downloading",
  "Verifying Checksum",
  "Download complete",
  "Extracting",
  ...LAYER_DONE,
]);

/**
 * Reads the progress stream to its end. Throws PullStreamError for an `error` line. Every message
 * reaches `onProgress` with the layers and bytes so far; its readable `line` is left out for
 * byte-progress messages ("Downloading", "Extracting") that come sooner than `throttleMs` after
 * the last line.
 */
export async function readPullStream(
  source: ByteSource,
  opts: { onProgress?: (p: PullProgress) => void; throttleMs?: number; now?: () => number } = {},
): Promise<void> {
  const throttleMs = opts.throttleMs ?? 1000;
  const now = opts.now ?? Date.now;
  let lastLineAt = -Infinity;
  const layers = new Map<string, { current: number; total: number; done: boolean }>();
  for await (const value of jsonLines(source)) {
    const msg = value as PullMessage;
    const error = msg.errorDetail?.message ?? msg.error;
    if (error !== undefined) throw new PullStreamError(error);
    if (opts.onProgress === undefined || msg.status === undefined) continue;
    if (msg.id !== undefined && LAYER_STATUS.has(msg.status)) {
      const layer = layers.get(msg.id) ?? { current: 0, total: 0, done: false };
      layers.set(msg.id, layer);
      if (msg.status === "Downloading") {
        layer.current = msg.progressDetail?.current ?? layer.current;
        layer.total = msg.progressDetail?.total ?? layer.total;
      }
      if (msg.status === "Download complete") layer.current = layer.total;
      if (LAYER_DONE.has(msg.status)) layer.done = true;
    }
    let line: string | undefined = formatProgress(msg);
    if (msg.progressDetail?.total !== undefined || msg.progress !== undefined) {
      const t = now();
      if (t - lastLineAt < throttleMs) line = undefined;
      else lastLineAt = t;
    }
    let layersDone = 0;
    let bytesDone = 0;
    let bytesTotal = 0;
    for (const l of layers.values()) {
      if (l.done) layersDone++;
      bytesDone += l.current;
      bytesTotal += l.total;
    }
    opts.onProgress({ line, layers: layers.size, layersDone, bytesDone, bytesTotal });
  }
}

/** "3f4ca61aafcd: Downloading 1.2 MB / 5.0 MB" or "Digest: sha256:…". */
export function formatProgress(msg: PullMessage): string {
  const head =
    msg.id !== undefined && msg.id !== "" ? `${msg.id}: ${msg.status}` : (msg.status ?? "");
  const current = msg.progressDetail?.current;
  const total = msg.progressDetail?.total;
  if (current !== undefined && total !== undefined && total > 0)
    return `${head} ${formatMB(current)} / ${formatMB(total)}`;
  return head;
}

function formatMB(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}
