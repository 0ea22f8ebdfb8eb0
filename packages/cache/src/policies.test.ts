import { describe, expect, it } from "vitest";
import { FrequencySketch } from "./frequency-sketch.js";
import { hashKey } from "./key-hash.js";
import { MemoryCache } from "./memory-cache.js";
import type { PolicyName } from "./eviction-policy.js";
import type { S4lruPolicy } from "./s4lru-policy.js";
import type { TinyLfuPolicy } from "./tinylfu-policy.js";

function cache(policy: PolicyName, maxEntries: number, extra: { now?: () => number; maxBytes?: number } = {}) {
  return new MemoryCache<number | string>({ policy, maxEntries, ...extra });
}

describe("LRU", () => {
  it("evicts the least recently used", () => {
    const c = cache("lru", 5);
    for (let i = 0; i < 5; i++) c.set(`k${i}`, i);
    c.get("k0");
    c.set("k5", 5);
    expect(c.has("k1")).toBe(false);
    expect(c.has("k0")).toBe(true);
    expect(c.size).toBe(5);
  });
});

describe("S4LRU", () => {
  it("promotes one segment per hit up to the top, and demotes overflow downwards", () => {
    const c = cache("s4lru", 8); // segments of 2 entries
    const p = c.policyInstance as S4lruPolicy<unknown>;
    c.set("k", 0);
    const seg = () => p.segmentOf(c.peekEntry("k")!);
    expect(seg()).toBe(0);
    for (const want of [1, 2, 3, 3]) {
      c.get("k");
      expect(seg()).toBe(want);
    }
    // Push three more entries to segment 1: its cap (2) demotes its tail to segment 0.
    for (const k of ["a", "b", "c"]) {
      c.set(k, 1);
      c.get(k);
    }
    expect(p.segmentCounts()).toEqual([1, 2, 0, 1]);
    expect(p.segmentOf(c.peekEntry("a")!)).toBe(0);
  });

  it("evicts the tail of the lowest segment; promoted entries survive a scan", () => {
    const c = cache("s4lru", 8);
    c.set("hot", 0);
    c.get("hot");
    for (let i = 0; i < 100; i++) c.set(`scan${i}`, i);
    expect(c.has("hot")).toBe(true);
    expect(c.size).toBe(8);
  });

  it("keeps the entry limit over many distinct puts (the original leaked to ~501 entries)", () => {
    const c = cache("s4lru", 8);
    for (let i = 0; i < 1000; i++) c.set(`k${i}`, i);
    expect(c.size).toBe(8);
  });
});

describe("W-TinyLFU", () => {
  it("a scan of one-time keys does not displace frequently used entries (admission)", () => {
    const t = cache("tinylfu", 100);
    const l = cache("lru", 100);
    const hotHits = [0, 0];
    [t, l].forEach((c, n) => {
      for (let i = 0; i < 80; i++) c.set(`hot${i}`, i);
      // A scan of 2000 one-time keys mixed with a round-robin over the 80 hot keys.
      for (let i = 0; i < 2000; i++) {
        if (c.get(`scan${i}`) === undefined) c.set(`scan${i}`, i);
        const h = `hot${i % 80}`;
        if (c.get(h) === undefined) c.set(h, i);
        else if (i >= 1000) hotHits[n]!++;
      }
    });
    expect(hotHits[0]).toBeGreaterThanOrEqual(950); // W-TinyLFU: the hot set stays
    expect(hotHits[1]).toBe(0); // LRU: the scan flushes every hot key before its next use
  });

  it("admits a candidate whose estimated frequency beats the victim's, and rejects one that does not", () => {
    const c = cache("tinylfu", 100);
    const p = c.policyInstance as TinyLfuPolicy<unknown>;
    for (let i = 0; i < 100; i++) c.set(`k${i}`, i);
    for (let i = 0; i < 100; i++) c.get(`k${i}`);
    // A cold key is put: it goes through the window and loses against the main victim.
    c.set("cold", 1);
    c.set("cold2", 1);
    expect(c.has("cold")).toBe(false);
    // A key missed often (the sketch counts misses) wins its place.
    for (let r = 0; r < 5; r++) c.get("wanted");
    c.set("wanted", 1);
    c.set("pusher", 1);
    expect(c.has("wanted")).toBe(true);
    expect(p.segmentOf(c.peekEntry("wanted")!)).toBe("probation");
    expect(c.size).toBe(100);
  });

  it("a hit in probation promotes to protected", () => {
    const c = cache("tinylfu", 100);
    const p = c.policyInstance as TinyLfuPolicy<unknown>;
    c.set("a", 1);
    c.set("b", 2); // window holds 1 entry: "a" moves to probation
    expect(p.segmentOf(c.peekEntry("a")!)).toBe("probation");
    expect(p.segmentOf(c.peekEntry("b")!)).toBe("window");
    c.get("a");
    expect(p.segmentOf(c.peekEntry("a")!)).toBe("protected");
  });
});

