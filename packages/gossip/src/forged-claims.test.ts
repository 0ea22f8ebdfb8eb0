import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cluster, pump } from "../test/pump.js";
import type { GossipNode } from "./gossip-node.js";
import type { GossipEvent, MemberStatus, MemberUpdate } from "./types.js";

const gossip = (members: MemberUpdate[]) => ({ type: "gossip", members, items: [] });

/** Runs `nodes` for `ms` of virtual time (ticks every 50 ms, zero-latency delivery). */
function run(nodes: Map<string, GossipNode>, from: number, ms: number, events?: Map<string, GossipEvent[]>, silent: string[] = []): number {
  let t = from;
  for (; t <= from + ms; t += 50) {
    for (const [id, n] of nodes) if (!silent.includes(id)) n.tick(t);
    pump(nodes, t, (o) => silent.includes(o.to) || silent.includes(o.from), events);
  }
  return t;
}

const fatal = (events: Map<string, GossipEvent[]>, id: string) =>
  [...events.values()].flat().filter((e) => (e.type === "member-dead" || e.type === "member-left") && e.id === id);

describe("forged membership claims (issue 16)", () => {
  it("the 1e300 eviction claim is refused (INVALID_REQUEST, counted) and the live node stays alive", () => {
    const nodes = cluster(["a", "b", "c"]);
    const a = nodes.get("a")!;
    for (const inc of [1e300, 2 ** 53, Number.MAX_VALUE, 1.5, -1]) {
      expect(() => a.handleMessage("c", gossip([{ id: "b", inc, status: "dead" }]), 10)).toThrowError(
        expect.objectContaining({ code: 1002, details: expect.objectContaining({ path: "msg.members[0].inc" }) }),
      );
    }
    expect(a.stats.messagesRefused).toBe(5);
    expect(a.stats.claimsRefused.unsafe_incarnation).toBe(5);
    const events = new Map<string, GossipEvent[]>();
    run(nodes, 10, 60_000, events);
    expect(a.member("b")?.status).toBe("alive");
    expect(fatal(events, "b")).toEqual([]);
  });

  it("a relayed 'dead' claim about a live member is only a suspicion: the member is told, refutes, and stays alive", () => {
    const nodes = cluster(["a", "b", "c"]);
    const a = nodes.get("a")!;
    const b = nodes.get("b")!;
    const inc = a.member("b")!.incarnation;
    const events = new Map<string, GossipEvent[]>();
    a.handleMessage("c", gossip([{ id: "b", inc, status: "dead" }]), 10);
    expect(a.member("b")?.status).toBe("suspect");
    expect(a.stats.hearsayDowngraded).toBe(1);
    // a tells b directly; b's refutation comes straight back.
    const out = a.drain().messages;
    expect(out).toContainEqual({ to: "b", msg: gossip([{ id: "b", inc, status: "suspect", by: "a" }]) });
    a.handleMessage("c", gossip([{ id: "b", inc, status: "dead" }]), 10); // replayed: a confirmation only
    expect(a.drain().messages.filter((m) => m.to === "b")).toEqual([]);
    for (const m of out) nodes.get(m.to)?.handleMessage("a", m.msg, 10);
    pump(nodes, 10, () => false, events);
    expect(b.currentIncarnation).toBe(inc + 1);
    expect(a.member("b")).toMatchObject({ status: "alive", incarnation: inc + 1 });
    run(nodes, 10, 60_000, events);
    expect(fatal(events, "b")).toEqual([]);
  });

  it("hearsay is bounded by what the member announced itself; negative claims beyond the known incarnation are refused", () => {
    const nodes = cluster(["a", "b", "c"]);
    const a = nodes.get("a")!;
    const inc = a.member("b")!.incarnation; // b told a itself (its anchor at a)
    a.handleMessage("c", gossip([{ id: "b", inc: inc + 1001, status: "alive", meta: { url: "ws://evil" } }]), 10);
    expect(a.stats.claimsRefused.hearsay_raise).toBe(1);
    expect(a.member("b")).toMatchObject({ status: "alive", incarnation: inc, meta: { id: "b" } });
    a.handleMessage("c", gossip([{ id: "b", inc: inc + 3, status: "dead" }]), 10);
    expect(a.stats.claimsRefused.beyond_announced).toBe(1);
    // Taken as a hint at the known incarnation: b is asked, refutes, and is alive again.
    expect(a.member("b")).toMatchObject({ status: "suspect", incarnation: inc });
    pump(nodes, 10);
    expect(a.member("b")).toMatchObject({ status: "alive", incarnation: inc + 1 });
    a.handleMessage("c", gossip([{ id: "b", inc: inc + 5000, status: "dead" }]), 10);
    expect(a.stats.claimsRefused.incarnation_jump).toBe(1);
    expect(a.member("b")?.status).toBe("alive");
    // A refutation relayed by others (within the step) is taken: SWIM spreads them so.
    a.handleMessage("c", gossip([{ id: "b", inc: inc + 4, status: "alive", meta: { id: "b" } }]), 11);
    expect(a.member("b")).toMatchObject({ status: "alive", incarnation: inc + 4 });
  });

  it("a refutation relayed by others clears a suspicion of a member this node cannot reach", () => {
    const nodes = cluster(["a", "b", "c"]);
    const a = nodes.get("a")!;
    const inc = a.member("b")!.incarnation;
    a.handleMessage("c", gossip([{ id: "b", inc, status: "suspect", by: "c" }]), 10);
    expect(a.member("b")?.status).toBe("suspect");
    a.drain(); // a's notice to b is lost (no route)
    a.handleMessage("c", gossip([{ id: "b", inc: inc + 1, status: "alive", meta: { id: "b" } }]), 20);
    expect(a.member("b")).toMatchObject({ status: "alive", incarnation: inc + 1 });
  });

  it("the step bound: hearsay of an unknown member past it is refused, the member's own word is not", () => {
    const nodes = cluster(["a", "b"]);
    const a = nodes.get("a")!;
    a.handleMessage("b", gossip([{ id: "ghost", inc: 1001, status: "alive" }]), 10);
    expect(a.member("ghost")).toBeUndefined();
    expect(a.stats.claimsRefused.incarnation_jump).toBe(1);
    a.handleMessage("b", gossip([{ id: "ghost", inc: 1000, status: "dead" }]), 10);
    expect(a.member("ghost")?.status).toBe("dead");
    a.handleMessage("old", gossip([{ id: "old", inc: 123_456, status: "alive" }]), 10);
    expect(a.member("old")).toMatchObject({ status: "alive", incarnation: 123_456 });
  });

  it("a claim about this node past the step bound is refused: it does not spend its incarnations", () => {
    const nodes = cluster(["a", "b"], { maxIncarnationStep: 10 });
    const a = nodes.get("a")!;
    const own = a.currentIncarnation;
    a.handleMessage("b", gossip([{ id: "a", inc: own + 11, status: "dead" }]), 10);
    expect(a.currentIncarnation).toBe(own);
    expect(a.stats.claimsRefused.incarnation_jump).toBe(1);
    a.handleMessage("b", gossip([{ id: "a", inc: own + 10, status: "dead" }]), 10);
    expect(a.currentIncarnation).toBe(own + 11);
    // A stale rumour gets the sender told the current fact (no new incarnation).
    a.drain();
    a.handleMessage("b", gossip([{ id: "a", inc: own, status: "suspect", by: "b" }]), 11);
    expect(a.currentIncarnation).toBe(own + 11);
    expect(a.drain().messages).toContainEqual({ to: "b", msg: gossip([{ id: "a", inc: own + 11, status: "alive", meta: { id: "a" } }]) });
  });

  it("a forged GOODBYE is refuted; a real one relayed as hearsay still ends as `left`, never `dead`", () => {
    const nodes = cluster(["a", "b", "c"]);
    const a = nodes.get("a")!;
    const inc = a.member("b")!.incarnation;
    const events = new Map<string, GossipEvent[]>();
    a.handleMessage("c", gossip([{ id: "b", inc, status: "left" }]), 10);
    expect(a.member("b")?.status).toBe("suspect");
    pump(nodes, 10, () => false, events);
    expect(a.member("b")).toMatchObject({ status: "alive", incarnation: inc + 1 });
    let t = run(nodes, 10, 10_000, events);
    expect(fatal(events, "b")).toEqual([]);
    // b really leaves, but only c hears it directly; a hears it from c.
    const b = nodes.get("b")!;
    b.leave(t);
    const bye = b.drain().messages.filter((m) => m.to === "c");
    for (const m of bye) nodes.get("c")!.handleMessage("b", m.msg, t);
    expect(nodes.get("c")!.member("b")?.status).toBe("left");
    t = run(nodes, t, 5_000, events, ["b"]);
    expect(a.member("b")?.status).toBe("left");
    expect(fatal(events, "b").map((e) => e.type)).toEqual(["member-left", "member-left"]);
  });

  it("news of a dead member coming back may travel as hearsay (restart, healed partition)", () => {
    const nodes = cluster(["a", "b", "c"]);
    const a = nodes.get("a")!;
    const events = new Map<string, GossipEvent[]>();
    run(nodes, 0, 60_000, events, ["b"]);
    expect(a.member("b")?.status).toBe("dead");
    const inc = a.member("b")!.incarnation;
    a.handleMessage("c", gossip([{ id: "b", inc: inc + 1, status: "alive", meta: { id: "b" } }]), 60_100);
    expect(a.member("b")).toMatchObject({ status: "alive", incarnation: inc + 1 });
  });

  it("a member this node holds suspect or dead that talks to it is told, and refutes", () => {
    const nodes = cluster(["a", "b"]);
    const a = nodes.get("a")!;
    const b = nodes.get("b")!;
    // a believes b dead (say a partition); b does not know.
    a.handleMessage("a", gossip([]), 0);
    (a as unknown as { applyMember(u: MemberUpdate, from: string): boolean }).applyMember({ id: "b", inc: 0, status: "dead" }, "a");
    a.drain();
    a.handleMessage("b", { type: "ping", seq: 1, target: "a", members: [], items: [] }, 5000);
    expect(a.drain().messages.map((m) => m.msg.type).sort()).toEqual(["ack", "gossip"]);
    expect(a.stats.noticesSent).toBe(1);
    a.handleMessage("b", { type: "ping", seq: 2, target: "a", members: [], items: [] }, 5001);
    expect(a.stats.noticesSent).toBe(1); // rate-limited to one per probe interval
    a.handleMessage("b", { type: "ping", seq: 3, target: "a", members: [], items: [] }, 6001);
    pump(nodes, 6001);
    expect(b.currentIncarnation).toBe(1);
    expect(a.member("b")).toMatchObject({ status: "alive", incarnation: 1 });
  });
});

