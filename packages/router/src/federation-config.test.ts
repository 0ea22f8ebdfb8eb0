import { createUnifiedMessage } from "@mpreg/envelope";
import { describe, expect, it } from "vitest";
import { createFederation, validateFederationConfig, type FederationConfig } from "./federation-config.js";
import { nextClusterHop } from "./federation-hop.js";
import { RoutePolicySet, applyRule } from "./route-policy.js";
import { generateRouteKey } from "./route-signing.js";
import { OFFER_ALL, serviceAllows } from "./service-filter.js";

const pathOf = (f: () => unknown): unknown => {
  try {
    f();
  } catch (e) {
    return (e as { details?: { path?: string } }).details?.path;
  }
  return undefined;
};

describe("RoutePolicySet", () => {
  it("picks the neighbour's own rule, else '*', else pass", () => {
    const p = RoutePolicySet.compile({
      export: [
        { neighbour: "b", clusters: { deny: ["x"] }, metricAdd: 5 },
        { neighbour: "*", functions: { allow: ["pub."] } },
      ],
    });
    expect(applyRule(p.exportRule("b"), "x", OFFER_ALL, 1)).toBeUndefined();
    expect(applyRule(p.exportRule("b"), "y", OFFER_ALL, 1)?.metric).toBe(6);
    const other = applyRule(p.exportRule("c"), "x", OFFER_ALL, 1)!;
    expect(serviceAllows(other.offers, "function", "priv.f")).toBe(false);
    expect(applyRule(p.importRule("b"), "x", OFFER_ALL, 1)).toEqual({ offers: OFFER_ALL, metric: 1 });
  });

  it("refuses malformed rules naming the field", () => {
    expect(pathOf(() => RoutePolicySet.compile({ import: [{ neighbour: "b" }, { neighbour: "b" }] }))).toBe("policies.import[1].neighbour");
    expect(pathOf(() => RoutePolicySet.compile({ export: [{ neighbour: "" }] }))).toBe("policies.export[0].neighbour");
    expect(pathOf(() => RoutePolicySet.compile({ export: [{ neighbour: "b", clusters: { allow: [1] } }] }))).toBe("policies.export[0].clusters.allow[0]");
    expect(pathOf(() => RoutePolicySet.compile({ export: [{ neighbour: "b", queues: { deny: "x" } }] }))).toBe("policies.export[0].queues.deny");
    expect(pathOf(() => RoutePolicySet.compile({ export: [{ neighbour: "b", metric_add: 1 }] }))).toBe("policies.export[0].metric_add");
    expect(pathOf(() => RoutePolicySet.compile({ export: {} }))).toBe("policies.export");
  });
});

describe("federation config", () => {
  const a = generateRouteKey();
  const b = generateRouteKey();
  const cfg: FederationConfig = {
    links: [{ url: "ws://b.example:6000", clusterId: "b" }],
    offers: { functions: { deny: ["internal."] } },
    export: [{ neighbour: "*", queues: { allow: [] } }],
    import: [{ neighbour: "b", metricAdd: 10 }],
    keys: { signingKey: a.seed, trusted: [{ clusterId: "b", publicKey: b.publicKey }] },
    requireSignatures: true,
  };

  it("validates and builds a path-vector federation", () => {
    expect(validateFederationConfig(cfg)).toBe(cfg);
    const f = createFederation(cfg, { localCluster: "a", epoch: 1 });
    expect(f.mode).toBe("path-vector");
    expect(f.signer?.publicKey).toBe(a.publicKey);
    expect(f.keys.keys("b").map((k) => k.publicKey)).toEqual([b.publicKey]);
    f.table!.linkUp("b", 0);
    const out = f.table!.poll(0).updates[0]!.update;
    expect(out.sig?.key_id).toBe(a.keyId);
    expect(out.routes[0]!.offers).toEqual({ functions: { deny: ["internal."] }, queues: { allow: [] } });
    expect(f.routes).toBe(f.table);
  });

  it("builds link-state mode", () => {
    const f = createFederation({ mode: "link-state" }, { localCluster: "a", epoch: 1 });
    expect(f.linkState).toBeDefined();
    expect(f.table).toBeUndefined();
  });

  it("refuses bad settings naming the field", () => {
    expect(pathOf(() => validateFederationConfig({ linkz: [] }))).toBe("federation.linkz");
    expect(pathOf(() => validateFederationConfig({ links: [{ url: "http://x", clusterId: "b" }] }))).toBe("federation.links[0].url");
    expect(pathOf(() => validateFederationConfig({ export: [{ neighbour: "b", metricAdd: 1.5 }] }))).toBe("federation.export[0].metricAdd");
    expect(pathOf(() => validateFederationConfig({ keys: { signingKey: "nope" } }))).toBe("federation.keys.signingKey");
    expect(pathOf(() => validateFederationConfig({ keys: { trusted: [{ clusterId: "b", publicKey: "x" }] } }))).toBe("federation.keys.trusted[0].publicKey");
    expect(pathOf(() => validateFederationConfig({ requireSignatures: true }))).toBe("federation.requireSignatures");
    expect(pathOf(() => validateFederationConfig({ damping: { halfLifeMs: 0 } }))).toBe("federation.damping.halfLifeMs");
    expect(pathOf(() => validateFederationConfig({ mode: "ospf" }))).toBe("federation.mode");
    expect(pathOf(() => validateFederationConfig({ offers: { topics: { allow: "x" } } }))).toBe("federation.offers.topics.allow");
    expect(validateFederationConfig(undefined)).toEqual({});
  });
});

