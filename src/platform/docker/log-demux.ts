/**
 * Docker's multiplexed log stream (containers without a TTY): each frame is
 * an 8-byte header `[stream type, 0, 0, 0, size as big-endian uint32]`
 * followed by `size` bytes. Frames may be split across chunks in any place.
 */

export type LogStream = "stdin" | "stdout" | "stderr";

export interface LogFrame {
  stream: LogStream;
  data: Uint8Array;
}

export interface LogLine {
  stream: LogStream;
  line: string;
}

const STREAMS: readonly LogStream[] = ["stdin", "stdout", "stderr"];
const HEADER = 8;

/** Byte source: a Web ReadableStream or any async iterable (a Node stream). */
export type ByteSource = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/** Turns chunks into whole frames; keeps the unfinished tail for the next chunk. */
export class LogDemuxer {
  #pending: Uint8Array = new Uint8Array(0);

  push(chunk: Uint8Array): LogFrame[] {
    let buf = this.#pending.length === 0 ? chunk : concat(this.#pending, chunk);
    const frames: LogFrame[] = [];
    while (buf.length >= HEADER) {
      const size = ((buf[4]! << 24) >>> 0) + (buf[5]! << 16) + (buf[6]! << 8) + buf[7]!;
      if (buf.length < HEADER + size) break;
      const stream = STREAMS[buf[0]!] ?? "stdout";
      frames.push({ stream, data: buf.subarray(HEADER, HEADER + size) });
      buf = buf.subarray(HEADER + size);
    }
    // Copy the tail so that the caller's chunk can be reused or released.
    this.#pending = buf.length === 0 ? new Uint8Array(0) : buf.slice();
    return frames;
  }

  /** Bytes of an unfinished frame left when the stream ended. */
  get pendingBytes(): number {
    return this.#pending.length;
  }
}

/**
 * Splits decoded text into lines on `\n`, dropping a trailing `\r`. UTF-8 is
 * decoded in streaming mode, so a character split across chunks survives.
 * A line longer than `maxLineLength` is cut so that memory stays bounded.
 */
export class LineSplitter {
  #decoder = new TextDecoder("utf-8");
  #partial = "";
  readonly #max: number;

  constructor(opts?: { maxLineLength?: number }) {
    this.#max = opts?.maxLineLength ?? 64 * 1024;
  }

  push(chunk: Uint8Array | string): string[] {
    const text = typeof chunk === "string" ? chunk : this.#decoder.decode(chunk, { stream: true });
    const parts = (this.#partial + text).split("\n");
    this.#partial = parts.pop()!;
    const lines = parts.map(stripCr);
    while (this.#partial.length > this.#max) {
      lines.push(this.#partial.slice(0, this.#max));
      this.#partial = this.#partial.slice(this.#max);
    }
    return lines;
  }

  /** The unterminated last line, if any. */
  flush(): string[] {
    const rest = this.#partial + this.#decoder.decode();
    this.#partial = "";
    return rest === "" ? [] : [stripCr(rest)];
  }
}

/** Demultiplexes a log stream into frames as they arrive. */
export async function* demuxFrames(source: ByteSource): AsyncGenerator<LogFrame> {
  const demuxer = new LogDemuxer();
  for await (const chunk of iterateBytes(source)) yield* demuxer.push(chunk);
}

/** Splits each stream's frames into lines; `flush` gives the unterminated last lines. */
export class StreamLines {
  #splitters = new Map<LogStream, LineSplitter>();

  push(frame: LogFrame): string[] {
    let s = this.#splitters.get(frame.stream);
    if (s === undefined) this.#splitters.set(frame.stream, (s = new LineSplitter()));
    return s.push(frame.data);
  }

  flush(): LogLine[] {
    return [...this.#splitters].flatMap(([stream, s]) =>
      s.flush().map((line) => ({ stream, line })),
    );
  }
}

/** Demultiplexes a log stream into lines, per stream; the last partial lines come at the end. */
export async function* demuxLines(source: ByteSource): AsyncGenerator<LogLine> {
  const lines = new StreamLines();
  for await (const frame of demuxFrames(source)) {
    for (const line of lines.push(frame)) yield { stream: frame.stream, line };
  }
  yield* lines.flush();
}

/**
 * Finds `mark` anywhere in a line of one stream as soon as its bytes arrive: after a logger's
 * prefix, in a last line with no newline, split across frames. Only the current line's last
 * `mark.length - 1` characters are kept, so memory stays bounded whatever the task prints.
 */
export class MarkFinder {
  #decoder = new TextDecoder("utf-8");
  #tail = "";
  readonly #mark: string;

  constructor(mark: string) {
    this.#mark = mark;
  }

  /** true once the mark has been seen within one line. */
  push(data: Uint8Array): boolean {
    const text = this.#tail + this.#decoder.decode(data, { stream: true });
    const lastLine = text.lastIndexOf("\n");
    for (const line of text.split("\n")) if (line.includes(this.#mark)) return true;
    const current = lastLine === -1 ? text : text.slice(lastLine + 1);
    this.#tail = current.slice(Math.max(0, current.length - (this.#mark.length - 1)));
    return false;
  }
}

/**
 * Iterates a byte source chunk by chunk. For a ReadableStream the reader is
 * cancelled when the consumer stops early, which closes the connection.
 */
export async function* iterateBytes(source: ByteSource): AsyncGenerator<Uint8Array> {
  if (!isReadableStream(source)) {
    for await (const chunk of source) yield chunk;
    return;
  }
  const reader = source.getReader();
  let done = false;
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) {
        done = true;
        return;
      }
      yield next.value;
    }
  } finally {
    if (!done) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

function isReadableStream(source: ByteSource): source is ReadableStream<Uint8Array> {
  return typeof (source as ReadableStream<Uint8Array>).getReader === "function";
}

function stripCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