// ---------------------------------------------------------------- property test

const STATUSES: MemberStatus[] = ["alive", "suspect", "dead", "left"];
type Inc = { rel: number } | { abs: number };
const incArb: fc.Arbitrary<Inc> = fc.oneof(
  fc.record({ rel: fc.integer({ min: -2, max: 3 }) }),
  fc.record({ rel: fc.constantFrom(998, 999, 1000, 1001, 5000) }),
  fc.record({ abs: fc.constantFrom(0, 1, 0.5, 1e300, 2 ** 53, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER - 1) }),
);
const claimArb = fc.record({
  about: fc.constantFrom("x", "x", "x", "r", "h", "ghost"),
  status: fc.constantFrom(...STATUSES),
  inc: incArb,
  by: fc.option(fc.constantFrom("f", "h", "r", "x"), { nil: undefined }),
  meta: fc.option(fc.constant({ url: "ws://evil" }), { nil: undefined }),
});
const attackArb = fc.record({
  from: fc.constantFrom("f", "g", "h"),
  to: fc.constantFrom("r", "r", "h", "x"),
  kind: fc.constantFrom("gossip", "sync-req", "sync", "ping", "ack"),
  claims: fc.array(claimArb, { minLength: 1, maxLength: 4 }),
  waitMs: fc.integer({ min: 0, max: 3000 }),
});

