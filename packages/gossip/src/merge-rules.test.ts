import { SeededRandom } from "@mpreg/testkit";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BroadcastQueue } from "./broadcast-queue.js";
import { GossipNode } from "./gossip-node.js";
import { ItemStore } from "./item-store.js";
import { compareUpdates, mergeAll, supersedes } from "./merge-rules.js";
import type { GossipItem, MemberUpdate } from "./types.js";

const status = fc.constantFrom("alive" as const, "suspect" as const, "dead" as const, "left" as const);
const fact = fc.record({ id: fc.constantFrom("m1", "m2", "m3"), inc: fc.nat(4), status });
// Items whose data is a function of (key, version): two updates with equal versions are the same update.
const item = fc
  .record({ key: fc.constantFrom("a", "b", "c", "d"), version: fc.nat(6) })
  .map((x): GossipItem => ({ ...x, data: `${x.key}@${x.version}` }));

/** A permutation of `xs` with some elements repeated (replays). */
function permutedWithDuplicates<T>(xs: T[]) {
  return fc.tuple(fc.integer(), fc.array(fc.nat(Math.max(0, xs.length - 1)), { maxLength: 10 })).map(([seed, dupIdx]) => {
    const extra = xs.length === 0 ? [] : dupIdx.map((i) => xs[i] as T);
    return new SeededRandom(seed).shuffle([...xs, ...extra]);
  });
}

const view = (m: Map<string, MemberUpdate>) => [...m.values()].map((u) => `${u.id}:${u.inc}:${u.status}`).sort();

describe("SWIM precedence", () => {
  it("higher incarnation wins; at equal incarnation alive < suspect < dead < left", () => {
    expect(supersedes({ inc: 1, status: "alive" }, { inc: 0, status: "dead" })).toBe(true);
    expect(supersedes({ inc: 0, status: "alive" }, { inc: 0, status: "suspect" })).toBe(false);
    expect(supersedes({ inc: 0, status: "suspect" }, { inc: 0, status: "alive" })).toBe(true);
    expect(supersedes({ inc: 0, status: "dead" }, { inc: 0, status: "suspect" })).toBe(true);
    expect(supersedes({ inc: 0, status: "left" }, { inc: 0, status: "dead" })).toBe(true);
    expect(supersedes({ inc: 2, status: "suspect" }, { inc: 3, status: "alive" })).toBe(false);
    expect(supersedes({ inc: 0, status: "alive" }, undefined)).toBe(true);
  });

  it("property: compareUpdates is a total order (antisymmetric, transitive)", () => {
    fc.assert(
      fc.property(fact, fact, fact, (a, b, c) => {
        expect(Math.sign(compareUpdates(a, b)) + Math.sign(compareUpdates(b, a))).toBe(0);
        if (compareUpdates(a, b) >= 0 && compareUpdates(b, c) >= 0) expect(compareUpdates(a, c)).toBeGreaterThanOrEqual(0);
      }),
    );
  });

  it("property: merging membership facts in any order, with replays, gives the same view", () => {
    fc.assert(
      fc.property(fc.array(fact, { maxLength: 25 }).chain((xs) => fc.tuple(fc.constant(xs), permutedWithDuplicates(xs))), ([xs, ys]) => {
        expect(view(mergeAll(new Map(), ys))).toEqual(view(mergeAll(new Map(), xs)));
      }),
    );
  });

  // Hearsay is judged against what the node holds when it arrives (docs/cluster.md, "Security"),
  // so order independence is a property of what members announce about themselves.
  it("property: a GossipNode ends with the same view of members' own announcements whatever the delivery order", () => {
    const own = fc.record({ id: fc.constantFrom("m1", "m2", "m3"), inc: fc.nat(4), status: fc.constantFrom("alive" as const, "left" as const) });
    fc.assert(
      fc.property(fc.array(own, { maxLength: 25 }).chain((xs) => fc.tuple(fc.constant(xs), permutedWithDuplicates(xs))), ([xs, ys]) => {
        const run = (facts: MemberUpdate[]) => {
          const n = new GossipNode({ id: "self", random: new SeededRandom(1), now: 0 });
          facts.forEach((f, i) => n.handleMessage(f.id, { type: "gossip", members: [f], items: [] }, i));
          return n
            .membersView()
            .filter((m) => m.id !== "self")
            .map((m) => `${m.id}:${m.incarnation}:${m.status}`)
            .sort();
        };
        expect(run(ys)).toEqual(run(xs));
      }),
    );
  });
});

