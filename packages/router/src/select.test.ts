import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { compareVersions, normalizeEntry, parseConstraint, parseVersion, satisfies, type FunctionEntry } from "@mpreg/catalog";
import { SeededRandom } from "@mpreg/testkit";
import { selectEndpoint, type SelectContext } from "./select.js";

function ep(node: string, cluster: string, version = "1.0.0", functionId = "f"): FunctionEntry {
  return normalizeEntry({ kind: "function", name: "f", function_id: functionId, version, resources: [], node_id: node, cluster_id: cluster }) as FunctionEntry;
}

function ctx(over: Partial<SelectContext> = {}, loads: Record<string, number> = {}): SelectContext {
  return { selfNodeId: "self", selfClusterId: "c1", load: (n) => loads[n], random: () => 0, ...over };
}

describe("selectEndpoint", () => {
  it("returns null without candidates", () => {
    expect(selectEndpoint([], ctx())).toBeNull();
  });

  it("prefers self, then own cluster, then other clusters, regardless of load", () => {
    const loads = { self: 50, n1: 0, r1: 0 };
    const all = [ep("r1", "c2"), ep("n1", "c1"), ep("self", "c1")];
    expect(selectEndpoint(all, ctx({}, loads))).toMatchObject({ nodeId: "self", tier: "self", load: 50 });
    expect(selectEndpoint(all.slice(0, 2), ctx({}, loads))).toMatchObject({ nodeId: "n1", tier: "cluster" });
    expect(selectEndpoint(all.slice(0, 1), ctx({}, loads))).toMatchObject({ nodeId: "r1", tier: "remote", clusterId: "c2" });
  });

  it("does not go to other clusters when federation is not allowed", () => {
    expect(selectEndpoint([ep("r1", "c2")], ctx({ allowOtherClusters: false }))).toBeNull();
  });

  it("honours target_cluster and exclude", () => {
    const all = [ep("self", "c1"), ep("n1", "c1"), ep("r1", "c2"), ep("r2", "c2")];
    expect(selectEndpoint(all, ctx({ targetCluster: "c2" }, { r1: 3, r2: 1 }))?.nodeId).toBe("r2");
    expect(selectEndpoint(all, ctx({ exclude: new Set(["self"]) }))?.nodeId).toBe("n1");
    expect(selectEndpoint(all, ctx({ targetCluster: "c9" }))).toBeNull();
  });

  it("picks the lower load among equals; unknown load ranks last", () => {
    const all = [ep("a", "c1"), ep("b", "c1"), ep("c", "c1")];
    expect(selectEndpoint(all, ctx({}, { a: 5, b: 2, c: 9 }))?.nodeId).toBe("b");
    expect(selectEndpoint(all, ctx({}, { a: 5 }))?.nodeId).toBe("a");
    expect(selectEndpoint(all, ctx({}, {}))?.tiedWith).toBe(3);
  });

  it("runs the highest satisfying version on the chosen node", () => {
    const all = [ep("self", "c1", "1.0.0"), ep("self", "c1", "1.5.0"), ep("self", "c1", "2.0.0"), ep("n1", "c1", "1.9.0")];
    expect(selectEndpoint(all, ctx())?.endpoint.version).toBe("2.0.0");
    expect(selectEndpoint(all, ctx({ versionConstraint: "^1" }))?.endpoint.version).toBe("1.5.0");
    expect(selectEndpoint(all, ctx({ versionConstraint: parseConstraint(">=1.6, <2") }))).toMatchObject({ nodeId: "n1" });
    expect(selectEndpoint(all, ctx({ versionConstraint: ">=3" }))).toBeNull();
  });

  it("refuses a malformed constraint with 1002", () => {
    expect(() => selectEndpoint([ep("a", "c1")], ctx({ versionConstraint: "~>1" }))).toThrowError(expect.objectContaining({ code: 1002 }));
  });

  it("tolerates a misbehaving random source", () => {
    const all = [ep("a", "c1"), ep("b", "c1")];
    for (const r of [1, 7, -3, Number.NaN]) expect(["a", "b"]).toContain(selectEndpoint(all, ctx({ random: () => r }))?.nodeId);
  });

  const candArb = fc.array(
    fc.record({
      node: fc.constantFrom("self", "n1", "n2", "n3", "r1", "r2"),
      version: fc.constantFrom("1.0.0", "1.1.0", "2.0.0", "0.5.0"),
      fid: fc.constantFrom("f", "g"),
    }),
    { maxLength: 20 },
  );
  const clusterOf = (n: string) => (n.startsWith("r") ? "c2" : "c1");
  const loadArb = fc.dictionary(fc.constantFrom("self", "n1", "n2", "n3", "r1", "r2"), fc.nat(3));

  it("property: never a worse tier or a higher load than available; best version on the node", () => {
    fc.assert(
      fc.property(
        candArb,
        loadArb,
        fc.boolean(),
        fc.constantFrom(undefined, "^1", ">=1", "<2", "*"),
        fc.double({ min: 0, max: 0.9999, noNaN: true }),
        (cands, loads, allowOther, vc, r) => {
          const es = cands.map((c) => ep(c.node, clusterOf(c.node), c.version, c.fid));
          const c = ctx({ allowOtherClusters: allowOther, random: () => r, ...(vc ? { versionConstraint: vc } : {}) }, loads);
          const sel = selectEndpoint(es, c);
          const constraint = vc ? parseConstraint(vc) : undefined;
          const eligible = es.filter(
            (e) => (allowOther || e.cluster_id === "c1") && (constraint === undefined || satisfies(parseVersion(e.version), constraint)),
          );
          if (eligible.length === 0) {
            expect(sel).toBeNull();
            return;
          }
          expect(sel).not.toBeNull();
          const tier = (e: FunctionEntry) => (e.node_id === "self" ? 0 : e.cluster_id === "c1" ? 1 : 2);
          const bestTier = Math.min(...eligible.map(tier));
          expect(tier(sel!.endpoint)).toBe(bestTier);
          const load = (n: string) => loads[n] ?? Infinity;
          const bestLoad = Math.min(...eligible.filter((e) => tier(e) === bestTier).map((e) => load(e.node_id)));
          expect(sel!.load).toBe(bestLoad);
          expect(load(sel!.nodeId)).toBe(bestLoad);
          const onNode = eligible.filter((e) => e.node_id === sel!.nodeId);
          for (const e of onNode) expect(compareVersions(parseVersion(sel!.endpoint.version), parseVersion(e.version))).toBeGreaterThanOrEqual(0);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("property: the choice depends on the candidate set, not its order", () => {
    fc.assert(
      fc.property(candArb, loadArb, fc.double({ min: 0, max: 0.9999, noNaN: true }), fc.integer(), (cands, loads, r, seed) => {
        const es = cands.map((c) => ep(c.node, clusterOf(c.node), c.version, c.fid));
        const shuffled = new SeededRandom(seed).shuffle(es);
        const a = selectEndpoint(es, ctx({ random: () => r }, loads));
        const b = selectEndpoint(shuffled, ctx({ random: () => r }, loads));
        expect(b).toEqual(a);
      }),
      { numRuns: 500 },
    );
  });

  it("shares the work fairly between equal nodes (seeded, deterministic)", () => {
    const rng = new SeededRandom(42);
    const all = ["a", "b", "c", "d"].map((n) => ep(n, "c1"));
    const counts = new Map<string, number>();
    const n = 8000;
    for (let i = 0; i < n; i++) {
      const s = selectEndpoint(all, ctx({ random: () => rng.next() }, { a: 1, b: 1, c: 1, d: 1 }))!;
      counts.set(s.nodeId, (counts.get(s.nodeId) ?? 0) + 1);
    }
    for (const node of ["a", "b", "c", "d"]) {
      const share = (counts.get(node) ?? 0) / n;
      expect(share).toBeGreaterThan(0.22);
      expect(share).toBeLessThan(0.28);
    }
  });

  it("a less loaded node is always preferred over equal-tier busier ones", () => {
    const rng = new SeededRandom(7);
    const all = ["a", "b", "c"].map((n) => ep(n, "c1"));
    for (let i = 0; i < 200; i++) expect(selectEndpoint(all, ctx({ random: () => rng.next() }, { a: 2, b: 1, c: 2 }))?.nodeId).toBe("b");
  });
});
