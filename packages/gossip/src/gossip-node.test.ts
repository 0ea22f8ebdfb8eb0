import { SeededRandom } from "@mpreg/testkit";
import { describe, expect, it } from "vitest";
import { GossipNode } from "./gossip-node.js";
import type { GossipEvent, GossipMessage } from "./types.js";
import { cluster, pump, type Drop } from "../test/pump.js";

describe("GossipNode construction and input checks", () => {
  it("rejects bad options and bad config with INVALID_REQUEST", () => {
    const random = new SeededRandom(1);
    expect(() => new GossipNode({ id: "", random, now: 0 })).toThrowError(/non-empty/);
    expect(() => new GossipNode({ id: "a", random, now: 0, config: { probeIntervalMs: -1 } })).toThrowError(/probeIntervalMs/);
    expect(() => new GossipNode({ id: "a", random, now: 0, config: { probeTimeoutMs: 2000 } })).toThrowError(/probeTimeoutMs/);
  });

  it("rejects malformed messages with a path, without changing state", () => {
    const n = new GossipNode({ id: "a", random: new SeededRandom(1), now: 0 });
    const bad: unknown[] = [
      null,
      { type: "nope" },
      { type: "ping", seq: 1, members: [], items: [] },
      { type: "gossip", members: [{ id: "x", inc: 0, status: "zombie" }], items: [] },
      { type: "gossip", members: [], items: [{ key: "k", version: -1, data: 1 }] },
      { type: "sync-req", full: true, start: "", end: null, digest: [["k"]], members: [] },
      { type: "sync", full: true, start: "", end: 5, items: [], want: [], more: false, members: [] },
    ];
    for (const m of bad) {
      let err: unknown;
      try {
        n.handleMessage("b", m, 1);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ name: "MpregError", code: 1002 });
    }
    expect(() => n.handleMessage("", { type: "gossip", members: [], items: [] }, 1)).toThrowError(/sender/);
    expect(n.membersView()).toHaveLength(1);
    expect(n.drain().messages).toHaveLength(0);
  });

  it("publish: newer wins, equal or older is refused, a full store is OVERLOADED", () => {
    const n = new GossipNode({ id: "a", random: new SeededRandom(1), now: 0, config: { maxItems: 2 } });
    expect(n.publish({ key: "k", version: 2, data: "x" })).toBe(true);
    expect(n.publish({ key: "k", version: 2, data: "y" })).toBe(false);
    expect(n.publish({ key: "k", version: 1, data: "z" })).toBe(false);
    expect(n.item("k")?.data).toBe("x");
    expect(n.publish({ key: "k2", version: 1, data: 1 })).toBe(true);
    expect(() => n.publish({ key: "k3", version: 1, data: 1 })).toThrowError(expect.objectContaining({ code: 1007 }));
    expect(n.publish({ key: "k", version: 3, data: "w" })).toBe(true);
    expect(() => n.publish({ key: "", version: 1, data: 1 } as never)).toThrowError(/key/);
  });
});

