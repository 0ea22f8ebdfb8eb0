import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { UrlPool, urlKey } from "./url-pool.js";

const port = fc.integer({ min: 1, max: 40 });
const url = port.map((p) => `ws://10.0.0.${p}:9000`);

/** A deterministic [0, 1) source from a seed list. */
function randoms(xs: number[]): () => number {
  let i = 0;
  return () => xs[i++ % xs.length]!;
}

describe("UrlPool", () => {
  it("keeps seeds, holds at most maxUrls, never holds one URL twice (in any spelling)", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(url, { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 4, max: 12 }),
        fc.array(fc.array(fc.oneof(url, url.map((u) => `${u}/`), fc.constant("http://x"), fc.constant(7)), { maxLength: 20 }), { maxLength: 5 }),
        (seeds, max, refreshes) => {
          const pool = new UrlPool(seeds, max);
          for (const r of refreshes) {
            const before = new Set(pool.urls().map((u) => urlKey(u)));
            const { added, removed } = pool.setDiscovered(r);
            const urls = pool.urls();
            expect(urls.length).toBeLessThanOrEqual(max);
            expect(urls.slice(0, seeds.length)).toEqual(seeds);
            const keys = urls.map((u) => urlKey(u));
            expect(new Set(keys).size).toBe(keys.length);
            for (const a of added) expect(before.has(urlKey(a))).toBe(false);
            for (const d of removed) expect(keys).not.toContain(urlKey(d));
            for (const u of urls) expect(pool.has(u)).toBe(true);
          }
        },
      ),
    );
  });

  it("picks among the fewest failures, never the URL to avoid when there is another", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(url, { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat({ max: 5 }), { maxLength: 12 }),
        fc.array(fc.double({ min: 0, max: 0.9999, noNaN: true }), { minLength: 1, maxLength: 5 }),
        fc.nat({ max: 5 }),
        (urls, failing, rs, avoidIdx) => {
          const pool = new UrlPool(urls);
          for (const i of failing) pool.failed(urls[i % urls.length]!);
          const avoid = urls[avoidIdx % urls.length]!;
          const u = pool.pick(randoms(rs), avoid);
          expect(urls).toContain(u);
          if (urls.length > 1) expect(u).not.toBe(avoid);
          const others = urls.filter((x) => urls.length === 1 || x !== avoid);
          expect(pool.failures(u)).toBe(Math.min(...others.map((x) => pool.failures(x))));
        },
      ),
    );
  });

  it("tries every URL once before any twice when each try fails", () => {
    fc.assert(
      fc.property(fc.uniqueArray(url, { minLength: 1, maxLength: 8 }), fc.array(fc.double({ min: 0, max: 0.9999, noNaN: true }), { minLength: 1 }), (urls, rs) => {
        const pool = new UrlPool(urls);
        const random = randoms(rs);
        const tried: string[] = [];
        let last: string | undefined;
        for (let i = 0; i < urls.length; i++) {
          const u = pool.pick(random, last);
          tried.push(u);
          pool.failed(u);
          last = u;
        }
        expect(new Set(tried).size).toBe(urls.length);
        pool.succeeded(tried[0]!);
        expect(pool.pick(random, undefined)).toBe(tried[0]);
      }),
    );
  });

  it("refuses bad seeds with 1002 naming them", () => {
    expect(() => new UrlPool([])).toThrow(expect.objectContaining({ code: 1002, details: expect.objectContaining({ path: "urls" }) }));
    expect(() => new UrlPool(["ws://a:1", "tcp://b"])).toThrow(expect.objectContaining({ details: expect.objectContaining({ path: "urls.1" }) }));
    expect(() => new UrlPool(["ws://a:1", "ws://b:1"], 1)).toThrow(expect.objectContaining({ code: 1002 }));
    expect(urlKey("ws://h:1")).toBe(urlKey("ws://h:1/"));
    expect(urlKey("not a url")).toBeUndefined();
  });
});
