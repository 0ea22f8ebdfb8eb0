import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_DAMPING, FlapDamper, dampingConfig } from "./route-damping.js";

describe("FlapDamper", () => {
  it("suppresses at the third withdrawal in a row and reuses once the penalty halves below 750", () => {
    const d = new FlapDamper(dampingConfig());
    expect(d.flap("k", 1000, 0)).toBe(false);
    expect(d.flap("k", 1000, 0)).toBe(false); // 2000: not above the threshold
    expect(d.flap("k", 1000, 0)).toBe(true);
    expect(d.isSuppressed("k", 0)).toBe(true);
    // 3000 → below 750 after two half-lives (60 s) plus a little.
    expect(d.isSuppressed("k", 59_000)).toBe(true);
    expect(d.release(59_000)).toEqual([]);
    expect(d.release(61_000)).toEqual(["k"]);
    expect(d.isSuppressed("k", 61_000)).toBe(false);
  });

  it("caps the penalty so suppression ends at most maxSuppressMs after the last flap (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 60 }), (gaps) => {
        const d = new FlapDamper(dampingConfig());
        let t = 0;
        for (const g of gaps) {
          t += g;
          d.flap("k", 1000, t);
        }
        expect(d.isSuppressed("k", t + DEFAULT_DAMPING.maxSuppressMs + 1)).toBe(false);
      }),
    );
  });

  it("forgets negligible penalties and bounds the keys it tracks", () => {
    const d = new FlapDamper(dampingConfig({ maxEntries: 2 }));
    d.flap("a", 500, 0);
    d.flap("b", 500, 0);
    expect(d.flap("c", 5000, 0)).toBe(false);
    expect(d.untracked).toBe(1);
    expect(d.size).toBe(2);
    d.release(1_000_000);
    expect(d.size).toBe(0);
  });

  it("validates its settings naming the field", () => {
    expect(() => dampingConfig({ reuseThreshold: 3000 })).toThrow(expect.objectContaining({ details: expect.objectContaining({ path: "damping.reuseThreshold" }) }));
    expect(() => dampingConfig({ halfLifeMs: -1 }, "federation.damping")).toThrow(/federation\.damping\.halfLifeMs/);
  });
});