describe("GossipNode SWIM probing", () => {
  it("join through a seed gives everyone the full membership", () => {
    const nodes = cluster(["a", "b", "c", "d"]);
    for (const n of nodes.values()) {
      expect(n.liveCount).toBe(4);
      expect(n.membersView().every((m) => m.status === "alive")).toBe(true);
    }
    expect(nodes.get("d")!.member("b")?.meta).toEqual({ id: "b" });
  });

  it("a link to a member already alive opens no full sync; to an unknown one it does", () => {
    const nodes = cluster(["a", "b", "c"]);
    const b = nodes.get("b")!;
    b.drain();
    b.linkOpened("c", 0);
    expect(b.drain().messages.filter((m) => (m.msg as GossipMessage).type === "sync-req")).toHaveLength(0);
    b.linkOpened("z", 0);
    expect(b.drain().messages.filter((m) => m.to === "z" && (m.msg as GossipMessage).type === "sync-req")).toHaveLength(1);
    b.syncWith("c", 0);
    expect(b.drain().messages.filter((m) => m.to === "c" && (m.msg as GossipMessage).type === "sync-req")).toHaveLength(1);
  });

  it("direct ping answered: no suspicion", () => {
    const nodes = cluster(["a", "b", "c"]);
    const events = new Map<string, GossipEvent[]>();
    for (let t = 0; t <= 10_000; t += 50) {
      for (const n of nodes.values()) n.tick(t);
      pump(nodes, t, () => false, events);
    }
    expect([...events.values()].flat().filter((e) => e.type !== "member-updated")).toEqual([]);
    expect(nodes.get("a")!.stats.probes).toBeGreaterThan(5);
    expect(nodes.get("a")!.stats.probeFailures).toBe(0);
  });

  it("lost direct path: the indirect probe through a helper saves the target", () => {
    const nodes = cluster(["a", "b", "c"]);
    // a <-> b cannot talk directly; c relays.
    const drop: Drop = (o) => (o.from === "a" && o.to === "b") || (o.from === "b" && o.to === "a");
    const events = new Map<string, GossipEvent[]>();
    for (let t = 0; t <= 20_000; t += 50) {
      for (const n of nodes.values()) n.tick(t);
      pump(nodes, t, drop, events);
    }
    const a = nodes.get("a")!;
    expect(a.stats.indirectProbes).toBeGreaterThan(0);
    expect(a.stats.probeFailures).toBe(0);
    expect(a.member("b")?.status).toBe("alive");
  });

  it("silent target: suspect after the probe interval, dead after the suspicion timeout, events in order", () => {
    const nodes = cluster(["a", "b", "c"]);
    const events = new Map<string, GossipEvent[]>();
    const drop: Drop = (o) => o.to === "c" || o.from === "c";
    let deadAt: number | undefined;
    for (let t = 0; t <= 120_000 && deadAt === undefined; t += 50) {
      for (const [id, n] of nodes) if (id !== "c") n.tick(t);
      pump(nodes, t, drop, events);
      if (nodes.get("a")!.member("c")?.status === "dead") deadAt = t;
    }
    const kinds = (events.get("a") ?? []).filter((e) => "id" in e && e.id === "c").map((e) => e.type);
    expect(kinds).toEqual(["member-suspect", "member-dead"]);
    expect(deadAt).toBeDefined();
    // Suspicion never ends before the minimum timeout (n=3: 4 * max(1, log10 3) * 1 s = 4 s).
    expect(nodes.get("a")!.suspicionTimeoutMs(0)).toBe(4000);
    expect(deadAt!).toBeGreaterThanOrEqual(4000);
    expect(nodes.get("b")!.member("c")?.status).toBe("dead");
  });

  it("Lifeguard nacks: helpers report a silent target, so the prober's local health stays good", () => {
    const nodes = cluster(["a", "b", "c", "d"]);
    const drop: Drop = (o) => o.to === "d" || o.from === "d";
    for (let t = 0; t <= 3_000; t += 50) {
      for (const [id, n] of nodes) if (id !== "d") n.tick(t);
      pump(nodes, t, drop);
    }
    const probers = ["a", "b", "c"].map((id) => nodes.get(id)!);
    // Every failed probe of d had its helpers' nacks back: nobody blames itself.
    expect(probers.reduce((n, p) => n + p.stats.probeFailures, 0)).toBeGreaterThan(0);
    expect(probers.reduce((n, p) => n + p.stats.nacksSent, 0)).toBeGreaterThan(0);
    expect(probers.reduce((n, p) => n + p.stats.nacksReceived, 0)).toBeGreaterThan(0);
    for (const p of probers) expect(p.localHealth).toBe(0);
  });

  it("Lifeguard nacks: a prober whose helpers stay silent too raises its local health score", () => {
    const nodes = cluster(["a", "b", "c", "d"]);
    // a's own messages get through only to the ping target: a is the one cut off.
    const drop: Drop = (o) => (o.from === "a" && o.msg.type !== "ping") || o.to === "a";
    for (let t = 0; t <= 3_000; t += 50) {
      for (const n of nodes.values()) n.tick(t);
      pump(nodes, t, drop);
    }
    const a = nodes.get("a")!;
    expect(a.stats.probeFailures).toBeGreaterThan(0);
    expect(a.stats.nacksReceived).toBe(0);
    // Each failed probe whose two helpers send no nack adds 2 (not 1 as without nacks); a hears
    // nothing, so nothing lowers it again; capped at awarenessMax - 1.
    expect(a.localHealth).toBe(Math.min(7, 2 * a.stats.probeFailures));
  });

  it("misdirected pings are ignored and counted", () => {
    const n = new GossipNode({ id: "a", random: new SeededRandom(1), now: 0 });
    n.handleMessage("b", { type: "ping", seq: 1, target: "zz", members: [], items: [] }, 1);
    expect(n.drain().messages).toEqual([]);
    expect(n.stats.misdirectedPings).toBe(1);
    n.handleMessage("b", { type: "ping", seq: 2, target: "a", members: [], items: [] }, 1);
    const out = n.drain().messages;
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ to: "b", msg: { type: "ack", seq: 2, target: "a" } });
  });
});

