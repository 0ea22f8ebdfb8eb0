import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { validateFederationConfig } from "../federation-config.js";
import { KeyRegistry } from "../key-registry.js";
import { prefixFilter } from "../prefix-filter.js";
import { RoutePolicySet } from "../route-policy.js";
import { RouteSigner } from "../route-signing.js";
import { RouteTable } from "../route-table.js";
import { validateRouteUpdate } from "../route-update.js";
import { serviceFilter } from "../service-filter.js";
import { validatePattern, validateTopic } from "../topic-pattern.js";
import {
  clusterGraphArb,
  clusterIds,
  graphAdjacency,
  matchingTopicArb,
  offersArb,
  prefixListArb,
  randomClusterGraph,
  routeAnnouncementsArb,
  routeEntryArb,
  routePoliciesArb,
  routeUpdateArb,
  shortestDistances,
  topicArb,
  topicPatternArb,
  topicSegmentArb,
} from "./index.js";

/** Every arbitrary of the testing module is valid by construction: the validators take its values unchanged. */

const expect1002 = (fn: () => unknown): void => expect(fn).toThrow(expect.objectContaining({ code: 1002 }));

describe("topic arbitraries", () => {
  it("topics and patterns pass validation, with the default alphabet or any segments", () => {
    const seg = topicSegmentArb({ maxLength: 12 });
    fc.assert(
      fc.property(topicArb(), topicPatternArb(), topicArb({ segment: seg, maxSegments: 20 }), topicPatternArb({ segment: seg, weights: { hash: 3 } }), (t, p, t2, p2) => {
        expect(validateTopic(t)).toEqual(t.split("."));
        expect(validatePattern(p)).toEqual(p.split("."));
        expect(validateTopic(t2)).toEqual(t2.split("."));
        expect(validatePattern(p2)).toEqual(p2.split("."));
      }),
      { numRuns: 300 },
    );
  });

  it("matching topics are valid topics, also for patterns of # only", () => {
    fc.assert(
      fc.property(topicPatternArb({ weights: { literal: 0, star: 1, hash: 2 } }).chain((p) => matchingTopicArb(p)), (t) => {
        expect(validateTopic(t).length).toBeGreaterThan(0);
      }),
    );
  });

  it("refuses options that could produce invalid values", () => {
    expect1002(() => topicArb({ maxSegments: 1000 }));
    expect1002(() => topicPatternArb({ weights: { literal: 0, star: 0, hash: 0 } }));
    expect1002(() => matchingTopicArb("#", { maxHashSegments: 0 }));
    // A segment arbitrary producing a bad segment fails loudly, not with a silently bad topic.
    expect(() => fc.sample(topicArb({ segment: fc.constant("a.b") }), 1)).toThrow(/not a valid topic segment/);
  });
});

