import { Catalog, type CatalogDelta, type TopicEntry } from "@mpreg/catalog";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RemoteInterestIndex, TopicExchange, applyInterestChange, topicEntryKey } from "./index.js";
import { ManualClock, counterIds, referenceMatch } from "../test/helpers.js";

/** A node: its exchange and its catalog; deltas it gossips are collected in `outbox`. */
class Node {
  readonly catalog: Catalog;
  readonly ex: TopicExchange;
  outbox: CatalogDelta[] = [];
  constructor(
    readonly id: string,
    readonly clock: ManualClock,
  ) {
    this.catalog = new Catalog({ nodeId: id, clusterId: "c1" });
    this.ex = new TopicExchange({ nodeId: id, now: clock.now, newId: counterIds(id) });
  }
  /** What a node does after any subscription change: advertise its interest. */
  sync(): void {
    const r = applyInterestChange(this.catalog, this.ex.takeInterestChanges(), this.clock.t);
    expect(r.refused).toEqual([]);
    this.outbox.push(...r.deltas);
  }
  /** Receives gossip: catalog deltas, whose changes feed the forwarding index. */
  receive(deltas: readonly CatalogDelta[]): void {
    for (const d of deltas) {
      const res = this.catalog.applyDelta(d, this.clock.t);
      if (res.change !== undefined) this.ex.applyCatalogChange(res.change);
    }
  }
}

function cluster(ids: string[]): { nodes: Map<string, Node>; gossip: () => void; clock: ManualClock } {
  const clock = new ManualClock();
  const nodes = new Map(ids.map((id) => [id, new Node(id, clock)]));
  const gossip = () => {
    for (const n of nodes.values()) {
      const out = n.outbox;
      n.outbox = [];
      for (const m of nodes.values()) if (m !== n) m.receive(out);
    }
  };
  return { nodes, gossip, clock };
}

describe("interest aggregation", () => {
  it("one catalog entry per distinct pattern, not per subscriber; it goes with the last subscriber", () => {
    const { nodes } = cluster(["b"]);
    const b = nodes.get("b")!;
    const s1 = b.ex.subscribe("c1", { patterns: ["orders.#"] }).subscription_id;
    const s2 = b.ex.subscribe("c2", { patterns: ["orders.#", "orders.eu.*"] }).subscription_id;
    b.ex.subscribe("c3", { patterns: ["orders.#"] });
    b.sync();
    expect(b.catalog.topics().map((e) => e.patterns)).toEqual([["orders.#"], ["orders.eu.*"]]);
    expect(b.outbox.map((d) => d.kind)).toEqual(["upsert", "upsert"]);
    expect(b.ex.localTopicEntries()).toEqual([
      { kind: "topic", subscription_id: "orders.#", patterns: ["orders.#"] },
      { kind: "topic", subscription_id: "orders.eu.*", patterns: ["orders.eu.*"] },
    ]);
    b.outbox = [];
    b.ex.unsubscribe("c1", s1);
    b.sync();
    expect(b.outbox).toEqual([]);
    b.ex.unsubscribe("c2", s2);
    b.sync();
    expect(b.outbox.map((d) => [d.kind, d.key])).toEqual([["remove", topicEntryKey("b", "orders.eu.*")]]);
    b.outbox = [];
    b.ex.closeOwner("c3");
    b.sync();
    expect(b.outbox.map((d) => [d.kind, d.key])).toEqual([["remove", topicEntryKey("b", "orders.#")]]);
    expect(b.catalog.topics()).toEqual([]);
  });

  it("a pattern added and removed between two syncs changes nothing", () => {
    const { nodes } = cluster(["b"]);
    const b = nodes.get("b")!;
    const s = b.ex.subscribe("c1", { patterns: ["x"] }).subscription_id;
    b.ex.unsubscribe("c1", s);
    expect(b.ex.takeInterestChanges()).toEqual({ added: [], removed: [] });
  });

  it("a full catalog refuses a pattern: reported, the others still registered", () => {
    const catalog = new Catalog({ nodeId: "b", clusterId: "c1", maxLocalEntries: 1 });
    const r = applyInterestChange(catalog, { added: ["a", "b"], removed: [] }, 1000);
    expect(r.deltas).toHaveLength(1);
    expect(r.refused.map((x) => [x.pattern, x.error.code])).toEqual([["b", 1007]]);
  });
});

