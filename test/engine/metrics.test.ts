import { describe, expect, it } from "vitest";
import { Counter, Histogram } from "../../src/engine/metrics.ts";

describe("engine metrics", () => {
  it("Histogram.observe() counts a value equal to a bound in that bound's bucket (Prometheus le)", () => {
    const h = new Histogram([1, 2, 5]);
    for (const v of [0, 1, 1.5, 2, 5, 7, 100]) h.observe(v);
    expect(h.counts).toEqual([2, 2, 1, 2]);
    expect(h.cumulative()).toEqual([2, 4, 5, 7]);
    expect(h.count).toBe(7);
    expect(h.sum).toBe(116.5);
  });

  it("Counter only goes up by what it is given", () => {
    const c = new Counter();
    c.inc();
    c.inc(3);
    expect(c.value).toBe(4);
  });
});
