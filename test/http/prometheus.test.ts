import { describe, expect, it } from "vitest";
import { Histogram } from "../../src/engine/metrics.ts";
import { escapeLabel, formatValue, PromText } from "../../src/http/prometheus.ts";
import { parseMetrics } from "./metrics-text.ts";

describe("Prometheus text", () => {
  it("escapes backslashes, quotes and newlines in label values and help", () => {
    expect(escapeLabel('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    const text = new PromText()
      .family("x", "gauge", "two\nlines \\ here")
      .sample("x", 1, { v: 'q"\n\\' })
      .toString();
    expect(text).toBe('# HELP x two\\nlines \\\\ here\n# TYPE x gauge\nx{v="q\\"\\n\\\\"} 1\n');
    expect(parseMetrics(text)).toEqual([{ name: "x", labels: { v: 'q"\n\\' }, value: 1 }]);
  });

  it("writes infinities and NaN as Prometheus spells them", () => {
    expect([Infinity, -Infinity, NaN, 0.25, 3].map(formatValue)).toEqual([
      "+Inf",
      "-Inf",
      "NaN",
      "0.25",
      "3",
    ]);
  });

  it("writes a histogram as cumulative buckets, +Inf, sum and count", () => {
    const h = new Histogram([0.5, 1]);
    h.observe(0.2);
    h.observe(0.7);
    h.observe(3);
    const text = new PromText()
      .family("d", "histogram", "h")
      .histogram("d", h, { route: "/" })
      .toString();
    expect(text.split("\n").slice(2, -1)).toEqual([
      'd_bucket{route="/",le="0.5"} 1',
      'd_bucket{route="/",le="1"} 2',
      'd_bucket{route="/",le="+Inf"} 3',
      'd_sum{route="/"} 3.9',
      'd_count{route="/"} 3',
    ]);
  });
});
