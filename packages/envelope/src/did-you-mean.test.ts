import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { didYouMean, editDistance } from "./did-you-mean.js";

/** Plain recursive Levenshtein, the reference (small inputs only). */
function levenshtein(a: string, b: string): number {
  const memo = new Map<string, number>();
  const go = (i: number, j: number): number => {
    if (i === 0) return j;
    if (j === 0) return i;
    const key = `${i},${j}`;
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    const d = Math.min(go(i - 1, j) + 1, go(i, j - 1) + 1, go(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1));
    memo.set(key, d);
    return d;
  };
  return go(a.length, b.length);
}

describe("editDistance", () => {
  it.each([
    ["", "", 0],
    ["abc", "", 3],
    ["kitten", "sitting", 3],
    ["ech", "echo", 1],
    ["port", "prot", 1],
    ["ca", "abc", 3],
  ])("%s → %s is %i", (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
  });

  it("is symmetric, zero only for equal strings, at most the longer length, and at most Levenshtein", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), (a, b, c) => {
        expect(editDistance(a, b)).toBe(editDistance(b, a));
        expect(editDistance(a, b) === 0).toBe(a === b);
        expect(editDistance(a, c)).toBeLessThanOrEqual(levenshtein(a, c));
        expect(editDistance(a, b)).toBeLessThanOrEqual(Math.max(a.length, b.length));
      }),
    );
  });
});

describe("didYouMean", () => {
  it("suggests the closest candidate", () => {
    expect(didYouMean("ech", ["echos", "echo", "cluster_map"])).toBe("echo");
    expect(didYouMean("prot", ["port", "host", "peers"])).toBe("port");
    expect(didYouMean("clusterid", ["clusterId", "region"])).toBe("clusterId");
    expect(didYouMean("monitoring-prot", ["monitoring-port", "port"])).toBe("monitoring-port");
  });

  it("suggests nothing when nothing is close, or for the input itself", () => {
    expect(didYouMean("frobnicate", ["echo", "add"])).toBeUndefined();
    expect(didYouMean("echo", ["echo"])).toBeUndefined();
    expect(didYouMean("x", [])).toBeUndefined();
    expect(didYouMean("a".repeat(1000), ["a".repeat(999)])).toBeUndefined();
  });

  it("always answers one of the candidates, within the edit limit", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 10 }), fc.array(fc.string({ maxLength: 10 }), { maxLength: 8 }), (input, candidates) => {
        const s = didYouMean(input, candidates);
        if (s === undefined) return;
        expect(candidates).toContain(s);
        expect(editDistance(input.toLowerCase(), s.toLowerCase())).toBeLessThanOrEqual(3);
      }),
    );
  });
});
