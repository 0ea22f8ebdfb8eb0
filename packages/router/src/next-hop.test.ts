import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { computeNextHops } from "./next-hop.js";

/** A consistent adjacency (every edge listed by both ends) from an undirected edge list. */
function graph(n: number, edges: readonly [number, number][]): Map<string, string[]> {
  const adj = new Map<string, string[]>();
  for (let i = 0; i < n; i++) adj.set(`n${i}`, []);
  for (const [a, b] of edges) {
    if (a === b) continue;
    const la = adj.get(`n${a}`)!;
    const lb = adj.get(`n${b}`)!;
    if (!la.includes(`n${b}`)) la.push(`n${b}`);
    if (!lb.includes(`n${a}`)) lb.push(`n${a}`);
  }
  return adj;
}

/** Reference distances from `from` (plain BFS, no tie-break). */
function distances(from: string, adj: ReadonlyMap<string, readonly string[]>): Map<string, number> {
  const dist = new Map<string, number>([[from, 0]]);
  const queue = [from];
  for (let i = 0; i < queue.length; i++) {
    const u = queue[i]!;
    for (const v of adj.get(u) ?? []) {
      if (dist.has(v)) continue;
      dist.set(v, dist.get(u)! + 1);
      queue.push(v);
    }
  }
  return dist;
}

const arbGraph = fc.integer({ min: 1, max: 14 }).chain((n) =>
  fc.record({
    n: fc.constant(n),
    edges: fc.array(fc.tuple(fc.nat({ max: n - 1 }), fc.nat({ max: n - 1 })), { maxLength: n * 3 }),
    self: fc.nat({ max: n - 1 }),
    seed: fc.integer(),
  }),
);

function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const out = xs.slice();
  let s = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe("computeNextHops", () => {
  it("routes along a line through the first neighbour", () => {
    const adj = graph(4, [[0, 1], [1, 2], [2, 3]]);
    const t = computeNextHops("n0", adj);
    expect([...t].sort()).toEqual([
      ["n1", { next: "n1", hops: 1 }],
      ["n2", { next: "n1", hops: 2 }],
      ["n3", { next: "n1", hops: 3 }],
    ]);
    expect(computeNextHops("n0", adj, { maxHops: 2 }).has("n3")).toBe(false);
    expect(computeNextHops("n0", adj, { maxHops: 0 }).size).toBe(0);
  });

  it("ignores an edge claimed by one side only, but trusts self's own links", () => {
    const adj = new Map<string, string[]>([
      ["a", ["b"]], // self's truth: b is linked even though b does not (yet) list a
      ["b", ["c"]], // b claims c, c does not list b: stale, not used
      ["c", ["d"]],
      ["d", ["c"]],
    ]);
    const t = computeNextHops("a", adj);
    expect([...t.keys()]).toEqual(["b"]);
    adj.set("c", ["b", "d"]);
    expect(computeNextHops("a", adj).get("d")).toEqual({ next: "b", hops: 3 });
  });

  it("breaks ties by the lowest next-hop id", () => {
    // self s reaches t through x or through b in two hops: b wins.
    const adj = new Map<string, string[]>([
      ["s", ["x", "b"]],
      ["x", ["s", "t"]],
      ["b", ["s", "t"]],
      ["t", ["x", "b"]],
    ]);
    expect(computeNextHops("s", adj).get("t")).toEqual({ next: "b", hops: 2 });
  });

  it("ignores self in its own list, duplicates and unknown ids", () => {
    const adj = new Map<string, string[]>([["s", ["s", "a", "a", "ghost"]], ["a", ["s"]]]);
    const t = computeNextHops("s", adj);
    expect([...t].sort()).toEqual([
      ["a", { next: "a", hops: 1 }],
      ["ghost", { next: "ghost", hops: 1 }],
    ]);
  });

  it("property: next hop is a direct neighbour, hops is the BFS distance, unreachable targets are absent", () => {
    fc.assert(
      fc.property(arbGraph, ({ n, edges, self }) => {
        const adj = graph(n, edges);
        const s = `n${self}`;
        const t = computeNextHops(s, adj);
        const dist = distances(s, adj);
        const neighbours = new Set(adj.get(s));
        expect(t.has(s)).toBe(false);
        for (const [id, d] of dist) if (id !== s) expect(t.get(id)?.hops).toBe(d);
        for (const [id, r] of t) {
          expect(dist.has(id)).toBe(true);
          expect(neighbours.has(r.next)).toBe(true);
          // Tie-break: the lowest neighbour that is one hop closer to the target.
          const best = [...neighbours].filter((nb) => distances(nb, adj).get(id) === r.hops - 1).sort()[0];
          expect(r.next).toBe(best);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("property: following next hops reaches the target in exactly the BFS distance, never looping", () => {
    fc.assert(
      fc.property(arbGraph, ({ n, edges, self }) => {
        const adj = graph(n, edges);
        const s = `n${self}`;
        const tables = new Map([...adj.keys()].map((id) => [id, computeNextHops(id, adj)]));
        for (const [target, d] of distances(s, adj)) {
          if (target === s) continue;
          const seen = new Set([s]);
          let at = s;
          let steps = 0;
          while (at !== target) {
            const r = tables.get(at)!.get(target);
            expect(r).toBeDefined();
            at = r!.next;
            steps++;
            expect(seen.has(at)).toBe(false);
            seen.add(at);
          }
          expect(steps).toBe(d);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("property: the result does not depend on map insertion order or list order", () => {
    fc.assert(
      fc.property(arbGraph, ({ n, edges, self, seed }) => {
        const adj = graph(n, edges);
        // Make some claims one-sided, so order independence covers the mutual check too.
        const first = adj.get("n0")!;
        if (first.length > 0) adj.set("n0", first.slice(1));
        const other = new Map(shuffled([...adj], seed).map(([k, v]) => [k, shuffled(v, seed + 1)]));
        const a = [...computeNextHops(`n${self}`, adj)].sort();
        const b = [...computeNextHops(`n${self}`, other)].sort();
        expect(b).toEqual(a);
      }),
      { numRuns: 300 },
    );
  });
});
