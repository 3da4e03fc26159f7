/**
 * The one body reader: whatever the runtime, a request's body arrives as chunks (Node's `data`
 * events, a Web stream's reads) that go through here, counted against the route's limit and the
 * shared input budget (body-limits.ts) and decoded once at the end.
 */
import { ClientClosedError } from "../engine/errors.ts";
import type { BodyLimits } from "./body-limits.ts";

export { BodyLimits, InputBudget } from "./body-limits.ts";

/** Where a body's source hands its chunks. */
export interface BodySink {
  /** A chunk arrived; false once the body is refused (a source may stop reading, or read on and drop). */
  chunk(bytes: Uint8Array): boolean;
  /** The body is whole. */
  end(): void;
  /** The client went away before the body's end. */
  closed(): void;
}

/** A body's chunks: the source calls the sink as they come. */
export type BodySource = (sink: BodySink) => void;

const decoder = new TextDecoder();

/**
 * The body as text, within `limits` (their error when past one: 413, or 503 past the budget); a
 * client that hangs up before its end: ClientClosedError. `declared` is the Content-Length header,
 * checked before a byte is read.
 */
export function readBody(
  limits: BodyLimits,
  declared: string | null | undefined,
  source: BodySource,
): Promise<string> {
  return new Promise((resolve, reject) => {
    limits.checkDeclared(declared);
    source(new Collector(limits, resolve, reject));
  });
}

/** The sink that collects one body (a class: no closures per request on the hot path). */
class Collector implements BodySink {
  readonly #chunks: Uint8Array[] = [];
  #size = 0;
  #done = false;

  constructor(
    readonly limits: BodyLimits,
    readonly resolve: (text: string) => void,
    readonly reject: (err: unknown) => void,
  ) {}

  chunk(bytes: Uint8Array): boolean {
    if (this.#done) return false;
    this.#size += bytes.length;
    const err = this.limits.count(bytes.length);
    if (err) {
      this.#fail(err);
      return false;
    }
    this.#chunks.push(bytes);
    return true;
  }

  end(): void {
    if (this.#done) return;
    this.#done = true;
    const chunks = this.#chunks;
    if (chunks.length === 1) return this.resolve(decoder.decode(chunks[0]));
    const all = new Uint8Array(this.#size);
    let at = 0;
    for (const ch of chunks) {
      all.set(ch, at);
      at += ch.length;
    }
    this.resolve(decoder.decode(all));
  }

  closed(): void {
    this.#fail(new ClientClosedError());
  }

  #fail(err: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#chunks.length = 0;
    this.reject(err);
  }
}

/** A Web request's body stream as a source: read until its end, cancelled once the body is refused. */
export function webBodySource(body: ReadableStream<Uint8Array> | null): BodySource {
  return (sink) => {
    if (body === null) return sink.end();
    const reader = body.getReader();
    void (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return sink.end();
          if (!sink.chunk(value)) return void (await reader.cancel().catch(() => {}));
        }
      } catch {
        sink.closed();
      }
    })();
  };
}
