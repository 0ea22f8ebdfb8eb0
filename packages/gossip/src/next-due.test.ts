/**
 * `nextDueAt` is exact: a cluster whose nodes are ticked only when their `nextDueAt` has come
 * behaves exactly like one ticked every millisecond (same messages, same events, same times),
 * through joins, steady state, a crash, suspicion and death. This is what lets the fabric sleep
 * between due times instead of waking every few milliseconds.
 */
import { SeededRandom } from "@mpreg/testkit";
import { describe, expect, it } from "vitest";
import { GossipNode } from "./gossip-node.js";

function run(seed: number, eventDriven: boolean): string[] {
  const ids = ["a", "b", "c", "d", "e"];
  const r = new SeededRandom(seed);
  const config = { probeIntervalMs: 200, probeTimeoutMs: 80, gossipIntervalMs: 50, antiEntropyIntervalMs: 2000 };
  const nodes = new Map(ids.map((id) => [id, new GossipNode({ id, random: r.fork(), now: 0, config, meta: { id } })]));
  for (const id of ids.slice(1)) nodes.get(id)!.join(["a"], 0);
  const log: string[] = [];
  const crashed = new Set<string>();
  // Messages take 3 ms; the inbox is ordered by arrival time then sending order.
  const inflight: { at: number; from: string; to: string; msg: unknown }[] = [];
  const drainAll = (now: number) => {
    for (const [id, n] of nodes) {
      if (crashed.has(id)) continue;
      const out = n.drain();
      for (const e of out.events) log.push(`${now} ${id} ${e.type} ${"id" in e ? e.id : ""}`);
      for (const m of out.messages) inflight.push({ at: now + 3, from: id, to: m.to, msg: m.msg });
    }
  };
  for (let now = 0; now <= 15_000; now++) {
    if (now === 4000) crashed.add("e");
    for (let i = 0; i < inflight.length; ) {
      const m = inflight[i]!;
      if (m.at !== now) {
        i++;
        continue;
      }
      inflight.splice(i, 1);
      if (crashed.has(m.to) || crashed.has(m.from)) continue;
      nodes.get(m.to)!.handleMessage(m.from, m.msg, now);
    }
    for (const [id, n] of nodes) {
      if (crashed.has(id)) continue;
      if (!eventDriven || now >= n.nextDueAt()) n.tick(now);
    }
    drainAll(now);
  }
  return log;
}

describe("nextDueAt", () => {
  it("ticking only when due gives the same run as ticking every millisecond", () => {
    for (const seed of [1, 2, 3]) {
      const every = run(seed, false);
      const due = run(seed, true);
      expect(every.some((l) => l.endsWith("member-dead e"))).toBe(true);
      const diff = every.findIndex((l, i) => l !== due[i]);
      expect(diff === -1 ? "" : `${every.slice(Math.max(0, diff - 2), diff + 3).join(" | ")} VS ${due.slice(Math.max(0, diff - 2), diff + 3).join(" | ")}`).toBe("");
    }
  });
});

describe("an idle node", () => {
  it("alone with an update to spread, wakes for probes and upkeep only, not every gossip interval", () => {
    const config = { probeIntervalMs: 1000, probeTimeoutMs: 500, gossipIntervalMs: 50, antiEntropyIntervalMs: 10_000 };
    const n = new GossipNode({ id: "a", random: new SeededRandom(7), now: 0, config });
    n.publish({ key: "k", version: 1, data: "v" });
    let wakes = 0;
    for (let now = 0; now <= 10_000; now++) {
      if (now >= n.nextDueAt()) {
        wakes++;
        n.tick(now);
        n.drain();
      }
    }
    // Every 50 ms would be 200 wakes; the probe and collection timers are once a second each.
    expect(wakes).toBeLessThanOrEqual(25);
    expect(n.pendingBroadcasts).toBe(1);
    // A member appears: the update goes out to it on the next tick.
    n.linkOpened("b", 10_001);
    n.tick(10_001);
    expect(n.drain().messages.some((m) => m.to === "b")).toBe(true);
  });
});

