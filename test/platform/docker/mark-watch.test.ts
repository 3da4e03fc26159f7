import { describe, expect, it } from "vitest";
import { watchForMark } from "../../../src/platform/docker/mark-watch.ts";

const MARK = "meca-init-done";

/** One multiplexed frame of Docker's log stream: [stream, 0, 0, 0, size (big-endian)] + payload. */
function frame(text: string, stream = 1): Uint8Array {
  const payload = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + payload.length);
  out[0] = stream;
  new DataView(out.buffer).setUint32(4, payload.length);
  out.set(payload, 8);
  return out;
}

/** A stream of `frames` that stays open (unless `end`) until `signal` aborts. */
function stream(
  frames: Uint8Array[],
  o: { end?: boolean; signal?: AbortSignal } = {},
): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (const f of frames) c.enqueue(f);
      if (o.end) c.close();
      o.signal?.addEventListener("abort", () => c.error(o.signal!.reason), { once: true });
    },
  });
}

function watch(
  logFrames: Uint8Array[],
  attachedFrames?: Uint8Array[],
  o: { logEnds?: boolean } = {},
) {
  const lines: string[] = [];
  const stop = new AbortController();
  const signal = new AbortController().signal;
  const result = watchForMark({
    mark: MARK,
    signal,
    logs: async (s) => stream(logFrames, { end: o.logEnds, signal: s }),
    attached: attachedFrames
      ? { source: stream(attachedFrames, { signal: stop.signal }), stop }
      : undefined,
    onLine: (l) => lines.push(l),
  });
  return { result, lines, stop };
}

describe("watchForMark()", () => {
  it("takes the mark from the attached output when the log lacks it (rotated out by a flood)", async () => {
    const w = watch([frame("x".repeat(100) + "\n")], [frame(`app: ${MARK}\n`)]);
    expect(await w.result).toBe(true);
    expect(w.stop.signal.aborted).toBe(true); // the attach is closed once done
  });

  it("takes the mark from the log when the attach missed it (written before the attach was live)", async () => {
    const w = watch([frame("starting\n"), frame(`${MARK}\n`)], [frame("later output\n")]);
    expect(await w.result).toBe(true);
  });

  it("is false when the log ends without the mark, with the log's lines kept for the report", async () => {
    const w = watch([frame("starting\n"), frame("fatal: no model\n", 2)], [], { logEnds: true });
    expect(await w.result).toBe(false);
    expect(w.lines).toEqual(["starting", "fatal: no model"]);
  });

  it("watches the log alone on a transport without attach, and ignores the mark on stderr", async () => {
    expect(
      await watch([frame(`${MARK}\n`, 2), frame("\n")], undefined, { logEnds: true }).result,
    ).toBe(false);
    expect(await watch([frame(`INFO ${MARK}`)]).result).toBe(true);
  });
});
