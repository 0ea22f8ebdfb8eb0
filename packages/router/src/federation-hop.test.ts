import { createUnifiedMessage, forwardStep, type UnifiedMessage } from "@mpreg/envelope";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ClusterRoute, ClusterRouteSource } from "./cluster-route.js";
import { federationDropError, nextClusterHop } from "./federation-hop.js";
import { OFFER_ALL, serviceFilter } from "./service-filter.js";
import { FederationSim } from "./testing/index.js";

function msg(target: string | undefined, maxHops = 8, source = { node: "n-a", cluster: "a" }): UnifiedMessage {
  return createUnifiedMessage({
    topic: "t",
    message_type: "rpc",
    payload: null,
    headers: { source_node: source.node, source_cluster: source.cluster, ...(target !== undefined ? { target_cluster: target } : {}) },
    maxHops,
    message_id: "m1",
    timestamp: 0,
  });
}

function routes(list: ClusterRoute[]): ClusterRouteSource {
  return {
    routesTo: (d, avoid) => list.filter((r) => r.destination === d && !(avoid && r.path.slice(1).some((c) => avoid.has(c)))),
  };
}

const r = (path: string[], metric = path.length - 1, offers = OFFER_ALL): ClusterRoute => ({
  destination: path[path.length - 1]!,
  nextHop: path[1]!,
  path,
  metric,
  offers,
});

