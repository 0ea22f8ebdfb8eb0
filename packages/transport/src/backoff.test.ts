import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { backoffCap, backoffDelay } from "./backoff.js";

describe("backoffDelay (full jitter)", () => {
  it("stays within [0, min(max, initial * 2^n)] for any attempt and random value", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, initial, max, r) => {
          const d = backoffDelay(attempt, { initialDelayMs: initial, maxDelayMs: max }, () => r);
          expect(d).toBeGreaterThanOrEqual(0);
          expect(d).toBeLessThanOrEqual(initial === 0 ? 0 : Math.min(max, initial * 2 ** attempt));
          expect(Number.isFinite(d)).toBe(true);
        },
      ),
    );
  });

  it("reaches the cap when the random source is near 1, and 0 when it is 0", () => {
    expect(backoffDelay(3, { initialDelayMs: 100, maxDelayMs: 10_000 }, () => 0.999_999)).toBe(800);
    expect(backoffDelay(30, { initialDelayMs: 100, maxDelayMs: 10_000 }, () => 0.999_999)).toBe(10_000);
    expect(backoffDelay(5, {}, () => 0)).toBe(0);
    expect(backoffCap(2000, 100, 5000)).toBe(5000);
  });

  it("tolerates a broken random source and refuses a bad attempt", () => {
    expect(backoffDelay(1, { initialDelayMs: 100 }, () => Number.NaN)).toBe(0);
    expect(backoffDelay(1, { initialDelayMs: 100 }, () => 7)).toBe(0);
    expect(() => backoffDelay(-1)).toThrow(/attempt/);
  });
});
