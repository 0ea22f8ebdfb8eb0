/** ReverseHops: bounded, keeps the most recently seen sources, forgets a closed link's. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ReverseHops } from "./reverse-hops.js";

describe("ReverseHops", () => {
  it("remembers the last link per source and forgets a closed link's sources", () => {
    const r = new ReverseHops(8);
    r.note("A", "B");
    r.note("A", "C");
    r.note("D", "B");
    expect(r.get("A")).toBe("C");
    r.dropLink("B");
    expect(r.get("D")).toBeUndefined();
    expect(r.get("A")).toBe("C");
    expect(() => new ReverseHops(0)).toThrow(RangeError);
  });

  it("never holds more than its capacity and keeps the most recently seen sources", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.tuple(fc.constantFrom("a", "b", "c", "d", "e", "f", "g", "h", "i", "j"), fc.constantFrom("x", "y")), { maxLength: 60 }), (cap, notes) => {
        const r = new ReverseHops(cap);
        for (const [s, l] of notes) r.note(s, l);
        expect(r.size).toBeLessThanOrEqual(cap);
        // The model: the last `cap` distinct sources, each with its last link.
        const last = new Map<string, string>();
        for (const [s, l] of notes) {
          last.delete(s);
          last.set(s, l);
        }
        const kept = [...last].slice(-cap);
        for (const [s, l] of kept) expect(r.get(s)).toBe(l);
        expect(r.size).toBe(kept.length);
      }),
    );
  });
});
