import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CacheService } from "./cache-service.js";
import { DependencyGraph } from "./dependency-graph.js";
import { POLICY_NAMES } from "./eviction-policy.js";
import { MemoryCache } from "./memory-cache.js";

type Op =
  | { t: "put"; k: number; size: number; ttl: number | undefined }
  | { t: "get"; k: number }
  | { t: "del"; k: number }
  | { t: "advance"; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ t: fc.constant("put" as const), k: fc.nat(40), size: fc.nat(600), ttl: fc.option(fc.integer({ min: 1, max: 50 }), { nil: undefined }) }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant("get" as const), k: fc.nat(40) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("del" as const), k: fc.nat(40) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("advance" as const), ms: fc.nat(30) }) },
);

describe("memory tier properties (every policy)", () => {
  for (const policy of POLICY_NAMES) {
    it(`${policy}: limits never exceeded; contents a subset of a reference map; nothing expired returned`, () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1500, max: 8000 }), fc.array(op, { maxLength: 200 }), (maxEntries, maxBytes, ops) => {
          let now = 0;
          const c = new MemoryCache<string>({ policy, maxEntries, maxBytes, now: () => now });
          const ref = new Map<string, { v: string; exp: number }>();
          ops.forEach((o, i) => {
            if (o.t === "put") {
              const v = `${i}:${"x".repeat(o.size)}`;
              c.set(`k${o.k}`, v, o.ttl === undefined ? {} : { ttlMs: o.ttl });
              ref.set(`k${o.k}`, { v, exp: o.ttl === undefined ? Infinity : now + o.ttl });
            } else if (o.t === "get") {
              const got = c.get(`k${o.k}`);
              if (got !== undefined) {
                const r = ref.get(`k${o.k}`);
                expect(got).toBe(r?.v);
                expect(r!.exp).toBeGreaterThan(now);
              }
            } else if (o.t === "del") {
              c.delete(`k${o.k}`);
              ref.delete(`k${o.k}`);
            } else now += o.ms;
            expect(c.size).toBeLessThanOrEqual(maxEntries);
            expect(c.bytes).toBeLessThanOrEqual(maxBytes);
            let sum = 0;
            for (const k of c.keys()) {
              const e = c.peekEntry(k);
              if (e === undefined) continue; // expired, not yet dropped
              sum += e.size;
              expect(e.value).toBe(ref.get(k)?.v);
            }
            // Expired entries not yet dropped still count toward bytes: bytes ≥ live bytes.
            expect(c.bytes).toBeGreaterThanOrEqual(sum);
          });
        }),
        { numRuns: 150 },
      );
    });
  }
});

/** Reference closure: a fixpoint over the edge list. */
function referenceClosure(edges: Array<[number, number]>, root: number): Set<number> {
  const out = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [from, to] of edges) {
      if (out.has(to) && !out.has(from)) {
        out.add(from);
        grew = true;
      }
    }
  }
  return out;
}

/** Edges [a, b]: a depends on b. `dag` keeps only b < a. */
function graphArb(dag: boolean) {
  return fc
    .record({ n: fc.integer({ min: 1, max: 25 }), raw: fc.array(fc.tuple(fc.nat(24), fc.nat(24)), { maxLength: 60 }), root: fc.nat(24) })
    .map(({ n, raw, root }) => ({
      n,
      root: root % n,
      edges: raw.map(([a, b]) => [a % n, b % n] as [number, number]).filter(([a, b]) => (dag ? b < a : a !== b)),
    }));
}

function depsOf(n: number, edges: Array<[number, number]>): string[][] {
  const deps: string[][] = Array.from({ length: n }, () => []);
  for (const [a, b] of edges) if (!deps[a]!.includes(`d${b}`)) deps[a]!.push(`d${b}`);
  return deps;
}

describe("dependency cascades", () => {
  for (const dag of [true, false]) {
    const kind = dag ? "random DAGs" : "random graphs with cycles";
    it(`DependencyGraph.closure matches a reference closure on ${kind}`, () => {
      fc.assert(
        fc.property(graphArb(dag), ({ n, edges, root }) => {
          const g = new DependencyGraph();
          depsOf(n, edges).forEach((d, i) => g.set(`d${i}`, d));
          const got = [...g.closure([`d${root}`])].sort();
          const want = [...referenceClosure(edges, root)].map((i) => `d${i}`).sort();
          expect(got).toEqual(want);
        }),
        { numRuns: 300 },
      );
    });

    it(`invalidate({dependency}) removes exactly the closure on ${kind}`, async () => {
      await fc.assert(
        fc.asyncProperty(graphArb(dag), async ({ n, edges, root }) => {
          const c = await CacheService.open({ nodeId: "n", timers: false, config: { namespaces: { default: { max_entries: 100 } } } });
          const deps = depsOf(n, edges);
          for (let i = 0; i < n; i++) await c.put(`d${i}`, i, { dependencies: deps[i] });
          const closure = referenceClosure(edges, root);
          expect(await c.invalidate({ dependency: `d${root}` })).toBe(closure.size);
          for (let i = 0; i < n; i++) expect((await c.get(`d${i}`)).hit).toBe(!closure.has(i));
          await c.close();
        }),
        { numRuns: 100 },
      );
    });
  }
});