describe("GossipNode suspicion, refutation and leave", () => {
  it("a suspected live node refutes with a higher incarnation and tells the rumour's sender", () => {
    const n = new GossipNode({ id: "a", random: new SeededRandom(1), now: 0 });
    n.handleMessage("b", { type: "gossip", members: [{ id: "a", inc: 0, status: "suspect", by: "b" }], items: [] }, 5);
    expect(n.currentIncarnation).toBe(1);
    expect(n.stats.refutations).toBe(1);
    const out = n.drain().messages;
    expect(out).toContainEqual({ to: "b", msg: { type: "gossip", members: [{ id: "a", inc: 1, status: "alive" }], items: [] } });
    // An older rumour does not cost another incarnation.
    n.handleMessage("b", { type: "gossip", members: [{ id: "a", inc: 0, status: "dead" }], items: [] }, 6);
    expect(n.currentIncarnation).toBe(1);
    n.handleMessage("b", { type: "gossip", members: [{ id: "a", inc: 1, status: "dead" }], items: [] }, 7);
    expect(n.currentIncarnation).toBe(2);
  });

  it("confirmations from distinct suspecters shrink the suspicion timeout (Lifeguard)", () => {
    const n = new GossipNode({ id: "a", random: new SeededRandom(1), now: 0 });
    const members = Array.from({ length: 20 }, (_, i) => ({ id: `m${i}`, inc: 0, status: "alive" as const }));
    n.handleMessage("m0", { type: "gossip", members, items: [] }, 0);
    expect(n.liveCount).toBe(21);
    const max = n.suspicionTimeoutMs(0);
    const min = n.suspicionTimeoutMs(100);
    expect(max).toBe(6 * min);
    expect(n.suspicionTimeoutMs(1)).toBeLessThan(max);
    expect(n.suspicionTimeoutMs(2)).toBe(min);
    n.handleMessage("m1", { type: "gossip", members: [{ id: "m5", inc: 0, status: "suspect", by: "m1" }], items: [] }, 1000);
    n.tick(1000 + min);
    expect(n.member("m5")?.status).toBe("suspect");
    n.handleMessage("m2", { type: "gossip", members: [{ id: "m5", inc: 0, status: "suspect", by: "m2" }], items: [] }, 1000 + min);
    n.handleMessage("m3", { type: "gossip", members: [{ id: "m5", inc: 0, status: "suspect", by: "m3" }], items: [] }, 1000 + min);
    n.tick(1000 + min + 1);
    expect(n.member("m5")?.status).toBe("dead");
  });

  it("leave(): GOODBYE goes out directly, the node is `left` for others, and it does not refute", () => {
    const nodes = cluster(["a", "b", "c"]);
    nodes.get("c")!.leave(100);
    const out = nodes.get("c")!.drain().messages;
    expect(out.length).toBeGreaterThanOrEqual(2);
    for (const o of out) nodes.get(o.to)!.handleMessage("c", o.msg, 100);
    expect(nodes.get("a")!.member("c")?.status).toBe("left");
    expect(nodes.get("b")!.member("c")?.status).toBe("left");
    expect(nodes.get("a")!.liveCount).toBe(2);
    nodes.get("c")!.handleMessage("a", { type: "gossip", members: [{ id: "c", inc: 0, status: "dead" }], items: [] }, 101);
    expect(nodes.get("c")!.currentIncarnation).toBe(0);
    // Rejoining starts a new incarnation that beats `left`.
    nodes.get("c")!.join(["a"], 200);
    pump(nodes, 200);
    expect(nodes.get("a")!.member("c")).toMatchObject({ status: "alive", incarnation: 1 });
  });
});

