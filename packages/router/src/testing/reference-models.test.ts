import { describe, expect, it } from "vitest";
import {
  FederationSim,
  bruteForceBestRoute,
  bruteForceBestRoutes,
  clusterIds,
  naiveChainAllows,
  naiveClusterAllowed,
  naivePrefixAllows,
  naiveTopicMatch,
  shortestDistances,
  type ClusterGraph,
} from "./index.js";

/** The reference models on hand-checked cases, so that a wrong model cannot pass by agreeing with a wrong implementation. */

describe("naiveTopicMatch", () => {
  it.each([
    ["a.b", "a.b", true],
    ["a.*", "a", false],
    ["a.#", "a", true],
    ["#", "x.y", true],
    ["#.z", "z", true],
    ["a.#.c", "a.b.b.c", true],
    ["a.#.c", "a.b.b", false],
    ["a.*.#", "a", false],
    ["#.*.#", "a", true],
    ["#.*.#", "a.b.c", true],
    ["*.*", "a", false],
  ])("%s vs %s → %s", (p, t, want) => {
    expect(naiveTopicMatch(p, t)).toBe(want);
  });
});

describe("naive filters", () => {
  it("prefix lists: absent allow is everything, [] is nothing, deny wins", () => {
    expect(naivePrefixAllows(undefined, "x")).toBe(true);
    expect(naivePrefixAllows({}, "x")).toBe(true);
    expect(naivePrefixAllows({ allow: [] }, "x")).toBe(false);
    expect(naivePrefixAllows({ allow: ["billing."], deny: ["billing.admin"] }, "billing.charge")).toBe(true);
    expect(naivePrefixAllows({ allow: ["billing."], deny: ["billing.admin"] }, "billing.admin.reset")).toBe(false);
    expect(naivePrefixAllows({ deny: [""] }, "anything")).toBe(false);
  });

  it("a chain allows what every element allows, per kind", () => {
    const chain = [{ functions: { allow: ["a"] } }, undefined, null, { functions: { deny: ["ab"] }, topics: { allow: [] } }];
    expect(naiveChainAllows(chain, "function", "aa")).toBe(true);
    expect(naiveChainAllows(chain, "function", "ab.x")).toBe(false);
    expect(naiveChainAllows(chain, "function", "b")).toBe(false);
    expect(naiveChainAllows(chain, "topic", "t")).toBe(false);
    expect(naiveChainAllows(chain, "queue", "q")).toBe(true);
    expect(naiveChainAllows([], "queue", "q")).toBe(true);
  });

  it("destination lists: deny wins, allow restricts when given", () => {
    expect(naiveClusterAllowed(undefined, "c")).toBe(true);
    expect(naiveClusterAllowed({}, "c")).toBe(true);
    expect(naiveClusterAllowed({ clusters: { allow: [] } }, "c")).toBe(false);
    expect(naiveClusterAllowed({ clusters: { allow: ["c"], deny: ["c"] } }, "c")).toBe(false);
    expect(naiveClusterAllowed({ clusters: { allow: ["c"] } }, "c")).toBe(true);
    expect(naiveClusterAllowed({ clusters: { deny: ["d"] } }, "c")).toBe(true);
  });
});

