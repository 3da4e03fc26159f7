/**
 * Structured logs: JSON lines for machines, readable lines for a person.
 * Web-standard (console only), so every layer and both runtimes can use it.
 * What tasks, paths and inputs bring into a line cannot forge another line or
 * drive a terminal: control characters, line separators and bidirectional
 * overrides are escaped in both formats.
 */
import type { Logger } from "./engine/ports.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  format: "json" | "text";
  level: LogLevel;
  /**
   * Where lines go; default standard error, every level, so that the lines keep their order in one
   * stream and standard output stays free for what a command prints (doctor --json, --version).
   */
  write?: (level: LogLevel, line: string) => void;
  now?: () => Date;
}

export function createLogger(opts: LoggerOptions, bound: Record<string, unknown> = {}): Logger {
  const min = ORDER[opts.level];
  const write = opts.write ?? ((_level: LogLevel, line: string) => console.error(line));
  const now = opts.now ?? (() => new Date());
  const emit = (level: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    const all = { ...bound, ...fields };
    write(
      level,
      opts.format === "json" ? jsonLine(now(), level, msg, all) : textLine(now(), level, msg, all),
    );
  };
  return {
    debug: emit("debug"),
    info: emit("info"),
    warn: emit("warn"),
    error: emit("error"),
    child: (fields) => createLogger(opts, { ...bound, ...fields }),
  };
}

/** C0 and C1 controls, DEL, line and paragraph separators, bidirectional marks and overrides. */
const UNSAFE_CHARS =
  "\\u0000-\\u001f\\u007f-\\u009f\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069";
const UNSAFE = new RegExp(`[${UNSAFE_CHARS}]`, "g");
const HAS_UNSAFE_OR_SPACE = new RegExp(`[\\s"${UNSAFE_CHARS}]`);
/** JSON.stringify escapes C0 controls itself; these it leaves raw. */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const SHORT: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

const unicodeEscape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/** `s` with every unsafe character written as an escape (`\n`, `\u001b`), on one line. */
export function escapeControl(s: string): string {
  return s.replace(UNSAFE, (c) => SHORT[c] ?? unicodeEscape(c));
}

function jsonLine(t: Date, level: LogLevel, msg: string, fields: Record<string, unknown>): string {
  // Outside strings JSON has no such characters, so escaping them in the whole line keeps it valid JSON.
  return JSON.stringify({ time: t.toISOString(), level, msg, ...fields }, replacer).replace(
    UNSAFE_IN_JSON,
    unicodeEscape,
  );
}

function textLine(t: Date, level: LogLevel, msg: string, fields: Record<string, unknown>): string {
  const { component, ...rest } = fields;
  const extras = Object.entries(rest)
    .map(([k, v]) => `${escapeControl(k)}=${textValue(v)}`)
    .join(" ");
  const comp = component ? `[${escapeControl(String(component))}] ` : "";
  return `${t.toISOString()} ${level.toUpperCase().padEnd(5)} ${comp}${escapeControl(msg)}${extras ? ` ${extras}` : ""}`;
}

/** A plain word as it is; anything with spaces, quotes or unsafe characters quoted as JSON and escaped. */
function textValue(v: unknown): string {
  if (typeof v === "string" && v !== "" && !HAS_UNSAFE_OR_SPACE.test(v)) return v;
  return escapeControl(JSON.stringify(v, replacer) ?? String(v));
}

function replacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? value.message : value;
}
