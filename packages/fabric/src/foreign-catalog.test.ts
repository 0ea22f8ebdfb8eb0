/**
 * The foreign catalog (model-based) and the validation of gateway announcements (arbitrary
 * input never crashes: a value is accepted normalised, or refused with 1002).
 */
import { entryKey, type CatalogEntry } from "@mpreg/catalog";
import { ErrorCode, MpregError } from "@mpreg/envelope";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ForeignCatalog } from "./foreign-catalog.js";
import { validateGatewayAnnouncement } from "./gateway-announcement.js";

// Node ids are unique across clusters: each node belongs to one cluster.
const owner = fc.constantFrom({ node_id: "c1", cluster_id: "C" }, { node_id: "c2", cluster_id: "C" }, { node_id: "d1", cluster_id: "D" });
const entry = fc.oneof(
  fc.record({
    kind: fc.constant("function" as const),
    name: fc.constantFrom("api.a", "api.b", "admin.x"),
    function_id: fc.constantFrom("f1", "f2"),
    version: fc.constantFrom("1.0.0", "2.0.0"),
    resources: fc.constantFrom([], ["gpu"]),
    owner,
  }),
  fc.record({ kind: fc.constant("queue" as const), name: fc.constantFrom("jobs", "mail"), owner }),
  fc.record({ kind: fc.constant("topic" as const), subscription_id: fc.constantFrom("s1", "s2"), patterns: fc.constantFrom(["alerts.#"], ["a.*", "b.#"]), owner }),
).map(({ owner: o, ...rest }) => ({ ...rest, ...o }) as CatalogEntry);

describe("ForeignCatalog", () => {
  it("holds exactly the last set, and its changes replayed on a map give that set (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.array(entry, { maxLength: 12 }), { minLength: 1, maxLength: 8 }), (sets) => {
        const fcat = new ForeignCatalog("a1", "A", 1000);
        const model = new Map<string, string>();
        for (const set of sets) {
          for (const ch of fcat.replace(set, 1000)) {
            if (ch.type === "removed") {
              expect(model.has(ch.key)).toBe(true);
              model.delete(ch.key);
            } else {
              expect(model.has(ch.key)).toBe(ch.type === "updated");
              model.set(ch.key, JSON.stringify(ch.entry));
            }
          }
        }
        const last = new Map(sets[sets.length - 1]!.map((e) => [entryKey(e), e]));
        expect([...model.keys()].sort()).toEqual([...last.keys()].sort());
        expect(fcat.size).toBe(last.size);
        const held = [...fcat.catalog.queryFunctions({}), ...fcat.catalog.queues({}), ...fcat.catalog.topics({})].map(entryKey).sort();
        expect(held).toEqual([...last.keys()].sort());
        for (const e of last.values()) expect(fcat.clusterOf(e.node_id)).toBe(e.cluster_id);
      }),
      { numRuns: 200 },
    );
  });

  it("holds at most maxEntries and counts the rest", () => {
    const fcat = new ForeignCatalog("a1", "A", 2);
    const q = (name: string): CatalogEntry => ({ kind: "queue", name, node_id: "c1", cluster_id: "C" });
    fcat.replace([q("a"), q("b"), q("c")], 1);
    expect(fcat.size).toBe(2);
    expect(fcat.stats().refused).toBe(1);
  });
});

describe("validateGatewayAnnouncement", () => {
  const limits = { maxRoutes: 8, maxClusters: 8, maxEntries: 16, maxPathLength: 6 };

  it("accepts a well-formed announcement", () => {
    const a = validateGatewayAnnouncement(
      {
        v: 1,
        routes: [{ destination: "C", path: ["A", "B", "C"], metric: 2, offers: { functions: { allow: ["api."] } } }],
        catalogs: [{ cluster_id: "C", entries: [{ kind: "queue", name: "jobs", node_id: "c1", cluster_id: "C" }] }],
      },
      "A",
      limits,
    );
    expect(a.routes[0]!.path).toEqual(["A", "B", "C"]);
    expect(a.catalogs[0]!.entries).toHaveLength(1);
  });

  it.each([
    ["a path not from this cluster", { v: 1, routes: [{ destination: "C", path: ["B", "C"], metric: 1 }], catalogs: [] }],
    ["a looping path", { v: 1, routes: [{ destination: "C", path: ["A", "B", "A", "C"], metric: 1 }], catalogs: [] }],
    ["a route to this cluster", { v: 1, routes: [{ destination: "A", path: ["A"], metric: 0 }], catalogs: [] }],
    ["an entry of another cluster", { v: 1, routes: [], catalogs: [{ cluster_id: "C", entries: [{ kind: "queue", name: "q", node_id: "d1", cluster_id: "D" }] }] }],
    ["a node entry", { v: 1, routes: [], catalogs: [{ cluster_id: "C", entries: [{ kind: "node", node_id: "c1", cluster_id: "C", region: "", urls: [], resources: [], load: 0, status: "ok" }] }] }],
    ["too many routes", { v: 1, routes: Array.from({ length: 9 }, (_, i) => ({ destination: `D${i}`, path: ["A", `D${i}`], metric: 1 })), catalogs: [] }],
  ])("refuses %s with 1002", (_what, raw) => {
    expect(() => validateGatewayAnnouncement(raw, "A", limits)).toThrow(MpregError);
  });

  it("never throws anything but 1002 on arbitrary input (property)", () => {
    fc.assert(
      fc.property(fc.anything({ maxDepth: 4 }), fc.anything({ maxDepth: 3 }), (routes, catalogs) => {
        for (const raw of [routes, { v: 1, routes, catalogs }, { v: 1, routes: [routes], catalogs: [{ cluster_id: "C", entries: catalogs }] }]) {
          try {
            validateGatewayAnnouncement(raw, "A", limits);
          } catch (e) {
            expect(e).toBeInstanceOf(MpregError);
            expect((e as MpregError).code).toBe(ErrorCode.INVALID_REQUEST);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
