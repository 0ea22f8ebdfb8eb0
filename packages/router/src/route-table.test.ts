import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KeyRegistry } from "./key-registry.js";
import { compareRoutes, type ClusterRoute } from "./cluster-route.js";
import { RoutePolicySet, applyRule, type RoutePolicies, type RoutePolicyRule } from "./route-policy.js";
import { RouteSigner } from "./route-signing.js";
import { RouteTable, type RouteTableOptions } from "./route-table.js";
import type { RouteEntry, RouteUpdate } from "./route-update.js";
import { OFFER_ALL, SERVICE_KINDS, serviceAllows, serviceFilter, serviceFilterToOffers } from "./service-filter.js";
import {
  FederationSim,
  naiveChainAllows,
  naiveClusterAllowed,
  offersArb,
  prefixWordArb,
  routeAnnouncementsArb,
  routeEntryArb,
  routePoliciesArb,
  routePolicyRuleArb,
  type RouteAnnouncement,
} from "./testing/index.js";

let seqCounter = 0;
function upd(from: string, to: string, routes: RouteEntry[], extra: Partial<RouteUpdate> = {}): RouteUpdate {
  return { v: 1, advertiser: from, to, epoch: 1, seq: ++seqCounter, ttl_ms: 60_000, full: false, routes, withdrawn: [], ...extra };
}

function table(opts: Partial<RouteTableOptions> = {}, neighbours: string[] = ["b", "d"]): RouteTable {
  const t = new RouteTable({ localCluster: "a", epoch: 1, damping: false, ...opts });
  for (const n of neighbours) t.linkUp(n, 0);
  t.poll(0);
  return t;
}

