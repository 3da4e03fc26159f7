/**
 * Structured logs: JSON lines for machines, readable lines for a person.
 * Web-standard (console only), so every layer and both runtimes can use it.
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
    write(level, opts.format === "json" ? jsonLine(now(), level, msg, all) : textLine(now(), level, msg, all));
  };
  return {
    debug: emit("debug"),
    info: emit("info"),
    warn: emit("warn"),
    error: emit("error"),
    child: (fields) => createLogger(opts, { ...bound, ...fields }),
  };
}

function jsonLine(t: Date, level: LogLevel, msg: string, fields: Record<string, unknown>): string {
  return JSON.stringify({ time: t.toISOString(), level, msg, ...fields }, replacer);
}

function textLine(t: Date, level: LogLevel, msg: string, fields: Record<string, unknown>): string {
  const { component, ...rest } = fields;
  const extras = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === "string" && !/\s/.test(v) ? v : JSON.stringify(v, replacer)}`)
    .join(" ");
  return `${t.toISOString()} ${level.toUpperCase().padEnd(5)} ${component ? `[${component}] ` : ""}${msg}${extras ? ` ${extras}` : ""}`;
}

function replacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? value.message : value;
}