describe("idle cost", () => {
  it("a lone node without seeds has nothing due and sends nothing, whatever the time", () => {
    const n = new GossipNode({ id: "a", random: new SeededRandom(3), now: 0 });
    expect(n.nextDueAt()).toBe(Infinity);
    for (const now of [0, 999, 1000, 10_000, 3_600_000]) n.tick(now);
    expect(n.drain().messages).toEqual([]);
    expect(n.nextDueAt()).toBe(Infinity);
    // The first member is probed on the next tick, not one probe interval later.
    const b = new GossipNode({ id: "b", random: new SeededRandom(4), now: 3_600_000 });
    b.join(["a"], 3_600_000);
    for (const m of b.drain().messages) n.handleMessage("b", m.msg, 3_600_001);
    expect(n.nextDueAt()).toBeLessThanOrEqual(3_600_001);
    n.tick(3_600_001);
    expect(n.drain().messages.some((m) => m.to === "b" && (m.msg as { type: string }).type === "ping")).toBe(true);
  });

  it("a cluster at rest sends probes, acks and one digest per anti-entropy period, and no push with nothing to piggyback", () => {
    const ids = Array.from({ length: 10 }, (_, i) => `n${i}`);
    const r = new SeededRandom(11);
    const nodes = new Map(ids.map((id) => [id, new GossipNode({ id, random: r.fork(), now: 0, meta: { id } })]));
    for (const id of ids.slice(1)) nodes.get(id)!.join(["n0"], 0);
    const inflight: { at: number; from: string; to: string; msg: unknown }[] = [];
    const step = (now: number): void => {
      const arrived = inflight.filter((m) => m.at <= now);
      inflight.splice(0, inflight.length, ...inflight.filter((m) => m.at > now));
      for (const m of arrived) nodes.get(m.to)!.handleMessage(m.from, m.msg, now);
      for (const [id, n] of nodes) {
        if (now >= n.nextDueAt()) n.tick(now);
        for (const m of n.drain().messages) inflight.push({ at: now + 2, from: id, to: m.to, msg: m.msg });
      }
    };
    // Joins and their echo (retransmissions) are over well within a minute.
    for (let now = 0; now <= 60_000; now++) step(now);
    for (const n of nodes.values()) expect(n.liveCount).toBe(10);
    const before = ids.map((id) => ({ ...nodes.get(id)!.stats.sent }));
    const piggybackedBefore = ids.map((id) => nodes.get(id)!.stats.piggybackedSent);
    for (let now = 60_001; now <= 120_000; now++) step(now);
    const total = (k: "ping" | "ack" | "gossip" | "sync-req" | "ping-req") => ids.reduce((s, id, i) => s + nodes.get(id)!.stats.sent[k] - before[i]![k], 0);
    // 60 s of rest: about one probe per node per second, each acked; no push, no indirect probe.
    expect(total("gossip")).toBe(0);
    expect(total("ping-req")).toBe(0);
    expect(total("ping")).toBeGreaterThanOrEqual(10 * 55);
    expect(total("ping")).toBeLessThanOrEqual(10 * 61);
    expect(total("ack")).toBe(total("ping"));
    // Nothing changes: anti-entropy backs off to 4 periods (20–60 s) instead of one per 5–15 s
    // (6 a minute per node without the backoff).
    expect(total("sync-req")).toBeLessThanOrEqual(10 * 3);
    // Nothing changed: probes and acks carry no piggybacked update.
    expect(ids.reduce((s, id, i) => s + nodes.get(id)!.stats.piggybackedSent - piggybackedBefore[i]!, 0)).toBe(0);
    // A change brings the next sync back within one period (10 s) on the node that saw it.
    const n3 = nodes.get("n3")!;
    const syncsBefore = n3.stats.sent["sync-req"];
    n3.publish({ key: "k", version: 1, data: "v" });
    for (let now = 120_001; now <= 130_001; now++) step(now);
    expect(n3.stats.sent["sync-req"]).toBeGreaterThan(syncsBefore);
  });
});
