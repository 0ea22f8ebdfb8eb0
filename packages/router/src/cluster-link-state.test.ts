import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ClusterLinkState, adjacencySigningBytes, validateAdjacency, type AdjacencyAnnouncement } from "./cluster-link-state.js";
import { KeyRegistry } from "./key-registry.js";
import { RouteSigner } from "./route-signing.js";
import { FederationSim, bruteForceBestRoutes, clusterGraphArb, clusterIds, graphAdjacency } from "./testing/index.js";

function ann(origin: string, seq: number, neighbours: [string, number][], extra: Partial<AdjacencyAnnouncement> = {}): AdjacencyAnnouncement {
  return { v: 1, origin, epoch: 1, seq, ttl_ms: 60_000, neighbours: neighbours.map(([cluster, cost]) => ({ cluster, cost })), ...extra };
}

function ls(opts: Partial<ConstructorParameters<typeof ClusterLinkState>[0]> = {}): ClusterLinkState {
  return new ClusterLinkState({ localCluster: "a", epoch: 1, minOriginationIntervalMs: 0, ...opts });
}

describe("ClusterLinkState", () => {
  it("computes paths over flooded adjacency; a withdrawn edge removes the path (original item 37)", () => {
    const s = ls();
    s.linkUp("b", 0);
    s.receive("b", ann("b", 1, [["a", 1], ["c", 1]]), 0);
    s.receive("b", ann("c", 1, [["b", 1], ["d", 1]]), 0);
    s.receive("b", ann("d", 1, [["c", 1]]), 0);
    expect(s.bestRoute("d")?.path).toEqual(["a", "b", "c", "d"]);
    s.receive("b", ann("c", 2, []), 0);
    expect(s.bestRoute("d")).toBeUndefined();
    expect(s.bestRoute("c")).toBeUndefined();
    expect(s.bestRoute("b")?.path).toEqual(["a", "b"]);
  });

  it("newer (epoch, seq) wins; older or equal is stale (original item 38)", () => {
    const s = ls();
    s.linkUp("b", 0);
    expect(s.receive("b", ann("c", 2, []), 0)).toEqual({ accepted: true });
    expect(s.receive("b", ann("c", 1, [["b", 1]]), 0)).toEqual({ accepted: false, reason: "stale" });
    expect(s.receive("b", ann("c", 2, [["b", 1]]), 0)).toEqual({ accepted: false, reason: "stale" });
    expect(s.receive("b", ann("c", 1, [["b", 1]], { epoch: 2 }), 0)).toEqual({ accepted: true });
    expect(s.receive("b", ann("a", 9, []), 0)).toEqual({ accepted: false, reason: "own" });
    expect(s.receive("x", ann("c", 9, []), 0)).toEqual({ accepted: false, reason: "unknown_neighbour" });
    expect(s.receive("b", { ...ann("c", 9, [["b", 1], ["a", 1]]) }, 0)).toEqual({ accepted: false, reason: "invalid" });
  });

  it("uses an edge only when both ends announce it", () => {
    const s = ls();
    s.linkUp("b", 0);
    s.receive("b", ann("b", 1, [["a", 1]]), 0);
    // c claims an edge to b that b does not announce.
    s.receive("b", ann("c", 1, [["b", 1]]), 0);
    expect(s.bestRoute("c")).toBeUndefined();
    s.receive("b", ann("b", 2, [["a", 1], ["c", 1]]), 0);
    expect(s.bestRoute("c")?.path).toEqual(["a", "b", "c"]);
  });

  it("floods a newer announcement to every other neighbour, and the database to a new one", () => {
    const s = ls();
    s.linkUp("b", 0);
    s.linkUp("c", 0);
    s.poll(0);
    s.receive("b", ann("x", 1, []), 1);
    expect(s.poll(1).messages.map((m) => [m.to, m.announcements.map((a) => a.origin)])).toEqual([["c", ["x"]]]);
    s.linkUp("d", 2);
    const out = s.poll(2).messages;
    expect(out.find((m) => m.to === "d")?.announcements.map((a) => a.origin).sort()).toEqual(["a", "x"]);
    // The own announcement changed (new neighbour d) and goes to every neighbour.
    for (const m of out) expect(m.announcements.find((a) => a.origin === "a")?.neighbours.map((n) => n.cluster)).toEqual(["b", "c", "d"]);
  });

  it("rate-limits its own announcements and refreshes them", () => {
    const s = ls({ minOriginationIntervalMs: 1000, refreshIntervalMs: 5000, ttlMs: 20_000 });
    s.linkUp("b", 0);
    s.poll(0);
    s.linkUp("c", 10);
    s.linkDown("c", 20);
    expect(s.poll(20).messages).toEqual([]);
    expect(s.poll(1000).messages.map((m) => m.announcements[0]!.seq)).toEqual([2]);
    s.tick(6000);
    expect(s.poll(6000).messages.map((m) => m.announcements[0]!.seq)).toEqual([3]);
    expect(s.stats.originated).toBe(3);
  });

  it("expires announcements not refreshed", () => {
    const s = ls();
    s.linkUp("b", 0);
    s.receive("b", ann("b", 1, [["a", 1]], { ttl_ms: 100 }), 0);
    s.tick(50);
    expect(s.size).toBe(1);
    s.tick(100);
    expect(s.size).toBe(0);
  });

  it("verifies origin signatures; refuses unsigned and forged when required", () => {
    const sb = RouteSigner.generate("b");
    const reg = new KeyRegistry({ trusted: [{ clusterId: "b", publicKey: sb.publicKey }] });
    const s = ls({ keys: reg, requireSignatures: true });
    s.linkUp("c", 0);
    const a = ann("b", 1, [["c", 1]]);
    expect(s.receive("c", a, 0)).toEqual({ accepted: false, reason: "unsigned" });
    const signed = { ...a, sig: sb.sign(adjacencySigningBytes(a)) };
    expect(s.receive("c", { ...signed, neighbours: [] }, 0)).toEqual({ accepted: false, reason: "bad_signature" });
    expect(s.receive("c", signed, 0)).toEqual({ accepted: true });
    expect(new TextDecoder().decode(adjacencySigningBytes(a))).toBe('mpreg-adjacency/1\n["b",1,1,60000,[["c",1]]]');
  });

  it("validates announcements naming the field", () => {
    expect(() => validateAdjacency({ ...ann("b", 1, [["d", 1], ["c", 1]]) })).toThrow(expect.objectContaining({ details: expect.objectContaining({ path: "neighbours[1].cluster" }) }));
    expect(() => validateAdjacency({ ...ann("b", 1, []), seq: 0 })).toThrow(/seq/);
  });

  /**
   * Dijkstra against brute force: on random small graphs with random costs, the route to every
   * cluster is the minimum of every simple path under compareRoutes (so ties break the same
   * way whatever the insertion order), and `avoid` is honoured.
   */
  it("shortest paths equal the best simple path under the documented order (property)", () => {
    const arbGraph = clusterGraphArb({ minClusters: 6, maxClusters: 6, connected: false, maxExtraLinks: 12 });
    fc.assert(
      fc.property(arbGraph, fc.subarray(clusterIds(6).slice(1)), (graph, avoidList) => {
        const [self, ...others] = graph.clusters as [string, ...string[]];
        const adj = graphAdjacency(graph);
        const s = ls({ localCluster: self });
        for (const [n, c] of adj.get(self)!) s.linkUp(n, 0, { cost: c });
        const anyNeighbour = [...adj.get(self)!.keys()][0];
        if (anyNeighbour !== undefined) {
          for (const o of others) {
            const ns = [...adj.get(o)!].sort(([p], [q]) => (p < q ? -1 : 1));
            s.receive(anyNeighbour, ann(o, 1, ns), 0);
          }
        }
        const want = bruteForceBestRoutes(graph, self);
        for (const d of others) {
          const got = s.bestRoute(d);
          expect(got === undefined ? undefined : [got.path, got.metric]).toEqual(want.has(d) ? [want.get(d)!.path, want.get(d)!.metric] : undefined);
        }
        const avoid = new Set(avoidList);
        const wantAvoid = bruteForceBestRoutes(graph, self, { avoid });
        for (const d of others) {
          const got = s.routesTo(d, avoid)[0];
          expect(got === undefined ? undefined : got.path).toEqual(wantAvoid.get(d)?.path);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("a line converges by flooding and reports route changes as events", () => {
    const sim = new FederationSim({ ids: ["a", "b", "c", "d"], edges: [["a", "b"], ["b", "c"], ["c", "d"]], mode: "link-state" });
    sim.runUntilQuiet();
    expect(sim.check()).toEqual([]);
    sim.unlink("b", "c");
    sim.runUntilQuiet();
    expect(sim.check()).toEqual([]);
    expect(sim.speaker("a").bestRoute("d")).toBeUndefined();
  });
});