describe("RouteTable: receiving", () => {
  it("refuses a route whose path holds the receiver or repeats a cluster (original item 19)", () => {
    const t = table();
    expect(t.receive("b", upd("b", "a", [{ destination: "c", path: ["b", "a", "c"], metric: 2 }]), 0)).toMatchObject({ accepted: true, refused: 1 });
    expect(t.receive("b", upd("b", "a", [{ destination: "e", path: ["b", "x", "b", "e"], metric: 2 }]), 0)).toMatchObject({ refused: 1 });
    expect(t.receive("b", upd("b", "a", [{ destination: "a", path: ["b", "a"], metric: 1 }]), 0)).toMatchObject({ refused: 1 });
    expect(t.bestRoute("c")).toBeUndefined();
    expect(t.bestRoute("e")).toBeUndefined();
    expect(t.stats.entriesRefused.loop).toBe(3);
  });

  it("a looped route withdraws the neighbour's earlier route (implicit withdrawal)", () => {
    const t = table();
    t.receive("b", upd("b", "a", [{ destination: "c", path: ["b", "c"], metric: 1 }]), 0);
    expect(t.bestRoute("c")?.path).toEqual(["a", "b", "c"]);
    t.receive("b", upd("b", "a", [{ destination: "c", path: ["b", "a", "c"], metric: 1 }]), 0);
    expect(t.bestRoute("c")).toBeUndefined();
  });

  it("refuses updates of strangers, of another advertiser, for another cluster, or malformed", () => {
    const t = table();
    expect(t.receive("x", upd("x", "a", []), 0)).toMatchObject({ accepted: false, reason: "unknown_neighbour" });
    expect(t.receive("b", upd("x", "a", []), 0)).toMatchObject({ accepted: false, reason: "advertiser_mismatch" });
    expect(t.receive("b", upd("b", "z", []), 0)).toMatchObject({ accepted: false, reason: "wrong_recipient" });
    expect(t.receive("b", { ...upd("b", "a", []), seq: 0 }, 0)).toMatchObject({ accepted: false, reason: "invalid" });
    expect(t.receive("b", "garbage", 0)).toMatchObject({ accepted: false, reason: "invalid" });
    expect(t.receive("b", upd("b", "a", [{ destination: "c", path: ["d", "c"], metric: 1 }]), 0)).toMatchObject({ refused: 1 });
    expect(t.stats.entriesRefused.path_mismatch).toBe(1);
    const dup = upd("b", "a", [{ destination: "c", path: ["b", "c"], metric: 1 }], { withdrawn: ["c"] });
    expect(t.receive("b", dup, 0)).toMatchObject({ accepted: false, reason: "invalid" });
  });

  it("selects by metric, then hops, then next hop id (original items 20, 21)", () => {
    const t = table({}, ["b", "d", "e"]);
    t.receive("b", upd("b", "a", [{ destination: "c", path: ["b", "c"], metric: 5 }]), 0);
    t.receive("d", upd("d", "a", [{ destination: "c", path: ["d", "c"], metric: 50 }]), 0);
    expect(t.bestRoute("c")).toMatchObject({ nextHop: "b", path: ["a", "b", "c"], metric: 6 });
    expect(t.routesTo("c", new Set(["b"])).map((r) => r.nextHop)).toEqual(["d"]);
    // Equal metric: fewer hops wins.
    t.receive("d", upd("d", "a", [{ destination: "c", path: ["d", "x", "c"], metric: 5 }]), 0);
    t.receive("e", upd("e", "a", [{ destination: "c", path: ["e", "c"], metric: 5 }]), 0);
    expect(t.routesTo("c").map((r) => r.nextHop)).toEqual(["b", "e", "d"]);
  });

  it("per destination the newest (epoch, seq) wins; a full update withdraws what it does not list", () => {
    const t = table();
    const older = upd("b", "a", [{ destination: "c", path: ["b", "c"], metric: 1 }]);
    const full = upd("b", "a", [{ destination: "e", path: ["b", "e"], metric: 1 }], { full: true });
    t.receive("b", full, 0);
    expect(t.receive("b", older, 0)).toMatchObject({ accepted: false, reason: "stale" });
    expect(t.bestRoute("c")).toBeUndefined();
    const newer = upd("b", "a", [], { withdrawn: ["e"] });
    const between = upd("b", "a", [{ destination: "e", path: ["b", "e"], metric: 9 }]);
    // between has a lower seq than newer: arrives last, loses.
    [between.seq, newer.seq] = [newer.seq, between.seq];
    t.receive("b", newer, 0);
    expect(t.receive("b", between, 0)).toMatchObject({ stale: 1 });
    expect(t.bestRoute("e")).toBeUndefined();
    // A new epoch (restart) is newer whatever its seq.
    expect(t.receive("b", upd("b", "a", [{ destination: "e", path: ["b", "e"], metric: 1 }], { epoch: 2, seq: 1, full: true }), 0)).toMatchObject({ applied: 1 });
    expect(t.bestRoute("e")?.metric).toBe(2);
  });

  it("routes expire ttl_ms after receipt (original item 22)", () => {
    const t = table();
    t.receive("b", upd("b", "a", [{ destination: "c", path: ["b", "c"], metric: 1 }], { ttl_ms: 1000 }), 100);
    t.poll(100);
    t.tick(600);
    expect(t.bestRoute("c")).toBeDefined();
    t.tick(1100);
    expect(t.bestRoute("c")).toBeUndefined();
    expect(t.poll(1100).events).toEqual([expect.objectContaining({ destination: "c", current: undefined })]);
  });

  it("is bounded: one neighbour too many is OVERLOADED, a destination too many is table_full", () => {
    const t = table({ maxNeighbours: 2, maxDestinations: 2 });
    expect(() => t.linkUp("e", 0)).toThrow(expect.objectContaining({ code: 1007 }));
    const r = t.receive(
      "b",
      upd("b", "a", [
        { destination: "b", path: ["b"], metric: 0 },
        { destination: "c", path: ["b", "c"], metric: 1 },
        { destination: "e", path: ["b", "e"], metric: 1 },
      ]),
      0,
    );
    expect(r).toMatchObject({ applied: 2, refused: 1 });
    expect(t.stats.entriesRefused.table_full).toBe(1);
    expect(() => new RouteTable({ localCluster: "a", epoch: 1, refreshIntervalMs: 5, ttlMs: 5 })).toThrow(/refreshIntervalMs/);
  });
});

