import fc from "fast-check";
import { decodeTime, isValid } from "ulid";
import { describe, expect, it } from "vitest";
import { idTime, newId } from "./ids.js";

describe("newId", () => {
  it("makes valid ULIDs carrying the current time, as the reference implementation reads them", () => {
    const before = Date.now();
    const id = newId();
    const after = Date.now();
    expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(isValid(id)).toBe(true);
    expect(decodeTime(id)).toBeGreaterThanOrEqual(before);
    expect(decodeTime(id)).toBeLessThanOrEqual(after);
    expect(idTime(id)).toBe(decodeTime(id));
  });

  it("property: ids made one after another are unique and strictly increasing", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), (n) => {
        let prev = newId();
        for (let i = 0; i < n; i++) {
          const id = newId();
          if (!(id > prev)) return false;
          prev = id;
        }
        return true;
      }),
      { numRuns: 20 },
    );
  });

  it("has random parts that differ between milliseconds (no fixed pattern)", () => {
    const seen = new Set<string>();
    const start = Date.now();
    let id = newId();
    while (Date.now() < start + 30) {
      const next = newId();
      if (next.slice(0, 10) !== id.slice(0, 10)) seen.add(next.slice(10));
      id = next;
    }
    // Every new millisecond draws fresh randomness: no two such random parts are equal.
    const parts = [...seen];
    expect(new Set(parts).size).toBe(parts.length);
  });

  it("idTime refuses what is not a ULID", () => {
    expect(() => idTime("not-an-id")).toThrow(/not a ULID/);
  });
});
