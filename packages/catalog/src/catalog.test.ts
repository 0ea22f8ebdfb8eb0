import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { isMpregError } from "@mpreg/envelope";
import { Catalog, deltaToItem, itemToDelta, paginate, type CatalogDelta } from "./catalog.js";
import { entryKey, normalizeEntry, type CatalogEntry, type FunctionEntry } from "./entries.js";
import { parseConstraint, parseVersion, satisfies } from "./semver.js";

const T0 = 1_000_000;

function fn(node: string, name: string, version = "1.0.0", resources: string[] = [], cluster = "c1"): CatalogEntry {
  return normalizeEntry({ kind: "function", name, function_id: `${name}-id`, version, resources, node_id: node, cluster_id: cluster });
}

function upsert(entry: CatalogEntry, version: number, ttl_ms = 10_000): CatalogDelta {
  return { kind: "upsert", key: entryKey(entry), owner: entry.node_id, version, ttl_ms, entry };
}

function remove(entry: CatalogEntry, version: number, ttl_ms = 10_000): CatalogDelta {
  return { kind: "remove", key: entryKey(entry), owner: entry.node_id, version, ttl_ms };
}

const mk = (opts: Partial<ConstructorParameters<typeof Catalog>[0]> = {}) =>
  new Catalog({ nodeId: "self", clusterId: "c1", ...opts });

// ------------------------------------------------------------------ generators

const owners = ["a", "b", "c"];
const entryArb: fc.Arbitrary<CatalogEntry> = fc
  .oneof(
    fc.record({
      kind: fc.constant("function"),
      name: fc.constantFrom("f", "g", "h.x"),
      function_id: fc.constantFrom("id1", "id2"),
      version: fc.constantFrom("1.0.0", "1.2.0", "2.0.0", "0.3.1"),
      resources: fc.subarray(["cpu", "gpu", "db", "eu"]),
      node_id: fc.constantFrom(...owners),
      cluster_id: fc.constantFrom("c1", "c2"),
      description: fc.option(fc.constantFrom("d1", "d2"), { nil: undefined }),
    }),
    fc.record({
      kind: fc.constant("node"),
      node_id: fc.constantFrom(...owners),
      cluster_id: fc.constantFrom("c1", "c2"),
      region: fc.constantFrom("eu", "us", ""),
      urls: fc.subarray(["ws://a:1", "ws://b:2"]),
      resources: fc.subarray(["cpu", "gpu"]),
      load: fc.nat(5),
      status: fc.constantFrom("ok", "degraded"),
    }),
    fc.record({
      kind: fc.constant("topic"),
      node_id: fc.constantFrom(...owners),
      cluster_id: fc.constant("c1"),
      subscription_id: fc.constantFrom("s1", "s2"),
      patterns: fc.subarray(["a.*", "a.#", "b.c"]),
    }),
    fc.record({ kind: fc.constant("queue"), name: fc.constantFrom("q1", "q2"), node_id: fc.constantFrom(...owners), cluster_id: fc.constant("c1") }),
    fc.record({
      kind: fc.constant("cache"),
      namespace: fc.constantFrom("n1", "n2"),
      node_id: fc.constantFrom(...owners),
      cluster_id: fc.constant("c1"),
      scope: fc.constantFrom("local", "cluster"),
    }),
  )
  .map((e) => normalizeEntry(e));

const deltaArb: fc.Arbitrary<CatalogDelta> = fc
  .record({ entry: entryArb, version: fc.integer({ min: 1, max: 12 }), remove: fc.boolean(), ttl: fc.constantFrom(1000, 5000) })
  .map(({ entry, version, remove: r, ttl }) => (r ? remove(entry, version, ttl) : upsert(entry, version, ttl)));