describe("item versions", () => {
  it("property: applying any permutation (with duplicates) of item updates gives the same state", () => {
    fc.assert(
      fc.property(fc.array(item, { maxLength: 30 }).chain((xs) => fc.tuple(fc.constant(xs), permutedWithDuplicates(xs))), ([xs, ys]) => {
        const state = (its: GossipItem[]) => {
          const s = new ItemStore(100);
          for (const it of its) s.apply(it);
          return [...s.values()].sort((a, b) => a.key.localeCompare(b.key));
        };
        const expected = state(xs);
        expect(state(ys)).toEqual(expected);
        // The same through the node's wire path, which also emits one event per applied change.
        const n = new GossipNode({ id: "self", random: new SeededRandom(2), now: 0 });
        n.handleMessage("p", { type: "sync-push", items: ys }, 0);
        expect(n.items().sort((a, b) => a.key.localeCompare(b.key))).toEqual(expected);
        for (const e of n.drain().events) expect(e.type).toBe("item-updated");
      }),
    );
  });

  it("equal version keeps the existing item; a full store refuses new keys but updates old ones", () => {
    const s = new ItemStore(2);
    expect(s.apply({ key: "a", version: 1, data: "first" })).toBe("applied");
    expect(s.apply({ key: "a", version: 1, data: "second" })).toBe("stale");
    expect(s.get("a")?.data).toBe("first");
    expect(s.apply({ key: "b", version: 1, data: 1 })).toBe("applied");
    expect(s.apply({ key: "c", version: 1, data: 1 })).toBe("full");
    expect(s.apply({ key: "b", version: 2, data: 2 })).toBe("applied");
    expect(s.keysInRange("a", "b")).toEqual(["a"]);
    expect(s.keysInRange("", null)).toEqual(["a", "b"]);
  });
});

describe("BroadcastQueue", () => {
  it("property: each update is sent at most `limit` times and a newer one replaces the queued one", () => {
    fc.assert(
      fc.property(fc.array(item, { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 5 }), (its, limit, perMsg) => {
        const q = new BroadcastQueue(1000);
        for (const it of its) q.enqueueItem(it);
        const keys = new Set(its.map((i) => i.key));
        expect(q.size).toBe(keys.size);
        const sent = new Map<string, number>();
        for (let round = 0; round < 1000 && q.size > 0; round++) {
          const { items } = q.take(perMsg, limit);
          for (const it of items) sent.set(it.key, (sent.get(it.key) ?? 0) + 1);
        }
        expect(q.size).toBe(0);
        for (const k of keys) expect(sent.get(k)).toBe(limit);
      }),
    );
  });

  it("is bounded: the best-spread entry is dropped first", () => {
    const q = new BroadcastQueue(2);
    q.enqueueItem({ key: "a", version: 1, data: null });
    q.take(1, 10); // a transmitted once
    q.enqueueItem({ key: "b", version: 1, data: null });
    q.enqueueItem({ key: "c", version: 1, data: null });
    expect(q.size).toBe(2);
    expect(q.dropped).toBe(1);
    expect(q.take(10, 10).items.map((i) => i.key).sort()).toEqual(["b", "c"]);
  });

  it("keeps the items of one message within a byte budget; an oversized item goes alone", () => {
    const q = new BroadcastQueue(100);
    const sizeOf = (i: GossipItem) => String(i.data).length;
    q.enqueueItem({ key: "big", version: 1, data: "x".repeat(100) });
    for (let i = 0; i < 5; i++) q.enqueueItem({ key: `s${i}`, version: 1, data: "y".repeat(10) });
    const budget = { bytes: 25, sizeOf };
    const first = q.take(16, 2, budget);
    expect(first.items.map(sizeOf)).toEqual([10, 10]);
    const sizes: number[][] = [first.items.map(sizeOf)];
    for (let r = 0; r < 20 && q.size > 0; r++) sizes.push(q.take(16, 2, budget).items.map(sizeOf));
    for (const s of sizes) {
      const total = s.reduce((a, b) => a + b, 0);
      expect(total <= 25 || s.length === 1).toBe(true);
    }
    expect(sizes.flat().filter((x) => x === 100)).toHaveLength(2);
  });
});

