/** Newline-delimited JSON, as Docker streams pull progress and events. */
import { LineSplitter, iterateBytes, type ByteSource } from "./log-demux.ts";

/** Yields one parsed value per non-empty line; a line that is not JSON is skipped. */
export async function* jsonLines(source: ByteSource): AsyncGenerator<unknown> {
  const splitter = new LineSplitter({ maxLineLength: 1024 * 1024 });
  for await (const chunk of iterateBytes(source)) {
    for (const line of splitter.push(chunk)) {
      const value = parse(line);
      if (value !== undefined) yield value;
    }
  }
  for (const line of splitter.flush()) {
    const value = parse(line);
    if (value !== undefined) yield value;
  }
}

function parse(line: string): unknown {
  const text = line.trim();
  if (text === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