describe("GossipNode anti-entropy", () => {
  it("a full sync walks every digest window and respects the per-reply item limit", () => {
    const config = { maxDigestEntries: 4, maxSyncItems: 3 };
    const r = new SeededRandom(9);
    const a = new GossipNode({ id: "a", random: r.fork(), now: 0, config });
    const b = new GossipNode({ id: "b", random: r.fork(), now: 0, config });
    for (let i = 0; i < 23; i++) a.publish({ key: `a/${String(i).padStart(2, "0")}`, version: i + 1, data: i });
    for (let i = 0; i < 11; i++) b.publish({ key: `b/${i}`, version: 1, data: i });
    b.publish({ key: "a/05", version: 100, data: "newer at b" });
    const nodes = new Map([
      ["a", a],
      ["b", b],
    ]);
    a.drain();
    b.drain();
    b.linkOpened("a", 0);
    let messages = 0;
    pump(nodes, 0, (o) => {
      messages++;
      return o.msg.type === "gossip"; // only the sync protocol may move items here
    });
    expect(a.itemCount).toBe(34);
    expect(b.itemCount).toBe(34);
    expect(a.item("a/05")?.data).toBe("newer at b");
    expect(messages).toBeGreaterThan(10);
    for (const it of a.items()) expect(b.item(it.key)).toEqual(it);
  });

  it("with itemSize, sync replies and pushes stay within maxMessageBytes and still move everything", () => {
    const config = { maxMessageBytes: 300 };
    const itemSize = (i: { data: unknown }) => String(i.data).length;
    const r = new SeededRandom(10);
    const a = new GossipNode({ id: "a", random: r.fork(), now: 0, config, itemSize });
    const b = new GossipNode({ id: "b", random: r.fork(), now: 0, config, itemSize });
    for (let i = 0; i < 30; i++) a.publish({ key: `a${i}`, version: 1, data: "x".repeat(100) });
    for (let i = 0; i < 30; i++) b.publish({ key: `b${i}`, version: 1, data: "y".repeat(100) });
    a.publish({ key: "huge", version: 1, data: "z".repeat(1000) });
    a.drain();
    b.drain();
    const nodes = new Map([
      ["a", a],
      ["b", b],
    ]);
    const sizes: number[] = [];
    b.linkOpened("a", 0);
    pump(nodes, 0, (o) => {
      if ("items" in o.msg && o.msg.items.length > 1) sizes.push(o.msg.items.reduce((s, i) => s + itemSize(i), 0));
      return o.msg.type === "gossip" || o.msg.type === "ping";
    });
    expect(a.itemCount).toBe(61);
    expect(b.itemCount).toBe(61);
    expect(sizes.length).toBeGreaterThan(0);
    for (const s of sizes) expect(s).toBeLessThanOrEqual(300);
  });

  it("periodic anti-entropy repairs an item that every push missed", () => {
    const nodes = cluster(["a", "b", "c", "d"]);
    nodes.get("a")!.publish({ key: "x", version: 1, data: 1 });
    // Lose every push/piggyback: only sync messages get through.
    const drop: Drop = (o) => !["sync-req", "sync", "sync-push"].includes(o.msg.type);
    let t = 0;
    for (; t <= 60_000; t += 100) {
      for (const n of nodes.values()) n.tick(t);
      pump(nodes, t, drop);
      if ([...nodes.values()].every((n) => n.item("x") !== undefined)) break;
    }
    expect([...nodes.values()].every((n) => n.item("x")?.version === 1)).toBe(true);
    expect(t).toBeLessThan(60_000);
  });

  it("keeps the outbox bounded when nobody drains it", () => {
    const n = new GossipNode({ id: "a", random: new SeededRandom(1), now: 0, config: { maxOutbox: 5 } });
    for (let i = 0; i < 20; i++) n.handleMessage("b", { type: "ping", seq: i, target: "a", members: [], items: [] }, i);
    const out = n.drain().messages;
    expect(out).toHaveLength(5);
    expect((out[0]!.msg as GossipMessage & { seq: number }).seq).toBe(15);
    expect(n.stats.outboxDropped).toBe(15);
  });
});