describe("forwarding decision", () => {
  it("a publish goes once to each node with a matching pattern and to no other", () => {
    const { nodes, gossip } = cluster(["a", "b", "c", "d", "e"]);
    const sub = (n: string, owner: string, patterns: string[]) => nodes.get(n)!.ex.subscribe(owner, { patterns });
    sub("b", "x", ["user.*.login"]);
    sub("b", "y", ["user.#"]); // two matching patterns on b: still one send
    sub("c", "x", ["system.#"]);
    sub("d", "x", ["#"]);
    sub("e", "x", ["admin.*.login"]);
    sub("a", "x", ["user.#"]); // local interest on the publisher: never a forward to itself
    for (const n of nodes.values()) n.sync();
    gossip();
    const a = nodes.get("a")!;
    const fwd = (topic: string) => [...a.ex.publish({ topic, payload: 1 }).forwardTo].sort();
    expect(fwd("user.123.login")).toEqual(["b", "d"]);
    expect(fwd("system.config.updated")).toEqual(["c", "d"]);
    expect(fwd("admin.1.login")).toEqual(["d", "e"]);
    expect(fwd("other")).toEqual(["d"]);
    expect(a.ex.stats().forwarded).toBe(7);

    // d leaves its only subscription: the removal reaches a, d gets nothing more.
    nodes.get("d")!.ex.closeOwner("x");
    nodes.get("d")!.sync();
    gossip();
    expect(fwd("other")).toEqual([]);
    expect(fwd("user.1.login")).toEqual(["b"]);
    // A node that leaves the fabric is forgotten at once.
    a.ex.removeNode("b");
    expect(fwd("user.1.login")).toEqual([]);
  });

  it("catalog expiry removes a silent node's interest; a snapshot rebuilds the index", () => {
    const { nodes, gossip, clock } = cluster(["a", "b"]);
    nodes.get("b")!.ex.subscribe("x", { patterns: ["t.#"] });
    nodes.get("b")!.sync();
    gossip();
    const a = nodes.get("a")!;
    expect(a.ex.forwardTargets("t.1")).toEqual(["b"]);
    clock.advance(200_000); // past the default 120 s TTL, no refresh from b
    a.ex.applyCatalogChanges(a.catalog.expire(clock.t));
    expect(a.ex.forwardTargets("t.1")).toEqual([]);

    const fresh = new TopicExchange({ nodeId: "a", now: clock.now });
    fresh.resetRemoteInterest([
      { kind: "topic", node_id: "b", cluster_id: "c1", subscription_id: "t.#", patterns: ["t.#"] },
      { kind: "topic", node_id: "a", cluster_id: "c1", subscription_id: "t.#", patterns: ["t.#"] },
    ]);
    expect(fresh.forwardTargets("t.x")).toEqual(["b"]);
  });

  it("matches a reference over random catalogs of several nodes (each node at most once)", () => {
    const seg = fc.constantFrom("a", "b", "c");
    const pattern = fc
      .array(fc.oneof({ weight: 3, arbitrary: seg }, { weight: 1, arbitrary: fc.constantFrom("*", "#") }), { minLength: 1, maxLength: 4 })
      .map((s) => s.join("."));
    const topic = fc.array(seg, { minLength: 1, maxLength: 4 }).map((s) => s.join("."));
    const entry = fc.record({
      node: fc.constantFrom("n1", "n2", "n3", "n4", "n5"),
      sid: fc.constantFrom("x", "y", "z"),
      patterns: fc.uniqueArray(pattern, { minLength: 1, maxLength: 3 }),
    });
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 15 }), fc.array(fc.nat(), { maxLength: 5 }), fc.array(topic, { minLength: 1, maxLength: 8 }), (entries, removals, topics) => {
        const index = new RemoteInterestIndex("n1", 10_000);
        const held = new Map<string, { node: string; patterns: string[] }>();
        for (const e of entries) {
          const key = `topic/${e.node}/${e.sid}`;
          const te: TopicEntry = { kind: "topic", node_id: e.node, cluster_id: "c", subscription_id: e.sid, patterns: e.patterns };
          index.applyChange({ type: held.has(key) ? "updated" : "added", key, entry: te });
          held.set(key, { node: e.node, patterns: e.patterns });
        }
        const keys = [...held.keys()];
        for (const r of removals) {
          if (keys.length === 0) break;
          const key = keys.splice(r % keys.length, 1)[0]!;
          const h = held.get(key)!;
          held.delete(key);
          index.applyChange({ type: "removed", key, entry: { kind: "topic", node_id: h.node, cluster_id: "c", subscription_id: "?", patterns: h.patterns } });
        }
        for (const t of topics) {
          const expected = new Set<string>();
          for (const h of held.values()) if (h.node !== "n1" && h.patterns.some((p) => referenceMatch(p, t))) expected.add(h.node);
          const got = index.targetsForTopic(t);
          expect(got.length).toBe(new Set(got).size);
          expect(new Set(got)).toEqual(expected);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("malformed remote patterns and a full index are refused and counted, not thrown", () => {
    const index = new RemoteInterestIndex("self", 2);
    const entry = (node: string, patterns: string[]): TopicEntry => ({ kind: "topic", node_id: node, cluster_id: "c", subscription_id: "s", patterns });
    index.applyChange({ type: "added", key: "topic/n2/s", entry: entry("n2", ["a..b", "ok"]) });
    index.applyChange({ type: "added", key: "topic/n3/s", entry: entry("n3", ["x", "y", "z"]) });
    expect(index.stats()).toMatchObject({ refused: 3, nodes: 2 });
    expect(index.targetsForTopic("ok")).toEqual(["n2"]);
    expect(index.targetsForTopic("x")).toEqual(["n3"]);
    expect(index.targetsForTopic("y")).toEqual([]);
    index.applyChange({ type: "removed", key: "topic/n2/s", entry: entry("n2", []) });
    index.applyChange({ type: "removed", key: "topic/n3/s", entry: entry("n3", []) });
    expect(index.stats()).toMatchObject({ nodes: 0, patterns: 0, entries: 0 });
  });
});