describe("RouteTable: sending", () => {
  it("relays with itself prepended, never back to the next hop, with the link cost added (original item 25)", () => {
    const t = table();
    t.linkUp("d", 0, { cost: 3 });
    t.receive("b", upd("b", "a", [{ destination: "c", path: ["b", "c"], metric: 1 }]), 0);
    const out = t.poll(0);
    expect(out.updates.map((u) => u.to)).toEqual(["d"]);
    expect(out.updates[0]!.update.routes).toEqual([{ destination: "c", path: ["a", "b", "c"], metric: 2 }]);
    expect(out.events).toEqual([expect.objectContaining({ destination: "c", previous: undefined })]);
    expect(t.poll(0).updates).toEqual([]);
  });

  it("a new link gets a full update; refresh sends one again", () => {
    const t = table({ refreshIntervalMs: 1000, ttlMs: 3000 });
    t.linkUp("e", 10);
    const full = t.poll(10).updates;
    expect(full).toHaveLength(1);
    expect(full[0]).toMatchObject({ to: "e", update: { full: true, routes: [{ destination: "a", path: ["a"], metric: 0 }] } });
    t.tick(1500);
    expect(t.poll(1500).updates.map((u) => [u.to, u.update.full])).toEqual([
      ["b", true],
      ["d", true],
      ["e", true],
    ]);
  });

  it("withdrawals propagate: after a link loss, a triangle keeps only live routes (original item 27)", () => {
    const sim = new FederationSim({ ids: ["a", "b", "c"], edges: [["a", "b"], ["b", "c"], ["a", "c"]] });
    sim.runUntilQuiet();
    expect(sim.check()).toEqual([]);
    sim.unlink("a", "b");
    sim.runUntilQuiet();
    expect(sim.check()).toEqual([]);
    expect(sim.table("c").bestRoute("b")?.path).toEqual(["c", "b"]);
    expect(sim.table("c").routesTo("b").map((r) => r.nextHop)).toEqual(["b"]);
    expect(sim.table("a").bestRoute("b")?.path).toEqual(["a", "c", "b"]);
  });

  it("damps a flapping route: the alternative is used while it is suppressed", () => {
    const t = table({ damping: {} });
    const via = (n: string, m: number): RouteEntry => ({ destination: "c", path: [n, "c"], metric: m });
    const long = { ttl_ms: 3_600_000 };
    t.receive("d", upd("d", "a", [via("d", 10)], long), 0);
    for (let i = 0; i < 3; i++) {
      t.receive("b", upd("b", "a", [via("b", 1)], long), i);
      t.receive("b", upd("b", "a", [], { withdrawn: ["c"], ...long }), i);
    }
    t.receive("b", upd("b", "a", [via("b", 1)], long), 3);
    expect(t.isSuppressed("b", "c", 3)).toBe(true);
    expect(t.bestRoute("c")?.nextHop).toBe("d");
    t.tick(3 + 5 * 60_000);
    expect(t.bestRoute("c")?.nextHop).toBe("b");
  });
});