describe("GreedyDual-Size (cost)", () => {
  it("evicts the lowest cost per byte first", () => {
    const c = cache("cost", 3);
    c.set("cheap", "v", { cost: 10 });
    c.set("dear", "v", { cost: 1000 });
    c.set("mid", "v", { cost: 100 });
    c.set("new", "v", { cost: 500 });
    expect(c.has("cheap")).toBe(false);
    c.set("new2", "v", { cost: 500 });
    expect(c.has("mid")).toBe(false);
    expect(c.has("dear")).toBe(true);
  });

  it("at equal cost, the larger entry goes first", () => {
    const c = cache("cost", 3);
    c.set("big", "x".repeat(1000));
    c.set("small", "x");
    c.set("medium", "x".repeat(100));
    c.set("another", "x");
    expect(c.has("big")).toBe(false);
    expect(c.has("medium")).toBe(true);
  });

  it("ages: an expensive entry not touched since eventually leaves", () => {
    const c = cache("cost", 2);
    c.set("dear", "v", { cost: 50 });
    for (let i = 0; i < 200; i++) {
      c.set(`k${i}`, "v", { cost: 20 });
      c.get(`k${i}`);
    }
    expect(c.has("dear")).toBe(false);
  });
});

describe("LFU with aging", () => {
  it("evicts the least frequently used", () => {
    const c = cache("lfu", 3);
    c.set("a", 1);
    c.set("b", 2);
    c.set("c", 3);
    c.get("a");
    c.get("a");
    c.get("c");
    c.set("d", 4);
    expect(c.has("b")).toBe(false);
    expect(c.has("a") && c.has("c") && c.has("d")).toBe(true);
  });

  it("an entry popular long ago ages out once newer entries were used as often since", () => {
    const c = cache("lfu", 3);
    c.set("old", 0);
    for (let i = 0; i < 5; i++) c.get("old");
    let evictedOld = false;
    for (let i = 0; i < 50 && !evictedOld; i++) {
      c.set(`n${i}`, i);
      c.get(`n${i}`);
      evictedOld = !c.has("old");
    }
    expect(evictedOld).toBe(true);
  });
});

describe("TTL policy", () => {
  it("evicts the soonest-expiring first, entries without a TTL last", () => {
    let t = 0;
    const c = cache("ttl", 3, { now: () => t });
    c.set("forever", 0);
    c.set("late", 1, { ttlMs: 5000 });
    c.set("soon", 2, { ttlMs: 100 });
    c.set("x", 3, { ttlMs: 3000 });
    expect(c.has("soon")).toBe(false);
    c.set("y", 4);
    expect(c.has("x")).toBe(false);
    c.set("z", 5);
    expect(c.has("late")).toBe(false);
    c.get("forever");
    c.set("w", 6);
    expect(c.has("y")).toBe(false);
    expect(c.has("forever")).toBe(true);
    t += 1;
  });
});

describe("FrequencySketch", () => {
  it("counts, saturates at 15 and halves after its sample size", () => {
    const s = new FrequencySketch(64);
    const h = hashKey("k");
    expect(s.frequency(h)).toBe(0);
    for (let i = 0; i < 5; i++) s.increment(h);
    expect(s.frequency(h)).toBe(5);
    for (let i = 0; i < 30; i++) s.increment(h);
    expect(s.frequency(h)).toBe(15);
    s.halve();
    expect(s.frequency(h)).toBe(7);
    // Reaching the sample size triggers the periodic halving on its own.
    let prev = s.additions;
    let halved = false;
    for (let i = 0; i < 10 * s.sampleSize && !halved; i++) {
      s.increment(hashKey(`o${i}`));
      halved = s.additions < prev;
      prev = s.additions;
    }
    expect(halved).toBe(true);
    expect(s.additions).toBe(s.sampleSize / 2);
  });
});
