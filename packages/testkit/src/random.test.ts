import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SeededRandom } from "./random.js";

describe("SeededRandom", () => {
  it("is deterministic for a seed and differs across seeds", () => {
    const a = new SeededRandom(42);
    const b = new SeededRandom(42);
    const c = new SeededRandom(43);
    const sa = Array.from({ length: 20 }, () => a.nextUint32());
    const sb = Array.from({ length: 20 }, () => b.nextUint32());
    const sc = Array.from({ length: 20 }, () => c.nextUint32());
    expect(sa).toEqual(sb);
    expect(sa).not.toEqual(sc);
    expect(new SeededRandom("x").next()).toBe(new SeededRandom("x").next());
  });

  it("next() is in [0,1) and int(n) in [0,n)", () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 1000 }), (seed, n) => {
        const r = new SeededRandom(seed);
        for (let i = 0; i < 50; i++) {
          const x = r.next();
          expect(x >= 0 && x < 1).toBe(true);
          const k = r.int(n);
          expect(Number.isInteger(k) && k >= 0 && k < n).toBe(true);
        }
      }),
    );
  });

  it("is roughly uniform", () => {
    const r = new SeededRandom(7);
    const buckets = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i++) buckets[r.int(10)]!++;
    for (const b of buckets) expect(Math.abs(b - 10_000)).toBeLessThan(600);
  });

  it("shuffle is a permutation and sample gives distinct elements", () => {
    fc.assert(
      fc.property(fc.integer(), fc.array(fc.integer(), { maxLength: 50 }), fc.nat(60), (seed, xs, k) => {
        const r = new SeededRandom(seed);
        expect(r.shuffle(xs).sort()).toEqual(xs.slice().sort());
        const idx = xs.map((_, i) => i);
        const s = r.sample(idx, k);
        expect(s.length).toBe(Math.min(k, xs.length));
        expect(new Set(s).size).toBe(s.length);
      }),
    );
  });

  it("fork gives an independent deterministic stream", () => {
    const a = new SeededRandom(5);
    const f1 = a.fork();
    const b = new SeededRandom(5);
    const f2 = b.fork();
    expect(f1.next()).toBe(f2.next());
    expect(a.next()).toBe(b.next());
  });

  it("rejects bad input with MpregError", () => {
    const r = new SeededRandom(1);
    expect(() => r.int(0)).toThrowError(/positive integer/);
    expect(() => r.pick([])).toThrowError(/empty/);
    expect(() => new SeededRandom(Number.NaN)).toThrowError(/finite/);
  });
});