describe("bruteForceBestRoutes", () => {
  // a-b-d and a-c-d cost the same; a-d costs more; e is cut off.
  const square: ClusterGraph = {
    clusters: ["a", "b", "c", "d", "e"],
    links: [
      { a: "a", b: "c", cost: 1 },
      { a: "c", b: "d", cost: 1 },
      { a: "a", b: "b", cost: 1 },
      { a: "b", b: "d", cost: 1 },
      { a: "a", b: "d", cost: 3 },
    ],
  };

  it("keeps the least route by metric, then hops, then next hop", () => {
    const r = bruteForceBestRoutes(square, "a");
    expect(r.get("d")).toEqual({ destination: "d", nextHop: "b", path: ["a", "b", "d"], metric: 2 });
    expect(r.get("c")?.path).toEqual(["a", "c"]);
    expect(r.has("e")).toBe(false);
    expect(r.has("a")).toBe(false);
    expect(bruteForceBestRoute(square, "a", "d", { avoid: new Set(["b"]) })?.path).toEqual(["a", "c", "d"]);
    expect(bruteForceBestRoute(square, "a", "d", { avoid: new Set(["b", "c"]) })).toEqual({ destination: "d", nextHop: "d", path: ["a", "d"], metric: 3 });
    expect(bruteForceBestRoute(square, "a", "d", { avoid: new Set(["d"]) })).toBeUndefined();
    // Fewer hops wins at equal metric.
    const zero = { clusters: ["a", "b", "c"], links: [{ a: "a", b: "b", cost: 0 }, { a: "b", b: "c", cost: 0 }, { a: "a", b: "c", cost: 0 }] };
    expect(bruteForceBestRoute(zero, "a", "c")?.path).toEqual(["a", "c"]);
    expect(shortestDistances(square, "a")).toEqual(new Map([["a", 0], ["c", 1], ["b", 1], ["d", 2]]));
  });

  it("gives up on graphs too large to enumerate", () => {
    const ids = clusterIds(12);
    const complete = { clusters: ids, links: ids.flatMap((a, i) => ids.slice(i + 1).map((b) => ({ a, b, cost: 1 }))) };
    expect(() => bruteForceBestRoutes(complete, "c000", { maxPaths: 10_000 })).toThrow(expect.objectContaining({ code: 1002 }));
  });
});

describe("FederationSim", () => {
  it("counts rounds as message generations and ms as simulated time to the last delivery", () => {
    const sim = new FederationSim({ ids: ["a", "b", "c", "d"], edges: [["a", "b"], ["b", "c"], ["c", "d"]], roundMs: 10 });
    // Each cluster's own route needs three hops to cross the line; nothing is sent back to a next hop.
    expect(sim.runUntilQuiet()).toMatchObject({ rounds: 3, ms: 30, quiet: true });
    expect(sim.check()).toEqual([]);
    sim.unlink("c", "d");
    const r = sim.runUntilQuiet();
    expect(r).toMatchObject({ rounds: 2, ms: 20, quiet: true });
    expect(sim.check()).toEqual([]);
    expect(sim.table("a").bestRoute("d")).toBeUndefined();
    expect(sim.links()).toEqual([["a", "b"], ["b", "c"]]);
  });

  it("delivers by per-link latency, drops what was in flight on a failed link, and checks link-state too", () => {
    const graph: ClusterGraph = { clusters: ["a", "b", "c"], links: [{ a: "a", b: "b", cost: 1 }, { a: "b", b: "c", cost: 5 }, { a: "a", b: "c", cost: 9 }] };
    const slow = (x: string, y: string): number => (x === "c" || y === "c" ? 100 : 1);
    const sim = FederationSim.fromGraph(graph, { mode: "link-state", latency: slow });
    expect(sim.runUntilQuiet().ms).toBeGreaterThanOrEqual(100);
    expect(sim.check()).toEqual([]);
    expect(sim.linkState("a").bestRoute("c")?.path).toEqual(["a", "b", "c"]);
    sim.unlink("b", "c");
    sim.runUntilQuiet();
    expect(sim.check()).toEqual([]);
    // Up again, then down while the slow link's first messages are still in flight.
    sim.link("b", "c");
    expect(sim.advance(50).quiet).toBe(false);
    sim.unlink("b", "c");
    sim.runUntilQuiet();
    expect(sim.dropped).toBeGreaterThan(0);
    expect(sim.check()).toEqual([]);
    expect(sim.linkState("a").bestRoute("c")?.path).toEqual(["a", "c"]);
    expect(() => sim.table("a")).toThrow(expect.objectContaining({ code: 1002 }));
    expect(() => new FederationSim({ ids: ["a"], edges: [["a", "z"]] })).toThrow(expect.objectContaining({ code: 1002 }));
  });
});
