import { describe, expect, it } from "vitest";
import { createFederation, validateFederationConfig, type FederationConfig } from "./federation-config.js";
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
