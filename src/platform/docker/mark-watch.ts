/**
 * Readiness: the task's `meca-init-done` mark, watched on two streams at once, taken from whichever
 * shows it first (see docs/architecture.md, "The request path"):
 * - the output attached before start: it sees what a log flood rotates out of the log files;
 * - the log followed from its start: it has what was written before the attach was live (the
 *   engine answers an attach before it joins the container's streams).
 * The followed log is the one that decides when the container's output ends, and the one whose
 * lines an error report keeps.
 */
import { demuxFrames, MarkFinder, StreamLines, type ByteSource } from "./log-demux.ts";

export interface MarkWatch {
  mark: string;
  signal: AbortSignal;
  /** Opens the log, followed from its start; `signal` ends it. */
  logs(signal: AbortSignal): Promise<ByteSource>;
  /** The output attached before start, and what ends it; absent on transports without attach. */
  attached?: { source: ByteSource; stop: AbortController };
  /** Every line of the followed log until the mark, for an error report. */
  onLine(line: string): void;
}

/** True once either stream shows the mark; false when the log ends without it. Rejects as the log fails. */
export async function watchForMark(w: MarkWatch): Promise<boolean> {
  const done = new AbortController();
  const stop = () => {
    done.abort(w.signal.reason);
    w.attached?.stop.abort(w.signal.reason);
  };
  w.signal.addEventListener("abort", stop, { once: true });
  const logs = (async () => scan(await w.logs(done.signal), w.mark, w.onLine))();
  const output = w.attached
    ? scan(w.attached.source, w.mark).catch(() => false)
    : Promise.resolve(false);
  try {
    return await new Promise<boolean>((resolve, reject) => {
      void output.then((seen) => seen && resolve(true));
      // The log ends when the container's output does: without the mark by then, it never came.
      logs.then(resolve, reject);
    });
  } finally {
    w.signal.removeEventListener("abort", stop);
    // Found, or ended: both streams are done with. Not awaited: a transport may end a body read
    // only some time after its abort (Deno's fetch), and nothing here waits on that.
    done.abort();
    w.attached?.stop.abort();
    logs.catch(() => {});
  }
}

/** Whether a log read to its end (not followed) shows the mark within a line of stdout. */
export function logHasMark(source: ByteSource, mark: string): Promise<boolean> {
  return scan(source, mark);
}

/** True once `source` shows the mark within a line of stdout; false when it ends without it. */
async function scan(
  source: ByteSource,
  mark: string,
  onLine?: (line: string) => void,
): Promise<boolean> {
  const finder = new MarkFinder(mark);
  const lines = new StreamLines();
  for await (const frame of demuxFrames(source)) {
    if (frame.stream === "stdout" && finder.push(frame.data)) return true;
    if (onLine) lines.push(frame).forEach(onLine);
  }
  if (onLine) lines.flush().forEach(({ line }) => onLine(line));
  return false;
}
