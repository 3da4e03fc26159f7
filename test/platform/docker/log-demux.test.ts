import { describe, expect, it } from "vitest";
import {
  demuxLines,
  LineSplitter,
  LogDemuxer,
  type LogLine,
  MarkFinder,
} from "../../../src/platform/docker/log-demux.ts";

const enc = new TextEncoder();

function frame(stream: 0 | 1 | 2, text: string | Uint8Array): Uint8Array {
  const data = typeof text === "string" ? enc.encode(text) : text;
  const out = new Uint8Array(8 + data.length);
  out[0] = stream;
  new DataView(out.buffer).setUint32(4, data.length, false);
  out.set(data, 8);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function* chunks(...parts: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield p;
}

async function collect(source: AsyncIterable<LogLine>): Promise<LogLine[]> {
  const out: LogLine[] = [];
  for await (const l of source) out.push(l);
  return out;
}

const stream = concat(
  frame(1, "probe listening\r\n"),
  frame(2, "warn: low memory\n"),
  frame(1, "meca-"),
  frame(1, "init-done\nhalf"),
  frame(2, "éh ✓ \n"),
  frame(1, " a line\nno newline at end"),
);
const expected: LogLine[] = [
  { stream: "stdout", line: "probe listening" },
  { stream: "stderr", line: "warn: low memory" },
  { stream: "stdout", line: "meca-init-done" },
  { stream: "stderr", line: "éh ✓ " },
  { stream: "stdout", line: "half a line" },
  { stream: "stdout", line: "no newline at end" },
];

describe("LogDemuxer", () => {
  it("returns whole frames and keeps a partial header or body for the next chunk", () => {
    const d = new LogDemuxer();
    const bytes = concat(frame(1, "abc"), frame(2, "de"));
    expect(d.push(bytes.subarray(0, 5))).toEqual([]);
    expect(d.push(bytes.subarray(5, 10))).toEqual([]);
    const frames = d.push(bytes.subarray(10));
    expect(frames.map((f) => [f.stream, new TextDecoder().decode(f.data)])).toEqual([
      ["stdout", "abc"],
      ["stderr", "de"],
    ]);
    expect(d.pendingBytes).toBe(0);
  });

  it("reads a frame size above 2^31 as unsigned without waiting forever on a negative size", () => {
    const d = new LogDemuxer();
    const header = new Uint8Array([1, 0, 0, 0, 0x80, 0, 0, 0]);
    expect(d.push(header)).toEqual([]);
    expect(d.pendingBytes).toBe(8);
  });

  it("handles an empty frame", () => {
    expect(new LogDemuxer().push(frame(1, "")).map((f) => f.data.length)).toEqual([0]);
  });
});

describe("demuxLines()", () => {
  it("splits stdout and stderr into lines, in order, with \\r dropped", async () => {
    expect(await collect(demuxLines(chunks(stream)))).toEqual(expected);
  });

  it("gives the same lines whatever byte the stream is split at", async () => {
    for (let cut = 1; cut < stream.length; cut++) {
      const lines = await collect(
        demuxLines(chunks(stream.subarray(0, cut), stream.subarray(cut))),
      );
      expect(lines, `split at byte ${cut}`).toEqual(expected);
    }
  });

  it("gives the same lines when every byte comes alone", async () => {
    const bytes = [...stream].map((b) => new Uint8Array([b]));
    expect(await collect(demuxLines(chunks(...bytes)))).toEqual(expected);
  });

  it("reads a Web ReadableStream and cancels it when the reader stops early", async () => {
    let cancelled = false;
    const rs = new ReadableStream<Uint8Array>({
      pull: (c) => c.enqueue(frame(1, "tick\n")),
      cancel: () => {
        cancelled = true;
      },
    });
    for await (const l of demuxLines(rs)) {
      expect(l.line).toBe("tick");
      break;
    }
    expect(cancelled).toBe(true);
  });
});

describe("LineSplitter", () => {
  it("keeps a partial line until its end arrives, and flushes the last one", () => {
    const s = new LineSplitter();
    expect(s.push("ab")).toEqual([]);
    expect(s.push("c\r\nde\n\nf")).toEqual(["abc", "de", ""]);
    expect(s.flush()).toEqual(["f"]);
    expect(s.flush()).toEqual([]);
  });

  it("decodes a UTF-8 character split across chunks", () => {
    const s = new LineSplitter();
    const bytes = enc.encode("✓\n");
    expect(s.push(bytes.subarray(0, 1))).toEqual([]);
    expect(s.push(bytes.subarray(1))).toEqual(["✓"]);
  });

  it("cuts an endless line so that memory stays bounded", () => {
    const s = new LineSplitter({ maxLineLength: 4 });
    expect(s.push("abcdefghij")).toEqual(["abcd", "efgh"]);
    expect(s.flush()).toEqual(["ij"]);
  });
});

describe("MarkFinder", () => {
  const MARK = "meca-init-done";
  const bytes = (s: string) => new TextEncoder().encode(s);
  const seen = (chunks: string[]) => {
    const f = new MarkFinder(MARK);
    return chunks.findIndex((c) => f.push(bytes(c)));
  };

  it("finds the mark alone on a line, after a logger's prefix, and in a last line with no newline", () => {
    expect(seen(["starting\n", `${MARK}\n`])).toBe(1);
    expect(seen([`2026-11-30 INFO app: ${MARK} (port 8080)\n`])).toBe(0);
    expect(seen(["booting\n", `[app] ${MARK}`])).toBe(1);
  });

  it("finds the mark as soon as its last byte arrives, whatever byte the stream is split at", () => {
    const text = `INFO ${MARK}`;
    for (let i = 1; i < text.length; i++) expect(seen([text.slice(0, i), text.slice(i)])).toBe(1);
    expect(seen([...`x ${MARK}`])).toBe(MARK.length + 1);
  });

  it("does not join a mark across a newline, nor find one that is not there", () => {
    expect(seen(["meca-init\n", "-done\n"])).toBe(-1);
    expect(seen(["meca-init-don", "e".replace("e", "\n")])).toBe(-1);
    expect(seen(["x".repeat(1 << 20), "meca-init-", "done"])).toBe(2);
  });
});
