/**
 * The compliance suite every eviction policy passes, run through the whole local path of a
 * {@link CacheService} (L1, and L2 when the harness gives one). Plain node:assert code, so any
 * runner drives it: `runPolicyComplianceSuite("lru", harness, { describe, it })`.
 */
import assert from "node:assert/strict";
import { isMpregError } from "@mpreg/envelope";
import type { CacheService } from "./cache-service.js";
import type { PolicyName } from "./eviction-policy.js";

/** Opens a cache service whose `default` namespace uses the options given (plus the harness's policy). */
export interface PolicyComplianceHarness {
  readonly policy: PolicyName;
  open(namespace: Record<string, unknown>, now: () => number): Promise<CacheService>;
}

/** The part of a test runner the suite needs (vitest, node:test and jest all fit). */
export interface PolicyComplianceTestApi {
  describe(name: string, fn: () => void): void;
  it(name: string, fn: () => Promise<void>, timeoutMs?: number): void;
}

export interface PolicyComplianceCase {
  name: string;
  run(h: PolicyComplianceHarness): Promise<void>;
}

/** A manual clock. */
class Clock {
  t = 1_000_000;
  now = (): number => this.t;
}

function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

async function withCache(h: PolicyComplianceHarness, ns: Record<string, unknown>, fn: (c: CacheService, clock: Clock) => Promise<void>) {
  const clock = new Clock();
  const c = await h.open({ ...ns, policy: h.policy }, clock.now);
  try {
    await fn(c, clock);
  } finally {
    await c.close();
  }
}

async function value(c: CacheService, key: string): Promise<unknown> {
  const r = await c.get(key);
  return r.hit ? r.value : undefined;
}

async function rejects1002(p: Promise<unknown>, path: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(isMpregError(e), `expected an MpregError, got ${String(e)}`);
    assert.equal(e.code, 1002);
    assert.equal(e.details.path, path);
    return;
  }
  assert.fail("expected 1002");
}

/** A random workload checked after every operation against a reference map and the limits. */
async function randomWorkload(c: CacheService, maxEntries: number, maxBytes: number, seed: number, sizes: number[]): Promise<void> {
  const r = rng(seed);
  const ref = new Map<string, unknown>();
  for (let i = 0; i < 3000; i++) {
    const key = `k.${r(maxEntries * 3)}`;
    const op = r(10);
    if (op < 5) {
      const v = { i, pad: "x".repeat(sizes[r(sizes.length)] as number) };
      await c.put(key, v);
      ref.set(key, v);
    } else if (op < 9) {
      const got = await value(c, key);
      if (got !== undefined) assert.deepEqual(got, ref.get(key), `a hit returns the last value written (${key})`);
    } else {
      await c.delete(key);
      ref.delete(key);
      assert.equal(await value(c, key), undefined);
    }
    const s = c.stats();
    assert.ok(s.entries <= maxEntries, `entries ${s.entries} > ${maxEntries} after op ${i}`);
    assert.ok(s.bytes <= maxBytes, `bytes ${s.bytes} > ${maxBytes} after op ${i}`);
  }
}