describe("RouteTable: policies", () => {
  it("export denies a destination to one neighbour only (original item 29)", () => {
    const sim = new FederationSim({
      ids: ["a", "b", "c"],
      edges: [["a", "b"], ["a", "c"]],
      options: (id) => (id === "a" ? { policies: { export: [{ neighbour: "c", clusters: { deny: ["a"] } }] } } : {}),
    });
    sim.runUntilQuiet();
    expect(sim.table("b").bestRoute("a")).toBeDefined();
    expect(sim.table("c").bestRoute("a")).toBeUndefined();
    // c still reaches b through a: only destination a is denied.
    expect(sim.table("c").bestRoute("b")?.path).toEqual(["c", "a", "b"]);
  });

  it("import rules filter, narrow offers and add to the metric", () => {
    const t = table({
      policies: {
        import: [
          { neighbour: "b", clusters: { allow: ["c", "e"] }, functions: { deny: ["admin."] }, metricAdd: 10 },
          { neighbour: "*", clusters: { deny: ["e"] } },
        ],
      },
    });
    t.receive(
      "b",
      upd("b", "a", [
        { destination: "c", path: ["b", "c"], metric: 1, offers: { functions: { allow: ["admin.", "pub."] } } },
        { destination: "x", path: ["b", "x"], metric: 1 },
      ]),
      0,
    );
    t.receive("d", upd("d", "a", [{ destination: "e", path: ["d", "e"], metric: 1 }]), 0);
    const c = t.bestRoute("c")!;
    expect(c.metric).toBe(12);
    expect(serviceAllows(c.offers, "function", "pub.echo")).toBe(true);
    expect(serviceAllows(c.offers, "function", "admin.reset")).toBe(false);
    expect(t.bestRoute("x")).toBeUndefined();
    expect(t.bestRoute("e")).toBeUndefined();
    expect(t.stats.entriesRefused.policy).toBe(2);
  });

  it("a reload re-evaluates the routes held, both ways, and re-exports (fixes original item 32)", () => {
    const t = table({ policies: { import: [{ neighbour: "b", clusters: { deny: ["c"] } }] } });
    t.receive("b", upd("b", "a", [{ destination: "c", path: ["b", "c"], metric: 1 }]), 0);
    expect(t.bestRoute("c")).toBeUndefined();
    t.reconfigure({ policies: {} }, 1);
    expect(t.bestRoute("c")?.path).toEqual(["a", "b", "c"]);
    const out = t.poll(1);
    expect(out.updates.every((u) => u.update.full)).toBe(true);
    expect(out.updates.find((u) => u.to === "d")!.update.routes.map((r) => r.destination)).toEqual(["a", "c"]);
    t.reconfigure({ policies: { export: [{ neighbour: "*", functions: { allow: [] } }] }, offers: { queues: { allow: ["jobs."] } } }, 2);
    const again = t.poll(2).updates.find((u) => u.to === "d")!.update;
    expect(again.routes.find((r) => r.destination === "a")!.offers).toEqual({ functions: { allow: [] }, queues: { allow: ["jobs."] } });
    expect(() => t.reconfigure({ policies: { import: [{ neighbour: "b", metricAdd: -1 }] } }, 3)).toThrow(
      expect.objectContaining({ details: expect.objectContaining({ path: "policies.import[0].metricAdd" }) }),
    );
    // The failed reload changed nothing.
    expect(t.bestRoute("c")).toBeDefined();
  });

  /**
   * End to end over a line c0-c1-c2-c3 with random offers and random export/import rules at
   * every cluster (destination lists, prefix lists, metric additions): the filter c3 holds for
   * c0 lets a name through exactly when every policy on the path does (naiveChainAllows); a
   * name any of them denies never passes; a destination any rule denies has no route; the
   * metric is the link costs plus every metricAdd.
   */
  it("policies never leak a denied prefix (property)", () => {
    const word = prefixWordArb({ maxLength: 3 });
    const rule = routePolicyRuleArb({ clusters: ["c0", "c1"], word, maxPrefixes: 3, maxMetricAdd: 5 });
    fc.assert(
      fc.property(
        offersArb({ word, maxPrefixes: 3 }),
        fc.array(fc.option(rule), { minLength: 6, maxLength: 6 }),
        fc.array(fc.tuple(fc.constantFrom(...SERVICE_KINDS), word), { maxLength: 12 }),
        (offers, rules, names) => {
          // rules: export of c0, import of c1, export of c1, import of c2, export of c2, import of c3.
          const r = (i: number): RoutePolicyRule[] => (rules[i] ? [rules[i]] : []);
          const ids = ["c0", "c1", "c2", "c3"];
          const sim = new FederationSim({
            ids,
            edges: [["c0", "c1"], ["c1", "c2"], ["c2", "c3"]],
            options: (id) => {
              const i = ids.indexOf(id);
              return { ...(i === 0 ? { offers } : {}), policies: { import: i > 0 ? r(2 * i - 1) : [], export: i < 3 ? r(2 * i) : [] } };
            },
          });
          sim.runUntilQuiet();
          const route = sim.table("c3").bestRoute("c0");
          const applied = rules.filter((x) => x !== null);
          if (!applied.every((x) => naiveClusterAllowed(x, "c0"))) {
            expect(route).toBeUndefined();
            return;
          }
          expect(route?.path).toEqual(["c3", "c2", "c1", "c0"]);
          expect(route!.metric).toBe(3 + applied.reduce((m, x) => m + (x.metricAdd ?? 0), 0));
          for (const [kind, name] of names) {
            expect(serviceAllows(route!.offers, kind, name)).toBe(naiveChainAllows([offers, ...applied], kind, name));
          }
        },
      ),
      { numRuns: 80 },
    );
  });
});

