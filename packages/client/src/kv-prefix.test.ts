import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { kvPrefixEnd } from "./kv-prefix.js";

const utf8 = new TextEncoder();

/** The store's key order: UTF-8 bytes. */
function cmp(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

const str = fc.string({ unit: "binary", maxLength: 6 });

describe("kvPrefixEnd", () => {
  it("is above every key with the prefix and at or below every greater key without it", () => {
    fc.assert(
      fc.property(str, str, str, (prefix, suffix, other) => {
        const end = kvPrefixEnd(prefix);
        if (end === undefined) {
          expect([...prefix].every((c) => c === "\u{10ffff}")).toBe(true);
          return;
        }
        expect(cmp(prefix + suffix, end)).toBeLessThan(0);
        // A key greater than the prefix that does not start with it is not below `end`.
        if (!other.startsWith(prefix) && cmp(other, prefix) > 0) expect(cmp(other, end)).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 2000 },
    );
  });

  it("handles the edges", () => {
    expect(kvPrefixEnd("a/")).toBe("a0");
    expect(kvPrefixEnd("")).toBeUndefined();
    expect(kvPrefixEnd("a\u{10ffff}")).toBe("b");
    expect(kvPrefixEnd("\u{d7ff}")).toBe("\u{e000}");
  });
});