/** Every case of the suite. */
export const policyComplianceCases: readonly PolicyComplianceCase[] = [
  {
    name: "put, get, overwrite, delete; hits and misses counted",
    run: (h) =>
      withCache(h, { max_entries: 100 }, async (c) => {
        assert.deepEqual(await c.get("a"), { hit: false });
        await c.put("a", 1);
        assert.deepEqual(await c.get("a"), { hit: true, value: 1 });
        await c.put("a", { two: [2] });
        assert.deepEqual(await c.get("a"), { hit: true, value: { two: [2] } });
        await c.put("n", null);
        assert.deepEqual(await c.get("n"), { hit: true, value: null });
        assert.equal(await c.delete("a"), true);
        assert.equal(await c.delete("a"), false);
        assert.deepEqual(await c.get("a"), { hit: false });
        const s = c.stats();
        assert.equal(s.hits, 3);
        assert.equal(s.misses, 2);
        assert.equal(s.entries, 1);
      }),
  },
  {
    name: "below the limits nothing is evicted; overwriting at capacity evicts nothing",
    run: (h) =>
      withCache(h, { max_entries: 50 }, async (c) => {
        for (let i = 0; i < 50; i++) await c.put(`k${i}`, i);
        for (let i = 0; i < 50; i++) assert.deepEqual(await c.get(`k${i}`), { hit: true, value: i });
        for (let i = 0; i < 50; i++) await c.put(`k${i}`, i + 1);
        for (let i = 0; i < 50; i++) assert.deepEqual(await c.get(`k${i}`), { hit: true, value: i + 1 });
        assert.equal(c.stats().evictions, 0);
        assert.equal(c.stats().entries, 50);
      }),
  },
  {
    name: "the entry limit holds after every operation; hits return the last value written",
    run: (h) => withCache(h, { max_entries: 40 }, (c) => randomWorkload(c, 40, 64 * 1024 * 1024, 11, [0, 10])),
  },
  {
    name: "the byte limit holds after every operation, with values of varied size",
    run: (h) => withCache(h, { max_entries: 10_000, max_bytes: 20_000 }, (c) => randomWorkload(c, 10_000, 20_000, 23, [0, 50, 400, 2000])),
  },
  {
    name: "evictions are counted and happen only over a limit",
    run: (h) =>
      withCache(h, { max_entries: 10 }, async (c) => {
        for (let i = 0; i < 25; i++) await c.put(`k${i}`, i);
        const s = c.stats();
        assert.equal(s.entries, 10);
        assert.equal(s.evictions, 15);
      }),
  },
  {
    name: "TTL: per entry and per namespace, on the injected clock",
    run: (h) =>
      withCache(h, { max_entries: 100, ttl_ms: 1000 }, async (c, clock) => {
        await c.put("ns-default", 1);
        await c.put("short", 2, { ttl_ms: 100 });
        await c.put("long", 3, { ttl_ms: 5000 });
        clock.t += 99;
        assert.equal(await value(c, "short"), 2);
        clock.t += 1;
        assert.equal(await value(c, "short"), undefined, "expired exactly at its deadline");
        assert.equal(await value(c, "ns-default"), 1);
        clock.t += 900;
        assert.equal(await value(c, "ns-default"), undefined);
        assert.equal(await value(c, "long"), 3);
        clock.t += 4000;
        await c.tick();
        assert.equal(c.stats().entries, 0, "a sweep drops what expired");
        assert.equal(await value(c, "long"), undefined);
      }),
  },
  {
    name: "expired entries go before live ones when the cache is full",
    run: (h) =>
      withCache(h, { max_entries: 4 }, async (c, clock) => {
        await c.put("dying", 0, { ttl_ms: 10 });
        for (let i = 0; i < 3; i++) await c.put(`live${i}`, i);
        clock.t += 10;
        await c.put("new", 9);
        for (let i = 0; i < 3; i++) assert.equal(await value(c, `live${i}`), i);
        assert.equal(c.stats().evictions, 0);
      }),
  },
  {
    name: "delete removes one key; its dependents stay",
    run: (h) =>
      withCache(h, { max_entries: 100 }, async (c) => {
        await c.put("a", 1);
        await c.put("b", 2, { dependencies: ["a"] });
        assert.equal(await c.delete("a"), true);
        assert.equal(await value(c, "b"), 2);
      }),
  },
  {
    name: "invalidate: by pattern with the router's matcher, by dependency transitively, cycles safe",
    run: (h) =>
      withCache(h, { max_entries: 100 }, async (c) => {
        for (const k of ["user.1.profile", "user.1.posts", "user.2.profile", "user", "order.1"]) await c.put(k, k);
        assert.equal(await c.invalidate({ pattern: "user.*.profile" }), 2);
        assert.equal(await value(c, "user.1.posts"), "user.1.posts");
        assert.equal(await c.invalidate({ pattern: "user.#" }), 2, "`#` matches zero segments too");
        assert.equal(await value(c, "order.1"), "order.1");
        // a <- b <- c, and a cycle x <-> y hanging off c
        await c.put("a", 1);
        await c.put("b", 2, { dependencies: ["a"] });
        await c.put("c", 3, { dependencies: ["b", "y"] });
        await c.put("x", 4, { dependencies: ["c", "y"] });
        await c.put("y", 5, { dependencies: ["x"] });
        await c.put("z", 6, { dependencies: ["unrelated"] });
        assert.equal(await c.invalidate({ dependency: "a" }), 5);
        for (const k of ["a", "b", "c", "x", "y"]) assert.equal(await value(c, k), undefined, k);
        assert.equal(await value(c, "z"), 6);
        await c.put("w", 7, { dependencies: ["external.table"] });
        assert.equal(await c.invalidate({ dependency: "external.table" }), 1, "a dependency need not be cached");
        assert.equal(await c.invalidate({}), 2, "no pattern and no dependency: everything");
        assert.equal(c.stats().entries, 0);
        await rejects1002(c.invalidate({ pattern: "a.b*" }), "pattern");
      }),
  },
  {
    name: "a value over max_bytes is refused with 1002 naming value; nothing changes",
    run: (h) =>
      withCache(h, { max_entries: 100, max_bytes: 1000 }, async (c) => {
        await c.put("k", "small");
        await rejects1002(c.put("k", "x".repeat(2000)), "value");
        assert.equal(await value(c, "k"), "small");
        await rejects1002(c.put("k", 1, { ttl_ms: -1 }), "ttl_ms");
        await rejects1002(c.put("k", 1, { cost: 0 }), "cost");
        await rejects1002(c.put("", 1), "key");
        await rejects1002(c.get("k", { namespace: "nope" }), "namespace");
      }),
  },
];

/** Registers every case under `describe(\`cache policy compliance: ${name}\`)`. */
export function runPolicyComplianceSuite(name: string, harness: () => PolicyComplianceHarness, api: PolicyComplianceTestApi): void {
  api.describe(`cache policy compliance: ${name}`, () => {
    for (const c of policyComplianceCases) api.it(c.name, () => c.run(harness()), 30_000);
  });
}