describe("docs/federation.md: three clusters in a line", () => {
  it("builds from the documented configs, converges signed, and decides hops as documented", () => {
    const k = { a: generateRouteKey(), b: generateRouteKey(), c: generateRouteKey() };
    const trust = (id: "a" | "b" | "c") => ({ clusterId: `cluster-${id}`, publicKey: k[id].publicKey });
    const configs: Record<string, unknown> = {
      "cluster-a": {
        links: [{ url: "ws://b1.example:6000", clusterId: "cluster-b" }],
        import: [{ neighbour: "cluster-b", functions: { deny: ["admin."] } }],
        keys: { signingKey: k.a.seed, trusted: [trust("b")] },
        requireSignatures: true,
      },
      "cluster-b": {
        links: [
          { url: "ws://a1.example:6000", clusterId: "cluster-a" },
          { url: "ws://c1.example:6000", clusterId: "cluster-c" },
        ],
        offers: { queues: { allow: [] } },
        keys: { signingKey: k.b.seed, trusted: [trust("a"), trust("c")] },
        requireSignatures: true,
      },
      "cluster-c": {
        links: [{ url: "ws://b1.example:6000", clusterId: "cluster-b" }],
        export: [{ neighbour: "cluster-b", functions: { allow: ["api.", "admin."] }, topics: { allow: ["alerts."] } }],
        import: [{ neighbour: "cluster-b", clusters: { allow: ["cluster-a", "cluster-b"] } }],
        keys: { signingKey: k.c.seed, trusted: [trust("b")] },
        requireSignatures: true,
      },
    };
    const feds = new Map(Object.entries(configs).map(([id, raw]) => [id, createFederation(validateFederationConfig(raw), { localCluster: id, epoch: 1 })]));
    // A minimal driver: link up every configured link, then deliver polled updates until quiet.
    for (const f of feds.values()) for (const l of f.links) f.table!.linkUp(l.clusterId, 0);
    for (let round = 0, busy = true; busy && round < 20; round++) {
      busy = false;
      for (const [id, f] of feds) {
        for (const { to, update } of f.table!.poll(round).updates) {
          busy = true;
          expect(feds.get(to)!.table!.receive(id, JSON.parse(JSON.stringify(update)), round).accepted).toBe(true);
        }
      }
    }
    const a = feds.get("cluster-a")!.table!;
    const toC = a.bestRoute("cluster-c")!;
    expect(toC).toMatchObject({ path: ["cluster-a", "cluster-b", "cluster-c"], metric: 2 });
    expect(serviceAllows(toC.offers, "function", "api.echo")).toBe(true);
    expect(serviceAllows(toC.offers, "function", "admin.reset")).toBe(false);
    expect(serviceAllows(toC.offers, "topic", "alerts.x")).toBe(true);
    expect(serviceAllows(toC.offers, "topic", "news.x")).toBe(false);
    expect(serviceAllows(a.bestRoute("cluster-b")!.offers, "queue", "jobs")).toBe(false);
    const c = feds.get("cluster-c")!.table!;
    expect(c.bestRoute("cluster-a")).toBeDefined();
    expect(c.routes().map((r) => r.destination)).toEqual(["cluster-a", "cluster-b", "cluster-c"]);

    const m = createUnifiedMessage({
      topic: "mpreg.rpc.execute.api.echo",
      message_type: "rpc",
      payload: null,
      headers: { source_node: "a1", source_cluster: "cluster-a", target_cluster: "cluster-c" },
    });
    const atA = nextClusterHop({ message: m, self: { nodeId: "a1", clusterId: "cluster-a" }, routes: a, relay: false, service: { kind: "function", name: "api.echo" } });
    expect(atA).toMatchObject({ action: "forward", nextCluster: "cluster-b" });
    if (atA.action !== "forward") return;
    const atB = nextClusterHop({ message: atA.message, self: { nodeId: "b1", clusterId: "cluster-b" }, routes: feds.get("cluster-b")!.routes, relay: true });
    expect(atB).toMatchObject({ action: "forward", nextCluster: "cluster-c" });
    if (atB.action !== "forward") return;
    expect(nextClusterHop({ message: atB.message, self: { nodeId: "c1", clusterId: "cluster-c" }, routes: c, relay: true })).toMatchObject({ action: "deliver" });
    expect(
      nextClusterHop({ message: m, self: { nodeId: "a1", clusterId: "cluster-a" }, routes: a, relay: false, service: { kind: "function", name: "admin.reset" } }),
    ).toEqual({ action: "drop", reason: "denied" });
  });
});
