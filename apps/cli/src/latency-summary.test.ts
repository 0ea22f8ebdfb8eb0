import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { percentile, progressBar, summarize } from "./latency-summary.js";

describe("latency summary", () => {
  it("computes nearest-rank percentiles", () => {
    const s = summarize(Float64Array.from([5, 1, 4, 2, 3, 6, 7, 8, 9, 10]));
    expect(s).toEqual({ count: 10, mean: 5.5, p50: 5, p90: 9, p99: 10, max: 10 });
    expect(Number.isNaN(summarize(new Float64Array(0)).p50)).toBe(true);
  });

  it("a percentile is a sample with at least p% of samples at or below it, and none smaller qualifies (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 200 }), fc.integer({ min: 1, max: 100 }), (xs, p) => {
        const sorted = Float64Array.from(xs).sort();
        const v = percentile(sorted, p);
        expect(xs).toContain(v);
        const atOrBelow = xs.filter((x) => x <= v).length;
        expect(atOrBelow / xs.length).toBeGreaterThanOrEqual(p / 100);
        const below = xs.filter((x) => x < v).length;
        expect(below / xs.length).toBeLessThan(p / 100);
      }),
    );
  });

  it("draws a progress bar", () => {
    expect(progressBar(5, 10, 1234.4, 10)).toBe("[#####-----] 5/10  1,234/s");
    expect(progressBar(10, 10, 0, 4)).toBe("[####] 10/10  0/s");
  });
});