describe("property: forged membership claims", () => {
  it("no sequence of messages not from X makes a live, reachable X dead or left, at any moment, while X keeps refuting", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.array(attackArb, { minLength: 1, maxLength: 25 }), (seed, attacks) => {
        const nodes = cluster(["x", "r", "h"], {}, seed);
        const events = new Map<string, GossipEvent[]>();
        const x = nodes.get("x")!;
        let now = 0;
        for (const a of attacks) {
          const target = nodes.get(a.to)!;
          // An adaptive forger: incarnations relative to what the receiver holds right now.
          const members = a.claims.map((c): MemberUpdate => {
            const known = c.about === a.to ? target.currentIncarnation : (target.member(c.about)?.incarnation ?? 0);
            const inc = "abs" in c.inc ? c.inc.abs : Math.max(0, known + c.inc.rel);
            const u: MemberUpdate = { id: c.about, inc, status: c.status };
            if (c.by !== undefined) u.by = c.by;
            if (c.meta !== undefined) u.meta = c.meta;
            return u;
          });
          const msg =
            a.kind === "gossip"
              ? gossip(members)
              : a.kind === "sync-req"
                ? { type: "sync-req", full: false, start: "", end: null, digest: [], members }
                : a.kind === "sync"
                  ? { type: "sync", full: false, start: "", end: null, items: [], want: [], more: false, members }
                  : { type: a.kind, seq: 1, target: a.to, members, items: [] };
          const unsafe = members.some((m) => !Number.isSafeInteger(m.inc));
          try {
            target.handleMessage(a.from, msg, now);
            expect(unsafe).toBe(false);
          } catch (e) {
            expect(unsafe).toBe(true);
            expect(e).toMatchObject({ code: 1002 });
          }
          pump(nodes, now, () => false, events);
          for (const o of ["r", "h"]) expect(nodes.get(o)!.member("x")?.status, `${o}'s view of x`).toBe("alive");
          now = run(nodes, now + 50, a.waitMs, events);
          for (const o of ["r", "h"]) expect(nodes.get(o)!.member("x")?.status, `${o}'s view of x`).toBe("alive");
        }
        expect(fatal(events, "x")).toEqual([]);
        // X can always refute again: its incarnation stays a safe integer, burnt by at most
        // step + 1 per forged message.
        expect(Number.isSafeInteger(x.currentIncarnation + 1)).toBe(true);
        expect(x.currentIncarnation).toBeLessThanOrEqual(attacks.length * (x.config.maxIncarnationStep + 1) + 10);
        expect(x.member("x")?.status).toBe("alive");
      }),
      { numRuns: 150 },
    );
  });
});