describe("RouteTable: signatures", () => {
  function signedPair(): { a: RouteTable; sb: RouteSigner; reg: KeyRegistry } {
    const sb = RouteSigner.generate("b");
    const reg = new KeyRegistry({ trusted: [{ clusterId: "b", publicKey: sb.publicKey }] });
    return { a: table({ keys: reg, requireSignatures: true }, ["b"]), sb, reg };
  }

  it("accepts signed updates, refuses unsigned and forged ones, and counts them (original item 33)", () => {
    const { a, sb } = signedPair();
    const u = upd("b", "a", [{ destination: "c", path: ["b", "c"], metric: 1 }]);
    expect(a.receive("b", u, 0)).toMatchObject({ accepted: false, reason: "unsigned" });
    const stranger = RouteSigner.generate("b");
    expect(a.receive("b", stranger.signUpdate(u), 0)).toMatchObject({ accepted: false, reason: "bad_signature" });
    const good = sb.signUpdate(u);
    expect(a.receive("b", { ...good, routes: [{ ...good.routes[0]!, metric: 0 }] }, 0)).toMatchObject({ reason: "bad_signature" });
    expect(a.bestRoute("c")).toBeUndefined();
    expect(a.receive("b", good, 0)).toMatchObject({ accepted: true, applied: 1 });
    expect(a.stats.updatesRefused).toMatchObject({ unsigned: 1, bad_signature: 2 });
  });

  it("a whole federation converges with signatures required", () => {
    const ids = ["a", "b", "c", "d"];
    const signers = new Map(ids.map((id) => [id, RouteSigner.generate(id)]));
    const trusted = ids.map((id) => ({ clusterId: id, publicKey: signers.get(id)!.publicKey }));
    const sim = new FederationSim({
      ids,
      edges: [["a", "b"], ["b", "c"], ["c", "d"], ["d", "a"]],
      options: (id) => ({ signer: signers.get(id)!, keys: new KeyRegistry({ trusted }), requireSignatures: true }),
    });
    sim.runUntilQuiet();
    expect(sim.check()).toEqual([]);
    for (const id of ids) expect(sim.table(id).stats.updatesRefused.bad_signature + sim.table(id).stats.updatesRefused.unsigned).toBe(0);
  });

  /** Random updates; each is delivered unsigned, signed by an untrusted key, tampered, or signed: only the last may change anything. */
  it("a forged or unsigned update is refused when signing is required (property)", () => {
    const entry = routeEntryArb({ advertiser: "b", destinations: ["c", "e", "f"], transit: ["x"], maxTransit: 1, maxMetric: 100, offers: true });
    const stranger = RouteSigner.generate("b");
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            routes: fc.uniqueArray(entry, { selector: (e) => e.destination, maxLength: 3 }),
            full: fc.boolean(),
            how: fc.constantFrom("unsigned", "stranger", "tampered", "wrong_cluster_key", "signed"),
          }),
          { maxLength: 12 },
        ),
        (steps) => {
          const { a, sb } = signedPair();
          const other = RouteSigner.generate("d");
          for (const s of steps) {
            const u = upd("b", "a", s.routes, { full: s.full });
            let msg: RouteUpdate = u;
            if (s.how === "stranger") msg = stranger.signUpdate(u);
            if (s.how === "wrong_cluster_key") msg = { ...other.signUpdate(u), advertiser: "b" };
            if (s.how === "tampered") msg = { ...sb.signUpdate(u), seq: u.seq + 1000 };
            if (s.how === "signed") msg = sb.signUpdate(u);
            const before = JSON.stringify(a.routes());
            const res = a.receive("b", msg, 0);
            expect(res.accepted).toBe(s.how === "signed");
            if (s.how !== "signed") expect(JSON.stringify(a.routes())).toBe(before);
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("RouteTable: properties", () => {
  const neighbours = ["n1", "n2", "n3"];
  const clusters = ["n1", "n2", "n3", "d1", "d2", "d3", "me", "x"];
  // Updates from neighbours with paths that are usually well-formed, sometimes looped or wrong.
  const arbUpdates = routeAnnouncementsArb({ receiver: "me", neighbours, destinations: clusters, adversarial: true, offers: { maxPrefixes: 2 } });
  const arbPolicies = routePoliciesArb({ neighbours, clusters, maxPrefixes: 2 });

  function run(updates: RouteAnnouncement[], policies?: RoutePolicies): RouteTable {
    const t = new RouteTable({ localCluster: "me", epoch: 1, damping: false, ...(policies ? { policies } : {}) });
    for (const n of neighbours) t.linkUp(n, 0);
    for (const { from, update } of updates) t.receive(from, update, 0);
    return t;
  }

  it("route selection does not depend on the order updates arrive in (property)", () => {
    fc.assert(
      fc.property(arbUpdates, fc.option(arbPolicies, { nil: undefined }), fc.integer(), (updates, policies, seed) => {
        const shuffled = fc.sample(fc.shuffledSubarray(updates, { minLength: updates.length, maxLength: updates.length }), { seed, numRuns: 1 })[0]!;
        const t1 = run(updates, policies);
        const t2 = run(shuffled, policies);
        expect(t2.routes()).toEqual(t1.routes());
        for (const d of clusters) expect(t2.routesTo(d)).toEqual(t1.routesTo(d));
      }),
      { numRuns: 200 },
    );
  });

  it("a route never holds a loop and always starts with a linked neighbour (property)", () => {
    fc.assert(
      fc.property(arbUpdates, (updates) => {
        const t = run(updates);
        for (const d of clusters) {
          for (const r of t.routesTo(d)) {
            expect(new Set(r.path).size).toBe(r.path.length);
            expect(r.path[0]).toBe("me");
            expect(r.path.indexOf("me")).toBe(0);
            expect(r.path[r.path.length - 1]).toBe(d);
            if (d !== "me") {
              expect(neighbours).toContain(r.nextHop);
              expect(r.path[1]).toBe(r.nextHop);
            }
          }
        }
        // And what it sends is loop-free for its receiver.
        for (const out of t.poll(0).updates) for (const e of out.update.routes) expect(e.path).not.toContain(out.to);
      }),
      { numRuns: 200 },
    );
  });
});

describe("RouteTable: routes of the cluster's other gateways (transit clusters)", () => {
  const viaOther = (path: string[], metric: number, offers = OFFER_ALL): ClusterRoute => ({ destination: path[path.length - 1] as string, nextHop: path[1] as string, path, metric, offers });

  it("re-advertises another gateway's route to its own neighbours, and withdraws it when it goes", () => {
    // b1 of cluster b links to a; b2 (another node of b) links to c.
    const t = new RouteTable({ localCluster: "b", epoch: 1, damping: false });
    t.linkUp("a", 0);
    expect(t.poll(0).updates[0]?.update.routes.map((r) => r.destination)).toEqual(["b"]);
    t.setClusterRoutes([viaOther(["b", "c"], 1)], 1);
    const out = t.poll(1);
    expect(out.updates).toHaveLength(1);
    expect(out.updates[0]?.update).toMatchObject({ to: "a", full: false, routes: [{ destination: "c", path: ["b", "c"], metric: 1 }], withdrawn: [] });
    // Not this node's route: not its best, no event, not in what it announces inside the cluster.
    expect(out.events).toEqual([]);
    expect(t.bestRoute("c")).toBeUndefined();
    expect(t.routes().map((r) => r.destination)).toEqual(["b"]);
    expect(t.exportedRoute("c")?.path).toEqual(["b", "c"]);
    // Unchanged: nothing sent; a full update (new link, refresh) lists it.
    t.setClusterRoutes([viaOther(["b", "c"], 1)], 2);
    expect(t.poll(2).updates).toEqual([]);
    t.linkUp("e", 3);
    expect(t.poll(3).updates.find((u) => u.to === "e")?.update.routes.map((r) => r.destination)).toEqual(["b", "c"]);
    t.setClusterRoutes([], 4);
    const gone = t.poll(4).updates;
    expect(gone.map((u) => [u.to, u.update.withdrawn])).toEqual([
      ["a", ["c"]],
      ["e", ["c"]],
    ]);
  });

  it("the better of its own and the other gateway's route is exported; split horizon and export rules apply", () => {
    const t = new RouteTable({ localCluster: "b", epoch: 1, damping: false, policies: { export: [{ neighbour: "e", clusters: { deny: ["c"] } }] } });
    t.linkUp("a", 0);
    t.linkUp("e", 0);
    t.poll(0);
    // Own route b-a-c (metric 2); the other gateway's b-c (metric 1) is better.
    t.receive("a", upd("a", "b", [{ destination: "c", path: ["a", "c"], metric: 1 }]), 0);
    t.setClusterRoutes([viaOther(["b", "c"], 1), viaOther(["b", "a", "x"], 2)], 0);
    const u = t.poll(0).updates;
    // To a: b-c (its own route passes through a anyway); b-a-x never goes back to a.
    expect(u.find((x) => x.to === "a")?.update.routes).toEqual([{ destination: "c", path: ["b", "c"], metric: 1 }]);
    // To e: c denied by the export rule; x through a.
    expect(u.find((x) => x.to === "e")?.update.routes).toEqual([{ destination: "x", path: ["b", "a", "x"], metric: 2 }]);
    // A worse route of the other gateway loses to its own (ties too).
    t.setClusterRoutes([viaOther(["b", "d", "c"], 5)], 1);
    expect(t.exportedRoute("c")?.path).toEqual(["b", "a", "c"]);
    t.setClusterRoutes([viaOther(["b", "a", "c"], 2)], 1);
    expect(t.exportedRoute("c")).toBe(t.bestRoute("c"));
  });

  it("refuses malformed cluster routes with 1002 and changes nothing", () => {
    const t = new RouteTable({ localCluster: "b", epoch: 1, damping: false });
    t.linkUp("a", 0);
    t.poll(0);
    t.setClusterRoutes([viaOther(["b", "c"], 1)], 0);
    for (const bad of [[viaOther(["x", "c"], 1)], [viaOther(["b", "c", "b", "d"], 1)], [viaOther(["b"], 0)], [viaOther(["b", "c"], 1), viaOther(["b", "d", "c"], 1)]]) {
      expect(() => t.setClusterRoutes(bad, 1)).toThrow(expect.objectContaining({ code: 1002 }) as Error);
    }
    expect(t.exportedRoute("c")?.path).toEqual(["b", "c"]);
  });

  it("what a neighbour holds is always the best of own and other gateways' routes it may get (property)", () => {
    const neighbours = ["n1", "n2", "n3"];
    const clusters = ["n1", "n2", "n3", "d1", "d2", "d3", "x"];
    const arbUpdates = routeAnnouncementsArb({ receiver: "me", neighbours, destinations: [...clusters, "me"], adversarial: true, offers: { maxPrefixes: 2 } });
    const clusterRouteArb = fc
      .tuple(fc.constantFrom(...clusters), fc.uniqueArray(fc.constantFrom(...clusters), { maxLength: 3 }), fc.integer({ min: 0, max: 6 }), fc.option(offersArb({ maxPrefixes: 2 }), { nil: undefined }))
      .map(([d, mid, metric, offers]): ClusterRoute => {
        const path = ["me", ...mid.filter((c) => c !== d), d];
        return { destination: d, nextHop: path[1] as string, path, metric, offers: serviceFilter(offers) };
      });
    const clusterSetArb = fc.uniqueArray(clusterRouteArb, { selector: (r) => r.destination, maxLength: 5 });
    const opArb = fc.oneof(
      arbUpdates.map((u) => ({ kind: "updates" as const, u })),
      clusterSetArb.map((r) => ({ kind: "cluster" as const, r })),
      fc.constantFrom(...neighbours).map((n) => ({ kind: "relink" as const, n })),
    );
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 8 }), fc.option(routePoliciesArb({ neighbours, clusters: [...clusters, "me"], maxPrefixes: 2 }), { nil: undefined }), (ops, policies) => {
        const t = new RouteTable({ localCluster: "me", epoch: 1, damping: false, ...(policies ? { policies } : {}) });
        // Same updates without cluster routes: the table's own routes must not depend on them.
        const plain = new RouteTable({ localCluster: "me", epoch: 1, damping: false, ...(policies ? { policies } : {}) });
        for (const n of neighbours) {
          t.linkUp(n, 0);
          plain.linkUp(n, 0);
        }
        const held = new Map<string, Map<string, RouteEntry>>();
        const drain = () => {
          for (const { to, update } of t.poll(0).updates) {
            let h = held.get(to);
            if (h === undefined || update.full) held.set(to, (h = new Map()));
            for (const w of update.withdrawn) h.delete(w);
            for (const r of update.routes) {
              expect(r.path).not.toContain(to);
              h.set(r.destination, r);
            }
          }
        };
        drain();
        let last: ClusterRoute[] = [];
        for (const op of ops) {
          if (op.kind === "updates") {
            for (const { from, update } of op.u) {
              t.receive(from, update, 0);
              plain.receive(from, update, 0);
            }
          } else if (op.kind === "cluster") {
            last = op.r;
            t.setClusterRoutes(op.r, 0);
          } else {
            t.linkDown(op.n, 0);
            plain.linkDown(op.n, 0);
            held.delete(op.n);
            t.linkUp(op.n, 0);
            plain.linkUp(op.n, 0);
          }
          drain();
        }
        expect(t.routes()).toEqual(plain.routes());
        // Reference: per destination the better of own best and cluster route (own on ties),
        // unless it passes through the neighbour or its export rule refuses it.
        const compiled = RoutePolicySet.compile(policies);
        for (const n of neighbours) {
          const expected = new Map<string, RouteEntry>();
          for (const d of [...clusters, "me"]) {
            const own = t.bestRoute(d);
            const other = d === "me" ? undefined : last.find((r) => r.destination === d);
            const r = own === undefined ? other : other === undefined ? own : compareRoutes(other, own) < 0 ? other : own;
            if (r === undefined || r.path.includes(n)) continue;
            const res = applyRule(compiled.exportRule(n), d, r.offers, r.metric);
            if (res === undefined) continue;
            const e: RouteEntry = { destination: d, path: [...r.path], metric: res.metric };
            const offers = serviceFilterToOffers(res.offers);
            if (offers !== undefined) e.offers = offers;
            expected.set(d, e);
          }
          expect(Object.fromEntries(held.get(n) ?? [])).toEqual(Object.fromEntries(expected));
        }
      }),
      { numRuns: 300 },
    );
  });
});
