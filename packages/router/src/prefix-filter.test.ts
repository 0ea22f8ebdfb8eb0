import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ALLOW_ALL,
  ALLOW_NONE,
  MAX_PREFIXES,
  intersectPrefixFilters,
  isAllowAll,
  prefixAllows,
  prefixFilter,
  prefixFilterToList,
} from "./prefix-filter.js";
import { naivePrefixAllows, prefixListArb, prefixWordArb } from "./testing/index.js";
import { cacheServiceName, catalogEntryAllowed, intersectServiceFilters, serviceAllows, serviceFilter, serviceFilterToOffers } from "./service-filter.js";

/** Names and prefixes over a tiny alphabet, so prefixes and names relate often. */
const word = prefixWordArb();
const list = prefixListArb();
const naive = naivePrefixAllows;

describe("prefixFilter", () => {
  it("normalises: absent allow is everything, deny wins, covered entries go", () => {
    expect(prefixFilter(undefined)).toBe(ALLOW_ALL);
    expect(prefixFilter({})).toEqual({ allow: [""], deny: [] });
    expect(prefixFilter({ allow: [] })).toEqual(ALLOW_NONE);
    expect(prefixFilter({ allow: ["billing.", "billing.eu."], deny: ["billing.eu.x", "ops."] })).toEqual({
      allow: ["billing."],
      deny: ["billing.eu.x"],
    });
    expect(prefixFilter({ allow: ["a.b"], deny: ["a."] })).toEqual(ALLOW_NONE);
    expect(isAllowAll(prefixFilter({ deny: [] }))).toBe(true);
  });

  it("refuses malformed lists naming the field", () => {
    expect(() => prefixFilter({ allow: "x" }, "p")).toThrow(expect.objectContaining({ code: 1002, details: expect.objectContaining({ path: "p.allow" }) }));
    expect(() => prefixFilter({ deny: [1] }, "p")).toThrow(expect.objectContaining({ details: expect.objectContaining({ path: "p.deny[0]" }) }));
    expect(() => prefixFilter({ allow: Array.from({ length: MAX_PREFIXES + 1 }, (_, i) => `p${i}`) })).toThrow(/more than/);
    expect(() => prefixFilter(["a"])).toThrow(/must be an object/);
  });

  it("normalising keeps the meaning, and the wire form round-trips (property)", () => {
    fc.assert(
      fc.property(list, fc.array(word, { maxLength: 8 }), (l, names) => {
        const f = prefixFilter(l);
        const back = prefixFilter(prefixFilterToList(f));
        for (const n of names) {
          expect(prefixAllows(f, n)).toBe(naive(l, n));
          expect(prefixAllows(back, n)).toBe(naive(l, n));
        }
        expect(back).toEqual(f);
      }),
    );
  });

  it("the intersection lets through exactly what both do (property)", () => {
    fc.assert(
      fc.property(list, list, list, fc.array(word, { maxLength: 10 }), (a, b, c, names) => {
        const fa = prefixFilter(a);
        const fb = prefixFilter(b);
        const fc3 = prefixFilter(c);
        const ab = intersectPrefixFilters(fa, fb);
        const abc = intersectPrefixFilters(ab, fc3);
        for (const n of names) {
          expect(prefixAllows(ab, n)).toBe(naive(a, n) && naive(b, n));
          expect(prefixAllows(abc, n)).toBe(naive(a, n) && naive(b, n) && naive(c, n));
        }
        // Commutative up to normal form.
        expect(intersectPrefixFilters(fb, fa)).toEqual(ab);
      }),
    );
  });
});

describe("serviceFilter", () => {
  it("filters per kind, composes, and leaves out what allows everything on the wire", () => {
    const a = serviceFilter({ functions: { allow: ["billing."] }, queues: { deny: ["secret."] } });
    const b = serviceFilter({ functions: { deny: ["billing.admin"] } });
    const ab = intersectServiceFilters(a, b);
    expect(serviceAllows(ab, "function", "billing.charge")).toBe(true);
    expect(serviceAllows(ab, "function", "billing.admin.reset")).toBe(false);
    expect(serviceAllows(ab, "function", "ops.restart")).toBe(false);
    expect(serviceAllows(ab, "topic", "anything")).toBe(true);
    expect(serviceAllows(ab, "queue", "secret.jobs")).toBe(false);
    expect(serviceFilterToOffers(serviceFilter(undefined))).toBeUndefined();
    expect(serviceFilterToOffers(ab)).toEqual({ functions: { allow: ["billing."], deny: ["billing.admin"] }, queues: { deny: ["secret."] } });
    expect(() => serviceFilter({ topics: { allow: [3] } }, "offers")).toThrow(expect.objectContaining({ details: expect.objectContaining({ path: "offers.topics.allow[0]" }) }));
  });

  it("filters catalog entries by function and queue name", () => {
    const f = serviceFilter({ functions: { allow: ["pub."] }, queues: { allow: [] } });
    const base = { node_id: "n", cluster_id: "c" };
    expect(catalogEntryAllowed(f, { kind: "function", name: "pub.x", function_id: "x", version: "1.0.0", resources: [], ...base })).toBe(true);
    expect(catalogEntryAllowed(f, { kind: "function", name: "priv.x", function_id: "x", version: "1.0.0", resources: [], ...base })).toBe(false);
    expect(catalogEntryAllowed(f, { kind: "queue", name: "jobs", ...base })).toBe(false);
    expect(catalogEntryAllowed(f, { kind: "topic", subscription_id: "s", patterns: ["#"], ...base })).toBe(true);
  });

  it("filters cache namespaces by their topic name mpreg.cache.<namespace>", () => {
    const base = { node_id: "n", cluster_id: "c", scope: "federated" };
    const f = serviceFilter({ topics: { allow: ["alerts.", "mpreg.cache.prices"], deny: ["mpreg.cache.prices-secret"] } });
    expect(cacheServiceName("prices")).toBe("mpreg.cache.prices");
    expect(catalogEntryAllowed(f, { kind: "cache", namespace: "prices", ...base })).toBe(true);
    expect(catalogEntryAllowed(f, { kind: "cache", namespace: "prices-secret", ...base })).toBe(false);
    expect(catalogEntryAllowed(f, { kind: "cache", namespace: "sessions", ...base })).toBe(false);
    expect(catalogEntryAllowed(serviceFilter({}), { kind: "cache", namespace: "sessions", ...base })).toBe(true);
  });
});
