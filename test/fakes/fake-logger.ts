import type { Logger } from "../../src/engine/ports.ts";

export interface LogRecord {
  level: string;
  msg: string;
  fields: Record<string, unknown>;
}

/** A logger that keeps its lines for assertions. */
export function memoryLogger(
  records: LogRecord[] = [],
  bound: Record<string, unknown> = {},
): Logger & { records: LogRecord[] } {
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => {
    records.push({ level, msg, fields: { ...bound, ...fields } });
  };
  return {
    records,
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    child: (fields) => memoryLogger(records, { ...bound, ...fields }),
  };
}