/** Deterministic Fisher-Yates for a seed (the property's own randomness stays in fast-check). */
function shuffle<T>(xs: T[], seed: number): T[] {
  const out = [...xs];
  let s = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

// ------------------------------------------------------------------ tests

describe("local entries and gossip between two catalogs", () => {
  it("registerLocal produces a delta that another catalog applies", () => {
    const a = new Catalog({ nodeId: "a", clusterId: "c1" });
    const b = new Catalog({ nodeId: "b", clusterId: "c1" });
    const d = a.registerLocal({ kind: "function", name: "echo", function_id: "echo", version: "v1.2", resources: ["gpu", "cpu", "gpu"] }, T0);
    expect(d.kind).toBe("upsert");
    expect(d.owner).toBe("a");
    expect(d.entry).toMatchObject({ version: "1.2.0", resources: ["cpu", "gpu"], node_id: "a", cluster_id: "c1" });
    expect(b.applyDelta(d, T0)).toMatchObject({ status: "applied", change: { type: "added" } });
    expect(b.applyDelta(d, T0).status).toBe("stale");
    expect(b.queryFunctions({ name: "echo" })).toEqual([d.entry]);
    const d2 = a.registerLocal({ kind: "function", name: "echo", function_id: "echo", version: "1.2", resources: ["db"] }, T0 + 1);
    expect(b.applyDelta(d2, T0 + 1)).toEqual({ status: "applied", change: { type: "updated", key: d.key, entry: d2.entry, previous: d.entry } });
    expect(a.queryFunctions({ name: "echo" })).toEqual([d2.entry]);
  });

  it("versions increase strictly and are at least now", () => {
    const a = mk();
    const d1 = a.registerLocal({ kind: "queue", name: "q" }, T0);
    const d2 = a.registerLocal({ kind: "queue", name: "q" }, T0);
    const d3 = a.registerLocal({ kind: "queue", name: "q" }, T0 - 500);
    expect(d1.version).toBeGreaterThanOrEqual(T0);
    expect(d2.version).toBeGreaterThan(d1.version);
    expect(d3.version).toBeGreaterThan(d2.version);
  });

  it("refuses bad local entries with 1002 and too many with 1007", () => {
    const a = mk({ maxLocalEntries: 2 });
    for (const bad of [
      { kind: "function", name: "f", function_id: "f", version: "1.x" },
      { kind: "function", name: "", function_id: "f", version: "1" },
      { kind: "queue", name: "q", node_id: "other" },
      { kind: "nope" },
    ]) {
      try {
        a.registerLocal(bad as never, T0);
        throw new Error("accepted");
      } catch (e) {
        expect(isMpregError(e) && e.code).toBe(1002);
      }
    }
    a.registerLocal({ kind: "queue", name: "q1" }, T0);
    a.registerLocal({ kind: "queue", name: "q2" }, T0);
    a.registerLocal({ kind: "queue", name: "q2" }, T0); // update of an existing one is fine
    expect(() => a.registerLocal({ kind: "queue", name: "q3" }, T0)).toThrowError(expect.objectContaining({ code: 1007 }));
  });

  it("unregisterLocal leaves a tombstone that stops an older upsert from resurrecting the entry", () => {
    const a = new Catalog({ nodeId: "a", clusterId: "c1" });
    const b = new Catalog({ nodeId: "b", clusterId: "c1" });
    const up = a.registerLocal({ kind: "queue", name: "q" }, T0);
    const rm = a.unregisterLocal(entryKey(up.entry!), T0 + 1)!;
    expect(rm.kind).toBe("remove");
    expect(a.unregisterLocal(entryKey(up.entry!), T0 + 2)).toBeNull();
    expect(b.applyDelta(rm, T0).status).toBe("applied");
    expect(b.applyDelta(up, T0).status).toBe("stale");
    expect(b.queues()).toEqual([]);
    expect(b.stats().tombstones).toBe(1);
    // the owner re-registers later: accepted
    const up2 = a.registerLocal({ kind: "queue", name: "q" }, T0 + 5);
    expect(b.applyDelta(up2, T0 + 5).status).toBe("applied");
    expect(b.queues().map((q) => q.name)).toEqual(["q"]);
  });

  it("nextExpiryAt is the first time expire has something to do (remote entries and tombstones, never local ones)", () => {
    const b = new Catalog({ nodeId: "b", clusterId: "c1", tombstoneRetentionMs: 60_000 });
    expect(b.nextExpiryAt()).toBe(Infinity);
    b.registerLocal({ kind: "queue", name: "mine" }, T0, 1000);
    expect(b.nextExpiryAt()).toBe(Infinity);
    const q = normalizeEntry({ kind: "queue", name: "q", node_id: "a", cluster_id: "c1" });
    const c = normalizeEntry({ kind: "queue", name: "c", node_id: "a", cluster_id: "c1" });
    b.applyDelta(upsert(q, 1, 10_000), T0);
    b.applyDelta(upsert(c, 1, 20_000), T0);
    expect(b.nextExpiryAt()).toBe(T0 + 10_000);
    expect(b.expire(T0 + 9_999)).toEqual([]);
    expect(b.expire(T0 + 10_000).map((x) => x.key)).toEqual([entryKey(q)]);
    expect(b.nextExpiryAt()).toBe(T0 + 20_000);
    // A removal leaves a tombstone that expires after the retention.
    expect(b.applyDelta({ kind: "remove", key: entryKey(c), owner: "a", version: 2, ttl_ms: 20_000 }, T0 + 15_000).status).toBe("applied");
    expect(b.nextExpiryAt()).toBe(T0 + 15_000 + 60_000);
    b.expire(T0 + 75_000);
    expect(b.nextExpiryAt()).toBe(Infinity);
  });

  it("refreshLocal re-announces after the refresh fraction of the TTL, never before", () => {
    const a = mk({ refreshFraction: 0.5 });
    a.registerLocal({ kind: "queue", name: "q" }, T0, 10_000);
    a.registerLocal({ kind: "cache", namespace: "n", scope: "local" }, T0 + 2000, 10_000);
    expect(a.refreshLocal(T0 + 4999)).toEqual([]);
    expect(a.nextRefreshAt()).toBe(T0 + 5000);
    const r = a.refreshLocal(T0 + 5000);
    expect(r.map((d) => d.entry?.kind)).toEqual(["queue"]);
    expect(a.refreshLocal(T0 + 7000).map((d) => d.entry?.kind)).toEqual(["cache"]);
    expect(a.refreshLocal(T0 + 7000, { force: true })).toHaveLength(2);
    // a receiver keeps the entry alive thanks to the refresh
    const b = new Catalog({ nodeId: "b", clusterId: "c1" });
    const q = { kind: "queue", name: "q", node_id: "self", cluster_id: "c1" } as const;
    b.applyDelta(upsert(normalizeEntry(q), 1, 10_000), T0);
    b.applyDelta(upsert(normalizeEntry(q), 2, 10_000), T0 + 5000);
    expect(b.expire(T0 + 10_000)).toEqual([]);
    expect(b.expire(T0 + 15_000)).toHaveLength(1);
  });
});

describe("host errors", () => {
  it("a non-finite now is refused with 1002", () => {
    const c = mk();
    for (const now of [Number.NaN, Infinity, "1" as unknown as number]) {
      expect(() => c.registerLocal({ kind: "queue", name: "q" }, now)).toThrowError(expect.objectContaining({ code: 1002 }));
      expect(() => c.applyDelta(upsert(fn("a", "f"), 1), now)).toThrowError(expect.objectContaining({ code: 1002 }));
      expect(() => c.expire(now)).toThrowError(expect.objectContaining({ code: 1002 }));
    }
    expect(c.size).toBe(0);
  });

  it("options are checked", () => {
    expect(() => new Catalog({ nodeId: "", clusterId: "c" })).toThrowError(expect.objectContaining({ code: 1002 }));
    expect(() => mk({ maxEntries: -1 })).toThrowError(expect.objectContaining({ code: 1002 }));
    expect(() => mk({ refreshFraction: 1 })).toThrowError(expect.objectContaining({ code: 1002 }));
  });
});

describe("applyDelta validation", () => {
  const good = upsert(fn("a", "f"), 1);
  it.each([
    ["not an object", 42],
    ["bad kind", { ...good, kind: "put" }],
    ["negative version", { ...good, version: -1 }],
    ["fractional version", { ...good, version: 1.5 }],
    ["zero ttl", { ...good, ttl_ms: 0 }],
    ["NaN ttl", { ...good, ttl_ms: Number.NaN }],
    ["foreign key", { ...good, owner: "b" }],
    ["key not matching entry", { ...good, key: entryKey(fn("a", "g")) }],
    ["malformed key", { ...good, key: "function/a" }],
    ["bad entry", { ...good, entry: { ...good.entry, version: "one" } }],
    ["missing entry", { ...good, entry: undefined }],
    ["remove with garbage key", { kind: "remove", key: "%%%", owner: "a", version: 1, ttl_ms: 1 }],
  ])("%s → invalid with a 1002 MpregError", (_label, raw) => {
    const c = mk();
    const r = c.applyDelta(raw, T0);
    expect(r.status).toBe("invalid");
    expect(r.error?.code).toBe(1002);
    expect(c.size).toBe(0);
    expect(c.stats().invalid).toBe(1);
  });

  it("clamps a TTL above maxTtlMs", () => {
    const c = mk({ maxTtlMs: 5000 });
    c.applyDelta(upsert(fn("a", "f"), 1, 1e12), T0);
    expect(c.expire(T0 + 5000)).toHaveLength(1);
  });
});

describe("order independence (CRDT property)", () => {
  it("any permutation with duplicates of a set of deltas gives an equal catalog", () => {
    fc.assert(
      fc.property(
        fc.array(deltaArb, { minLength: 1, maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.integer(),
        (set, dupIdx, seed) => {
          const a = mk();
          const b = mk();
          a.applyDeltas(set, T0);
          const replay = shuffle([...set, ...dupIdx.map((i) => set[i % set.length] as CatalogDelta)], seed);
          b.applyDeltas(replay, T0);
          expect(b.snapshot(T0).deltas).toEqual(a.snapshot(T0).deltas);
          expect(b.digest()).toEqual(a.digest());
          expect(b.summary()).toEqual(a.summary());
          // the winner per key is the highest version
          for (const d of a.snapshot(T0).deltas) {
            const max = Math.max(...set.filter((x) => x.key === d.key).map((x) => x.version));
            expect(d.version).toBe(max);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("applying deltas at different times still yields the same entries and versions", () => {
    fc.assert(
      fc.property(fc.array(deltaArb, { minLength: 1, maxLength: 30 }), fc.integer(), (set, seed) => {
        const a = mk();
        const b = mk();
        set.forEach((d, i) => a.applyDelta(d, T0 + i));
        shuffle(set, seed).forEach((d, i) => b.applyDelta(d, T0 + 100 - i));
        expect(b.digest()).toEqual(a.digest());
        const entries = (c: Catalog) => [...c.digest().keys()].sort().map((k) => c.get(k) ?? null);
        expect(entries(b)).toEqual(entries(a));
      }),
      { numRuns: 200 },
    );
  });
});

describe("expiry and departures", () => {
  it("expire drops remote entries at expires_at and keeps local ones", () => {
    const c = mk();
    c.registerLocal({ kind: "queue", name: "mine" }, T0, 1000);
    c.applyDelta(upsert(fn("a", "f"), 1, 1000), T0);
    c.applyDelta(upsert(fn("a", "g"), 2, 2000), T0);
    expect(c.queryFunctions({ now: T0 + 1000 }).map((e) => e.name)).toEqual(["g"]); // hidden lazily
    expect(c.expire(T0 + 999)).toEqual([]);
    expect(c.expire(T0 + 1000).map((x) => (x.entry as FunctionEntry).name)).toEqual(["f"]);
    expect(c.expire(T0 + 10_000).map((x) => (x.entry as FunctionEntry).name)).toEqual(["g"]);
    expect(c.queues().map((q) => q.name)).toEqual(["mine"]);
    expect(c.stats().expired).toBe(2);
  });

  it("tombstones are kept for the retention time, then forgotten", () => {
    const c = mk({ tombstoneRetentionMs: 5000 });
    c.applyDelta(remove(fn("a", "f"), 3, 1000), T0);
    expect(c.stats().tombstones).toBe(1);
    c.expire(T0 + 4999);
    expect(c.stats().tombstones).toBe(1);
    c.expire(T0 + 5000);
    expect(c.stats().tombstones).toBe(0);
  });

  it("removeNode drops everything the node owned and refuses its late deltas, not its new ones", () => {
    const c = mk();
    const f = fn("a", "f");
    c.applyDelta(upsert(f, 5), T0);
    c.applyDelta(upsert(fn("a", "g"), 6), T0);
    c.applyDelta(upsert(fn("b", "f"), 1), T0);
    c.applyDelta(remove(fn("a", "h"), 7), T0);
    const removed = c.removeNode("a");
    expect(removed.map((r) => r.key).sort()).toEqual([entryKey(f), entryKey(fn("a", "g"))].sort());
    expect(c.queryFunctions().map((e) => e.node_id)).toEqual(["b"]);
    expect(c.stats().tombstones).toBe(0);
    expect(c.applyDelta(upsert(f, 5), T0).status).toBe("stale"); // late copy
    expect(c.applyDelta(upsert(fn("a", "z"), 7), T0).status).toBe("stale");
    expect(c.applyDelta(upsert(f, 8), T0).status).toBe("applied"); // restarted node
    expect(c.removeNode("self")).toEqual([]);
  });
});

describe("own entries seen from peers", () => {
  it("a peer's newer copy of an entry we still own makes us re-announce above it", () => {
    const c = new Catalog({ nodeId: "a", clusterId: "c1" });
    const d = c.registerLocal({ kind: "queue", name: "q" }, T0);
    expect(c.applyDelta(d, T0)).toEqual({ status: "own" }); // our own echo
    const other = normalizeEntry({ kind: "queue", name: "q", node_id: "a", cluster_id: "c1" });
    const r = c.applyDelta(upsert(other, d.version + 100), T0);
    expect(r.status).toBe("own");
    expect(r.correction?.kind).toBe("upsert");
    expect(r.correction!.version).toBeGreaterThan(d.version + 100);
  });

  it("an entry we no longer have (e.g. from before a restart) is withdrawn", () => {
    const c = new Catalog({ nodeId: "a", clusterId: "c1" });
    const r = c.applyDelta(upsert(fn("a", "old"), T0 + 50), T0);
    expect(r.status).toBe("own");
    expect(r.correction).toMatchObject({ kind: "remove", key: entryKey(fn("a", "old")) });
    expect(r.correction!.version).toBeGreaterThan(T0 + 50);
    expect(c.queryFunctions()).toEqual([]);
    // and the correction wins on a third node
    const x = mk();
    x.applyDelta(upsert(fn("a", "old"), T0 + 50), T0);
    x.applyDelta(r.correction, T0);
    expect(x.queryFunctions()).toEqual([]);
  });
});

describe("bounds", () => {
  it("refuses new remote entries when full (counted), updates existing ones, never touches local ones", () => {
    const c = mk({ maxEntries: 2 });
    c.registerLocal({ kind: "queue", name: "mine" }, T0);
    expect(c.applyDelta(upsert(fn("a", "f"), 1), T0).status).toBe("applied");
    expect(c.applyDelta(upsert(fn("a", "g"), 1), T0).status).toBe("applied");
    expect(c.applyDelta(upsert(fn("a", "h"), 1), T0).status).toBe("dropped_full");
    expect(c.applyDelta(upsert(fn("a", "f", "3.0.0"), 2), T0).status).toBe("dropped_full"); // a different key (version)
    expect(c.applyDelta(upsert(fn("a", "f"), 2), T0).status).toBe("applied"); // same key, newer
    c.registerLocal({ kind: "queue", name: "mine2" }, T0);
    expect(c.stats()).toMatchObject({ remoteEntries: 2, localEntries: 2, droppedFull: 2 });
  });

  it("keeps at most maxTombstones, forgetting the oldest", () => {
    const c = mk({ maxTombstones: 3 });
    for (let i = 0; i < 5; i++) c.applyDelta(remove(fn("a", `f${i}`), 1), T0);
    expect(c.stats()).toMatchObject({ tombstones: 3, tombstonesEvicted: 2 });
    expect([...c.digest().keys()].sort()).toEqual([2, 3, 4].map((i) => entryKey(fn("a", `f${i}`))).sort());
  });
});

describe("snapshots and anti-entropy", () => {
  it("snapshot → JSON → applySnapshot reproduces the catalog", () => {
    fc.assert(
      fc.property(fc.array(deltaArb, { maxLength: 30 }), (set) => {
        const a = mk();
        a.applyDeltas(set, T0);
        a.registerLocal({ kind: "queue", name: "mine" }, T0);
        const wire = JSON.parse(JSON.stringify(a.snapshot(T0)));
        const b = new Catalog({ nodeId: "joiner", clusterId: "c1" });
        const counts = b.applySnapshot(wire, T0);
        expect(counts.invalid).toBe(0);
        expect(b.digest()).toEqual(a.digest());
        expect(b.snapshot(T0).deltas).toEqual(a.snapshot(T0).deltas);
      }),
      { numRuns: 100 },
    );
  });

  it("a node restoring its own old snapshot withdraws what it no longer registers", () => {
    const before = new Catalog({ nodeId: "a", clusterId: "c1" });
    before.registerLocal({ kind: "queue", name: "old" }, T0);
    before.registerLocal({ kind: "queue", name: "kept" }, T0);
    const saved = JSON.parse(JSON.stringify(before.snapshot(T0)));
    const after = new Catalog({ nodeId: "a", clusterId: "c1" });
    after.registerLocal({ kind: "queue", name: "kept" }, T0 + 10);
    const r = after.applySnapshot(saved, T0 + 10);
    expect(r.own).toBe(2);
    expect(r.corrections.map((d) => [d.kind, d.key])).toEqual([["remove", entryKey(normalizeEntry({ kind: "queue", name: "old", node_id: "a", cluster_id: "c1" }))]]);
    expect(after.queues().map((q) => q.name)).toEqual(["kept"]);
  });

  it("snapshot deltas carry the remaining TTL", () => {
    const a = mk();
    a.applyDelta(upsert(fn("a", "f"), 1, 10_000), T0);
    expect(a.snapshot(T0 + 4000).deltas[0]?.ttl_ms).toBe(6000);
    expect(a.snapshot(T0 + 10_000).deltas).toEqual([]);
  });

  it("applySnapshot refuses a non-snapshot with 1002", () => {
    expect(() => mk().applySnapshot({ deltas: [] }, T0)).toThrowError(expect.objectContaining({ code: 1002 }));
    expect(() => mk().applySnapshot({ format: "mpreg-catalog/1", deltas: 3 }, T0)).toThrowError(expect.objectContaining({ code: 1002 }));
  });

  it("digest exchange makes two partial replicas equal, sending only what is missing", () => {
    fc.assert(
      fc.property(fc.array(deltaArb, { minLength: 1, maxLength: 40 }), fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }), (set, side) => {
        const a = mk();
        const b = mk();
        set.forEach((d, i) => (side[i] ? a : b).applyDelta(d, T0));
        const toB = a.deltasSince(b.digest(), T0);
        const toA = b.deltasSince(a.digest(), T0);
        for (const d of toB) expect(b.applyDelta(d, T0).status).toBe("applied");
        for (const d of toA) expect(a.applyDelta(d, T0).status).toBe("applied");
        expect(a.digest()).toEqual(b.digest());
        expect(a.deltasSince(b.digest(), T0)).toEqual([]);
        const full = mk();
        full.applyDeltas(set, T0);
        expect(a.digest()).toEqual(full.digest());
      }),
      { numRuns: 200 },
    );
  });

  it("summary tells which owners differ; digest(owners) narrows the exchange", () => {
    const a = mk();
    const b = mk();
    for (const c of [a, b]) {
      c.applyDelta(upsert(fn("x", "f"), 1), T0);
      c.applyDelta(upsert(fn("y", "f"), 1), T0);
    }
    b.applyDelta(upsert(fn("y", "g"), 2), T0);
    const sa = a.summary();
    const sb = b.summary();
    expect(sa.get("x")).toEqual(sb.get("x"));
    expect(sa.get("y")).not.toEqual(sb.get("y"));
    expect([...a.digest(["y"]).keys()]).toEqual([entryKey(fn("y", "f"))]);
    const missing = b.deltasSince(a.digest(["y"]), T0).filter((d) => d.owner === "y");
    expect(missing.map((d) => d.key)).toEqual([entryKey(fn("y", "g"))]);
  });

  it("deltas map to opaque gossip items and back", () => {
    const d = upsert(fn("a", "f"), 3);
    const item = deltaToItem(d);
    expect(item).toEqual({ key: d.key, version: 3, data: d });
    expect(mk().applyDelta(itemToDelta(JSON.parse(JSON.stringify(item))), T0).status).toBe("applied");
  });

  it("deltasSince honours limit", () => {
    const a = mk();
    for (let i = 0; i < 10; i++) a.applyDelta(upsert(fn("a", `f${i}`), 1), T0);
    expect(a.deltasSince(new Map(), T0, 3)).toHaveLength(3);
    expect(a.deltasSince({}, T0)).toHaveLength(10);
  });
});

describe("queries", () => {
  it("queryFunctions agrees with a brute-force filter over all entries", () => {
    const queryArb = fc.record(
      {
        name: fc.constantFrom("f", "g", "h.x", "none"),
        function_id: fc.constantFrom("id1", "id2", "none"),
        version_constraint: fc.constantFrom("*", "^1", ">=1.2", "<1", "~0.3", "2.0.0", ">=1, <2"),
        resources: fc.subarray(["cpu", "gpu", "db", "eu", "zz"], { maxLength: 2 }),
        cluster_id: fc.constantFrom("c1", "c2"),
        node_id: fc.constantFrom("a", "b", "c", "self"),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.array(deltaArb, { maxLength: 50 }), queryArb, (set, q) => {
        const c = mk();
        c.applyDeltas(set, T0);
        const all = c
          .snapshot(T0)
          .deltas.filter((d) => d.entry?.kind === "function")
          .map((d) => d.entry as FunctionEntry);
        const expected = all.filter(
          (e) =>
            (q.name === undefined || e.name === q.name) &&
            (q.function_id === undefined || e.function_id === q.function_id) &&
            (q.cluster_id === undefined || e.cluster_id === q.cluster_id) &&
            (q.node_id === undefined || e.node_id === q.node_id) &&
            (q.resources === undefined || q.resources.every((r) => e.resources.includes(r))) &&
            (q.version_constraint === undefined || satisfies(parseVersion(e.version), parseConstraint(q.version_constraint))),
        );
        expect(c.queryFunctions(q)).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it("other kinds agree with brute force", () => {
    fc.assert(
      fc.property(
        fc.array(deltaArb, { maxLength: 50 }),
        fc.constantFrom("a", "b", undefined),
        fc.constantFrom("c1", "c2", undefined),
        (set, node, cluster) => {
          const c = mk();
          c.applyDeltas(set, T0);
          const all = c.snapshot(T0).deltas.flatMap((d) => (d.entry === undefined ? [] : [d.entry]));
          const f = (kind: string) =>
            all.filter((e) => e.kind === kind && (node === undefined || e.node_id === node) && (cluster === undefined || e.cluster_id === cluster));
          const q = { ...(node === undefined ? {} : { node_id: node }), ...(cluster === undefined ? {} : { cluster_id: cluster }) };
          expect(c.nodes(q)).toEqual(f("node"));
          expect(c.topics(q)).toEqual(f("topic"));
          expect(c.queues(q)).toEqual(f("queue"));
          expect(c.caches(q)).toEqual(f("cache"));
          expect(c.queues({ ...q, name: "q1" })).toEqual(f("queue").filter((e) => e.kind === "queue" && e.name === "q1"));
          expect(c.caches({ ...q, namespace: "n2", scope: "local" })).toEqual(
            f("cache").filter((e) => e.kind === "cache" && e.namespace === "n2" && e.scope === "local"),
          );
          expect(c.nodes({ ...q, resources: ["gpu"] })).toEqual(f("node").filter((e) => e.kind === "node" && e.resources.includes("gpu")));
        },
      ),
      { numRuns: 200 },
    );
  });

  it("malformed filters are 1002", () => {
    const c = mk();
    expect(() => c.queryFunctions({ version_constraint: ">>1" })).toThrowError(expect.objectContaining({ code: 1002 }));
    expect(() => c.queryFunctions({ name: 3 as unknown as string })).toThrowError(expect.objectContaining({ code: 1002 }));
    expect(() => c.nodes({ resources: "gpu" as unknown as string[] })).toThrowError(expect.objectContaining({ code: 1002 }));
  });
});

describe("catalog_query and pagination", () => {
  it("pages concatenate to the full result, in key order, without kind", () => {
    const c = mk();
    for (let i = 0; i < 25; i++) c.applyDelta(upsert(fn("a", `f${String(i).padStart(2, "0")}`), 1), T0);
    const names: string[] = [];
    let token: string | null = null;
    let pages = 0;
    do {
      const res: ReturnType<Catalog["catalogQuery"]> = c.catalogQuery({ entry_type: "functions", limit: 10, page_token: token ?? undefined }, T0);
      expect(res.entry_type).toBe("functions");
      for (const it of res.items) {
        expect(it.kind).toBeUndefined();
        names.push(it.name as string);
      }
      token = res.next_page_token;
      pages++;
    } while (token !== null);
    expect(pages).toBe(3);
    expect(names).toEqual(Array.from({ length: 25 }, (_, i) => `f${String(i).padStart(2, "0")}`));
  });

  it("keyset pages are stable when entries are added or removed between pages", () => {
    const c = mk();
    for (let i = 0; i < 6; i++) c.applyDelta(upsert(fn("a", `f${i}`), 1), T0);
    const p1 = c.catalogQuery({ entry_type: "functions", limit: 3 });
    c.applyDelta(remove(fn("a", "f0"), 2), T0);
    const p2 = c.catalogQuery({ entry_type: "functions", limit: 3, page_token: p1.next_page_token });
    expect(p2.items.map((x) => x.name)).toEqual(["f3", "f4", "f5"]);
    expect(p2.next_page_token).toBeNull();
  });

  it("merges further catalogs (a node's foreign entries) in key order, across pages, each entry once", () => {
    const c = mk();
    const other = mk();
    for (let i = 0; i < 4; i++) c.applyDelta(upsert(fn("a", `f${i}`), 1), T0);
    for (let i = 0; i < 4; i++) other.applyDelta(upsert(fn("z", `f${i}`, "1.0.0", [], "c2"), 1), T0);
    other.applyDelta(upsert(fn("a", "f0"), 1), T0); // same key as this catalog's: listed once
    const got: string[] = [];
    let token: string | null = null;
    do {
      const res: ReturnType<Catalog["catalogQuery"]> = c.catalogQuery({ entry_type: "functions", limit: 3, page_token: token ?? undefined }, T0, [other]);
      for (const it of res.items) got.push(`${it.name as string}@${it.node_id as string}/${it.cluster_id as string}`);
      token = res.next_page_token;
    } while (token !== null);
    expect(got).toEqual(["f0@a/c1", "f1@a/c1", "f2@a/c1", "f3@a/c1", "f0@z/c2", "f1@z/c2", "f2@z/c2", "f3@z/c2"]);
    expect(c.catalogQuery({ entry_type: "functions", cluster_id: "c2" }, T0, [other]).items).toHaveLength(4);
  });

  it("applies filters per entry type", () => {
    const c = mk();
    c.registerLocal({ kind: "queue", name: "q" }, T0);
    c.applyDelta(upsert(fn("a", "f", "1.5.0", ["gpu"]), 1), T0);
    c.applyDelta(upsert(fn("a", "f", "2.5.0", []), 1), T0);
    expect(c.catalogQuery({ entry_type: "functions", name: "f", version_constraint: "^1" }).items.map((i) => i.version)).toEqual(["1.5.0"]);
    expect(c.catalogQuery({ entry_type: "functions", resources: ["gpu"] }).items).toHaveLength(1);
    expect(c.catalogQuery({ entry_type: "queues" }).items).toEqual([{ name: "q", node_id: "self", cluster_id: "c1" }]);
    expect(c.catalogQuery({ entry_type: "topics" })).toEqual({ entry_type: "topics", items: [], next_page_token: null });
  });

  it.each([
    [{ entry_type: "things" }],
    [null],
    [{ entry_type: "functions", limit: 0 }],
    [{ entry_type: "functions", limit: 1001 }],
    [{ entry_type: "functions", limit: 2.5 }],
    [{ entry_type: "functions", page_token: "garbage!" }],
    [{ entry_type: "functions", page_token: Buffer.from(JSON.stringify(["nodes", "x"])).toString("base64url") }],
    [{ entry_type: "functions", version_constraint: "^^" }],
  ])("refuses %j with 1002", (req) => {
    expect(() => mk().catalogQuery(req)).toThrowError(expect.objectContaining({ code: 1002 }));
  });

  it("paginate works on plain sorted lists", () => {
    const xs = ["a", "b", "c"].map((k) => ({ key: k, item: k.toUpperCase() }));
    const p = paginate(xs, { limit: 2, scope: "s" });
    expect(p.items).toEqual(["A", "B"]);
    expect(paginate(xs, { limit: 2, scope: "s", page_token: p.next_page_token }).items).toEqual(["C"]);
  });
});
