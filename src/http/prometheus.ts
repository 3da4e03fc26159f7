/**
 * Prometheus text exposition format (version 0.0.4), written by hand: one
 * `# HELP` and `# TYPE` per family, then its samples.
 */
import type { Histogram } from "../engine/metrics.ts";

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type Labels = Record<string, string | number>;

export class PromText {
  #lines: string[] = [];

  /** Starts a family: its help line and type. */
  family(name: string, type: "counter" | "gauge" | "histogram", help: string): this {
    this.#lines.push(
      `# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`,
      `# TYPE ${name} ${type}`,
    );
    return this;
  }

  sample(name: string, value: number, labels?: Labels): this {
    this.#lines.push(`${name}${formatLabels(labels)} ${formatValue(value)}`);
    return this;
  }

  /** A family with one sample. */
  single(name: string, type: "counter" | "gauge", help: string, value: number): this {
    return this.family(name, type, help).sample(name, value);
  }

  /** The `_bucket`, `_sum` and `_count` samples of one labelled histogram. */
  histogram(name: string, h: Histogram, labels: Labels = {}): this {
    const cumulative = h.cumulative();
    h.bounds.forEach((le, i) =>
      this.sample(`${name}_bucket`, cumulative[i]!, { ...labels, le: formatValue(le) }),
    );
    this.sample(`${name}_bucket`, h.count, { ...labels, le: "+Inf" });
    this.sample(`${name}_sum`, h.sum, labels);
    return this.sample(`${name}_count`, h.count, labels);
  }

  toString(): string {
    return `${this.#lines.join("\n")}\n`;
  }
}

function formatLabels(labels?: Labels): string {
  if (!labels) return "";
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(String(v))}"`);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

export function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}