describe("nextClusterHop", () => {
  const self = { nodeId: "n-a", clusterId: "a" };

  it("delivers locally when the target is this cluster or unset", () => {
    expect(nextClusterHop({ message: msg(undefined), self, routes: routes([]), relay: false })).toMatchObject({ action: "deliver" });
    expect(nextClusterHop({ message: msg("a"), self, routes: routes([]), relay: false })).toMatchObject({ action: "deliver" });
  });

  it("forwards along the best route; the originator does not step the headers", () => {
    const m = msg("c");
    const d = nextClusterHop({ message: m, self, routes: routes([r(["a", "b", "c"])]), relay: false });
    expect(d).toMatchObject({ action: "forward", nextCluster: "b" });
    expect(d.action === "forward" && d.message).toBe(m);
  });

  it("a relay applies forwardStep: node loop and exhausted budget (original items 42, 43)", () => {
    const atB = { nodeId: "n-b", clusterId: "b" };
    const m = msg("c", 0);
    expect(nextClusterHop({ message: m, self: atB, routes: routes([r(["b", "c"])]), relay: true })).toEqual({ action: "drop", reason: "hop_budget_exhausted" });
    const looped = forwardStep(msg("c"), "n-b", "b");
    if (looped.action !== "forward") throw new Error("setup");
    expect(nextClusterHop({ message: looped.message, self: atB, routes: routes([r(["b", "c"])]), relay: true })).toEqual({ action: "drop", reason: "loop" });
    const ok = nextClusterHop({ message: msg("c"), self: atB, routes: routes([r(["b", "c"])]), relay: true });
    expect(ok).toMatchObject({ action: "forward", nextCluster: "c" });
    if (ok.action === "forward") {
      expect(ok.message.headers.routing_path).toEqual(["n-a", "n-b"]);
      expect(ok.message.headers.federation_path).toEqual(["a", "b"]);
      expect(ok.message.headers.hops_remaining).toBe(7);
    }
  });

  it("a message that left this cluster and came back is a loop; a trailing own cluster is not", () => {
    // Path a → x → (another node of a): federation_path [a, x, a] after the step.
    const s1 = forwardStep(msg("c"), "n-x", "x");
    if (s1.action !== "forward") throw new Error("setup");
    const atA2 = { nodeId: "n-a2", clusterId: "a" };
    expect(nextClusterHop({ message: s1.message, self: atA2, routes: routes([r(["a", "b", "c"])]), relay: true })).toEqual({
      action: "drop",
      reason: "loop",
    });
    // Two nodes of x in a row: federation_path stays [a, x].
    const s2 = forwardStep(s1.message, "n-x2", "x");
    if (s2.action !== "forward") throw new Error("setup");
    expect(s2.message.headers.federation_path).toEqual(["a", "x"]);
    expect(nextClusterHop({ message: s1.message, self: { nodeId: "n-x2", clusterId: "x" }, routes: routes([r(["x", "c"])]), relay: true })).toMatchObject({
      action: "forward",
      nextCluster: "c",
    });
  });

  it("skips routes through visited clusters, over budget, or denying the service; says why when none is left", () => {
    const viaA = r(["x", "a", "c"]);
    const viaB = r(["x", "b", "d", "c"], 1);
    const s1 = forwardStep(msg("c", 1), "n-x", "x");
    if (s1.action !== "forward") throw new Error("setup");
    const atX = { nodeId: "n-x", clusterId: "x" };
    const step = (m: UnifiedMessage, list: ClusterRoute[], service?: { kind: "function"; name: string }) =>
      nextClusterHop({ message: m, self: atX, routes: routes(list), relay: false, ...(service ? { service } : {}) });
    // hops_remaining is 0 after x's step: only a direct route fits; viaA passes a (visited).
    expect(step(s1.message, [])).toEqual({ action: "drop", reason: "no_route" });
    expect(step(s1.message, [viaA])).toEqual({ action: "drop", reason: "loop" });
    expect(step(s1.message, [viaA, viaB])).toEqual({ action: "drop", reason: "hop_budget_exhausted" });
    const direct = r(["x", "c"], 9, serviceFilter({ functions: { allow: ["pub."] } }));
    expect(step(s1.message, [viaA, viaB, direct], { kind: "function", name: "priv.f" })).toEqual({ action: "drop", reason: "denied" });
    expect(step(s1.message, [viaA, viaB, direct], { kind: "function", name: "pub.f" })).toMatchObject({ action: "forward", nextCluster: "c" });
  });

  it("maps a drop to UNREACHABLE 1005 with the reason", () => {
    expect(federationDropError("no_route", "c").toWire()).toEqual({
      code: 1005,
      message: "federation: no route",
      details: { reason: "no_route", target_cluster: "c" },
    });
  });

  /**
   * Over converged random lines and rings, a message walked hop by hop with nextClusterHop
   * (one node per cluster) reaches its target within the budget, or is dropped with a reason;
   * it never visits a cluster twice.
   */
  it("walking a message along the decisions reaches the target without revisiting a cluster (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 9 }), fc.boolean(), fc.integer({ min: 0, max: 8 }), fc.nat(), fc.nat(), (n, ring, budget, s, t) => {
        const ids = Array.from({ length: n }, (_, i) => `k${i}`);
        const edges: [string, string][] = ids.slice(1).map((id, i) => [ids[i]!, id]);
        if (ring && n > 2) edges.push([ids[n - 1]!, ids[0]!]);
        const sim = new FederationSim({ ids, edges });
        sim.runUntilQuiet();
        const src = ids[s % n]!;
        const dst = ids[t % n]!;
        let m = msg(dst, budget, { node: `node-${src}`, cluster: src });
        let at = src;
        let relay = false;
        const seen = [src];
        for (let i = 0; i < 20; i++) {
          const d = nextClusterHop({ message: m, self: { nodeId: `node-${at}`, clusterId: at }, routes: sim.table(at), relay });
          if (d.action === "deliver") {
            expect(at).toBe(dst);
            return;
          }
          if (d.action === "drop") {
            // Only the budget can stop a message on a connected graph.
            expect(d.reason).toBe("hop_budget_exhausted");
            expect(sim.table(src).bestRoute(dst)!.path.length - 2).toBeGreaterThan(budget);
            return;
          }
          expect(seen).not.toContain(d.nextCluster);
          seen.push(d.nextCluster);
          m = d.message;
          at = d.nextCluster;
          relay = true;
        }
        throw new Error("did not finish");
      }),
      { numRuns: 100 },
    );
  });
});
