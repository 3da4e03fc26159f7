import { describe, expect, it } from "vitest";
import { createApp } from "../src/http/app.ts";
import { createLogger, escapeControl } from "../src/logger.ts";
import type { LogRecord } from "./fakes/fake-logger.ts";
import { fakeExecutor } from "./support/fake-executor.ts";

/** What an attacker puts in a task's log, a path or an input: a forged line, terminal escapes, separators, bidi overrides. */
const HOSTILE =
  "ok\n2026-01-01T00:00:00.000Z ERROR [main] forged line\r\x1b[31mred\x1b[0m\u0007\u009b2J\u2028\u202eevil\u0000";
/** Nothing a terminal acts on or splits lines at. */
// eslint-disable-next-line no-control-regex -- control characters are what the test looks for
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

function both(records: LogRecord[]): { json: string[]; text: string[] } {
  const out = { json: [] as string[], text: [] as string[] };
  for (const format of ["json", "text"] as const) {
    const log = createLogger({
      format,
      level: "debug",
      write: (_l, line) => out[format].push(line),
      now: () => new Date(0),
    });
    for (const r of records)
      (log as unknown as Record<string, (m: string, f: unknown) => void>)[r.level]!(
        r.msg,
        r.fields,
      );
  }
  return out;
}

function expectSafe(lines: string[]): void {
  for (const line of lines) expect(line, JSON.stringify(line)).not.toMatch(UNSAFE);
}

describe("logs cannot be forged", () => {
  it("escapes every unsafe character of messages and fields in both formats; JSON lines still parse back to the original", () => {
    const records: LogRecord[] = [
      {
        level: "warn",
        msg: HOSTILE,
        fields: { path: HOSTILE, [HOSTILE]: 1, plain: "word", nested: { v: HOSTILE } },
      },
    ];
    const { json, text } = both(records);
    expect(json).toHaveLength(1);
    expect(text).toHaveLength(1);
    expectSafe([...json, ...text]);
    const parsed = JSON.parse(json[0]!);
    expect(parsed.msg).toBe(HOSTILE);
    expect(parsed.path).toBe(HOSTILE);
    expect(parsed.nested.v).toBe(HOSTILE);
    expect(text[0]).toContain("plain=word");
    expect(text[0]).toContain("\\n2026-01-01T00:00:00.000Z ERROR");
    expect(escapeControl("a\nb\u001b")).toBe("a\\nb\\u001b");
  });

  it("a crashing task's last log lines, a request path and an input reach the log escaped, in both formats", async () => {
    const parts = await fakeExecutor({
      images: {
        "crash:1": {
          ready: { exitCode: 3, lines: [HOSTILE, { stream: "stderr", line: `fatal ${HOSTILE}` }] },
        },
      },
    });
    const records = parts.logger.records;
    const app = createApp({
      executor: parts.executor,
      logger: parts.logger,
      maxBodyBytes: 1 << 20,
      onStop: () => {},
      accessLog: true,
    });
    // The task: its last lines come back in the answer (200 by default, failure_status "ok") and go to the log with the error.
    const crash = await app.request("/", {
      method: "POST",
      body: JSON.stringify({ id: "crash:1", input: HOSTILE }),
    });
    expect(crash.status).toBe(200);
    expect(((await crash.json()) as { error: string }).error).toBe("TASK_EXITED");
    expect(records.some((r) => r.msg.includes("forged line"))).toBe(true);
    // The path, percent-decoded by the router, in the debug access line.
    const path = `/${encodeURIComponent(HOSTILE)}`;
    expect((await app.request(path, { method: "GET" })).status).toBe(404);
    expect(records.some((r) => String(r.fields.path).includes("forged line"))).toBe(true);
    // An input that the executor quotes in an error: a malformed image id in a 400 is not logged, a
    // request id is sanitised, so the input that reaches a line is the task's own output above.
    const { json, text } = both(records);
    expect(json.length).toBeGreaterThan(0);
    expect(text.length).toBe(json.length);
    expectSafe([...json, ...text]);
    for (const line of json) expect(() => JSON.parse(line)).not.toThrow();
  });
});