describe("filter and policy arbitraries", () => {
  it("prefix lists, offers and policies are accepted by their validators", () => {
    const neighbours = ["b", "c"];
    fc.assert(
      fc.property(prefixListArb(), offersArb(), routePoliciesArb({ neighbours, clusters: ["x", "y"] }), (l, o, p) => {
        prefixFilter(l);
        serviceFilter(o);
        RoutePolicySet.compile(p);
        validateFederationConfig({ offers: o, import: p.import, export: p.export });
        for (const dir of [p.import ?? [], p.export ?? []]) {
          const ns = dir.map((r) => r.neighbour);
          expect(new Set(ns).size).toBe(ns.length);
          for (const n of ns) expect([...neighbours, "*"]).toContain(n);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe("route arbitraries", () => {
  it("entries and updates pass validateRouteUpdate unchanged; clean paths run advertiser → destination without repeats", () => {
    const destinations = ["a", "b", "c", "d"];
    fc.assert(
      fc.property(routeUpdateArb({ advertiser: "b", to: "me", destinations, transit: [...destinations, "x"], offers: true }), (u) => {
        expect(validateRouteUpdate(u)).toEqual(u);
        expect(u).toMatchObject({ advertiser: "b", to: "me" });
        for (const r of u.routes) {
          expect(r.path[0]).toBe("b");
          expect(r.path[r.path.length - 1]).toBe(r.destination);
          expect(new Set(r.path).size).toBe(r.path.length);
          expect(u.withdrawn).not.toContain(r.destination);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("adversarial entries are still valid on the wire, and sometimes refused by a table", () => {
    const entries = fc.sample(routeEntryArb({ advertiser: "b", destinations: ["c", "d"], transit: ["b", "c", "me"], adversarial: true }), { numRuns: 500, seed: 7 });
    for (const e of entries) validateRouteUpdate({ v: 1, advertiser: "b", to: "me", epoch: 1, seq: 1, ttl_ms: 1, full: false, routes: [e], withdrawn: [] });
    expect(entries.some((e) => e.path[0] !== "b")).toBe(true);
    expect(entries.some((e) => new Set(e.path).size !== e.path.length)).toBe(true);
    expect(entries.some((e) => e.path.includes("me"))).toBe(true);
  });

  it("sequences: updates come from the neighbours to the receiver with distinct seqs; signed ones verify", () => {
    const signers = new Map(["n1", "n2"].map((id) => [id, RouteSigner.generate(id)]));
    const keys = new KeyRegistry({ trusted: [...signers.values()].map((s) => ({ clusterId: s.clusterId, publicKey: s.publicKey })) });
    fc.assert(
      fc.property(routeAnnouncementsArb({ receiver: "me", neighbours: ["n1", "n2"], destinations: ["d1", "d2"], signers }), (seq) => {
        const t = new RouteTable({ localCluster: "me", epoch: 1, damping: false, keys, requireSignatures: true });
        t.linkUp("n1", 0);
        t.linkUp("n2", 0);
        expect(seq.map((a) => a.update.seq)).toEqual(seq.map((_, i) => i + 1));
        for (const { from, update } of seq) {
          expect(update.advertiser).toBe(from);
          expect(update.to).toBe("me");
          expect(validateRouteUpdate(update)).toEqual(update);
          const r = t.receive(from, update, 0);
          // Signed by the right key: only staleness (an older full update) may refuse it.
          if (!r.accepted) expect(r.reason).toBe("stale");
        }
      }),
      { numRuns: 40 },
    );
  });

  it("refuses options that could produce invalid updates", () => {
    expect1002(() => routeEntryArb({ advertiser: "", destinations: ["a"] }));
    expect1002(() => routeEntryArb({ advertiser: "a", destinations: [] }));
    expect1002(() => routeEntryArb({ advertiser: "a", destinations: ["b"], maxTransit: 31 }));
    expect1002(() => routeUpdateArb({ advertiser: "a", to: "b", destinations: ["c"], signer: RouteSigner.generate("z") }));
  });
});

describe("cluster graphs", () => {
  it("clusterGraphArb: connected, well formed, costs in range", () => {
    fc.assert(
      fc.property(clusterGraphArb({ minClusters: 1, maxClusters: 12, minCost: 2, maxCost: 5 }), (g) => {
        graphAdjacency(g);
        expect(g.clusters.length).toBeGreaterThanOrEqual(1);
        expect(g.clusters.length).toBeLessThanOrEqual(12);
        expect(g.links.length).toBeGreaterThanOrEqual(g.clusters.length - 1);
        for (const l of g.links) expect(l.cost >= 2 && l.cost <= 5 && l.a < l.b).toBe(true);
        expect(shortestDistances(g, g.clusters[0]!).size).toBe(g.clusters.length);
      }),
      { numRuns: 300 },
    );
  });

  it("randomClusterGraph: connected, the average degree asked for, the same for the same seed", () => {
    const seq = (seed: number) => {
      let s = seed;
      return { int: (n: number) => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0), s % n) };
    };
    const g1 = randomClusterGraph(clusterIds(60), seq(3), { avgDegree: 4, minCost: 1, maxCost: 9 });
    const g2 = randomClusterGraph(clusterIds(60), seq(3), { avgDegree: 4, minCost: 1, maxCost: 9 });
    expect(g2).toEqual(g1);
    expect(g1.links.length).toBe(120);
    expect(shortestDistances(g1, "c000").size).toBe(60);
    expect(new Set(g1.links.map((l) => l.cost)).size).toBeGreaterThan(1);
  });

  it("graphAdjacency refuses malformed graphs naming the element", () => {
    expect1002(() => graphAdjacency({ clusters: ["a", "a"], links: [] }));
    expect1002(() => graphAdjacency({ clusters: ["a", "b"], links: [{ a: "a", b: "c", cost: 1 }] }));
    expect1002(() => graphAdjacency({ clusters: ["a", "b"], links: [{ a: "a", b: "b", cost: 1 }, { a: "b", b: "a", cost: 2 }] }));
    expect(() => graphAdjacency({ clusters: ["a", "b"], links: [{ a: "a", b: "b", cost: -1 }] })).toThrow(
      expect.objectContaining({ details: expect.objectContaining({ path: "links[0].cost" }) }),
    );
  });
});
