import { isMpregError, type BuiltinContext, type MpregError } from "@mpreg/envelope";
import { describe, expect, it } from "vitest";
import { kvBuiltins } from "../src/kv-builtins.js";
import type { RaftKV, KvWatchEvent } from "../src/raft-kv.js";
import { LocalCluster } from "./local-cluster.js";

async function rejection(p: Promise<unknown>): Promise<MpregError> {
  try {
    await p;
  } catch (e) {
    if (isMpregError(e)) return e;
    throw e;
  }
  throw new Error("expected a rejection");
}

/** A cluster with a clock the test moves, watch deliveries right after the answer (microtask). */
function cluster(n: number, extra: ConstructorParameters<typeof LocalCluster>[1] = {}) {
  const clock = { now: 1_000_000 };
  const c = new LocalCluster(n, { now: () => clock.now, watch: { defer: (fn) => queueMicrotask(fn) }, ...extra });
  return { c, clock };
}

/** Runs an operation on a LocalCluster: starts it, settles the network, returns its result. */
async function run<T>(c: LocalCluster, op: () => Promise<T>): Promise<T> {
  const p = op();
  p.catch(() => undefined);
  await c.settle();
  return p;
}

/** Collects what a watch delivers. */
function sink() {
  const events: KvWatchEvent[] = [];
  const ended: MpregError[] = [];
  return { events, ended, deliver: (e: KvWatchEvent[]) => void events.push(...e), end: (e: MpregError) => void ended.push(e) };
}

describe("RaftKV through the driver", () => {
  it("range, txn and revisions; a follower serves range reads", async () => {
    const { c } = cluster(3);
    await c.start();
    const leader = await c.waitLeader();
    const follower = [...c.nodes.values()].find((k) => k && k !== leader)!;
    expect(await run(c, () => leader.put("a/1", { x: 1 }))).toEqual({ version: 1, revision: 1 });
    expect(await run(c, () => leader.put("a/2", new Uint8Array([9])))).toEqual({ version: 1, revision: 2 });
    expect(await run(c, () => leader.put("b", "bee"))).toEqual({ version: 1, revision: 3 });
    const r = await run(c, () => follower.range("a/", "a0"));
    expect(r).toEqual({
      items: [
        { key: "a/1", value: { x: 1 }, version: 1, mod_revision: 1 },
        { key: "a/2", value: new Uint8Array([9]), version: 1, mod_revision: 2 },
      ],
      more: false,
      revision: 3,
    });
    expect(await run(c, () => follower.range("a", undefined, { limit: 1 }))).toMatchObject({ items: [{ key: "a/1" }], more: true });
    // txn: compare on version, then several writes at one revision.
    const t = await run(c, () =>
      leader.txn({
        compare: [{ key: "a/1", target: "version", op: "==", value: 1 }, { key: "b", target: "value", op: "==", value: "bee" }],
        success: [{ put: ["a/1", 2] }, { delete: "b" }, { get: "a/1" }],
        failure: [{ get: "b" }],
      }),
    );
    expect(t).toEqual({
      succeeded: true,
      results: [{ version: 2, revision: 4 }, { deleted: true, revision: 4 }, { found: true, value: 2, version: 2, mod_revision: 4 }],
      revision: 4,
    });
    const f = await run(c, () => leader.txn({ compare: [{ key: "b", target: "mod_revision", op: ">", value: 0 }], success: [{ delete: "a/1" }], failure: [{ get: "a/2" }] }));
    expect(f).toMatchObject({ succeeded: false, results: [{ found: true, mod_revision: 2 }], revision: 4 });
    // Bad input is refused before anything is proposed.
    expect((await rejection(leader.range("b", "a"))).details).toMatchObject({ reason: "bad_range" });
    expect((await rejection(leader.put("", 1))).details).toMatchObject({ reason: "bad_key" });
    expect((await rejection(run(c, () => leader.put("k", 1, { lease: 12345 })))).code).toBe(1001);
  });

  it("a watch sees every change once, in order, from history and live, across a leader crash", async () => {
    const { c } = cluster(3, { snapshotEvery: 10 });
    await c.start();
    let leader = await c.waitLeader();
    for (let i = 1; i <= 5; i++) await run(c, () => leader.put(`w/${i}`, i));
    await run(c, () => leader.put("other", 0));
    const watcherId = c.ids.find((id) => id !== leader.node.id)!;
    const watcher = c.nodes.get(watcherId)!;
    const s = sink();
    const w = await run(c, () => watcher.watch("o1", "w/", 3, s));
    expect(w.revision).toBe(6);
    for (let i = 6; i <= 12; i++) await run(c, () => leader.put(`w/${i}`, i));
    // The leader crashes; another member leads; writes go on.
    c.crash(leader.node.id);
    leader = await c.waitLeader();
    for (let i = 13; i <= 20; i++) await run(c, () => leader.put(`w/${i}`, i));
    await run(c, () => leader.delete("w/20"));
    await c.tick(3);
    const revs = s.events.map((e) => e.mod_revision);
    expect(revs).toEqual([3, 4, 5, ...Array.from({ length: 15 }, (_, i) => i + 7), 22]);
    expect(s.events.at(-1)).toEqual({ type: "delete", key: "w/20", mod_revision: 22 });
    expect(s.events[0]).toEqual({ type: "put", key: "w/3", value: 3, mod_revision: 3 });
    // Unwatch by the owner only; closeOwner ends the rest.
    expect(watcher.unwatch(w.watch_id, "someone else")).toBe(false);
    expect(watcher.unwatch(w.watch_id, "o1")).toBe(true);
    await run(c, () => leader.put("w/after", 1));
    expect(s.events.length).toBe(19);
  });

  it("a watch on a lagging member continues through an installed snapshot; a too old start is compacted", async () => {
    const { c } = cluster(3, { snapshotEvery: 5, limits: { historyRevisions: 8 } });
    await c.start();
    const leader = await c.waitLeader();
    const laggerId = c.ids.find((id) => id !== leader.node.id)!;
    const lagger = c.nodes.get(laggerId)!;
    await run(c, () => leader.put("k", 0));
    const near = sink();
    const far = sink();
    await run(c, () => lagger.watch("o", "k", undefined, near));
    await run(c, () => lagger.watch("o", "k", undefined, far));
    c.isolate(laggerId);
    // Within the history window (8 revisions): the snapshot's history fills the gap.
    for (let i = 1; i <= 6; i++) await run(c, () => leader.put("k", i));
    c.heal();
    await c.tick(5);
    expect(lagger.node.status().snapshotIndex).toBeGreaterThan(0);
    expect(near.events.map((e) => e.value)).toEqual([1, 2, 3, 4, 5, 6]);
    // Beyond it: the watch ends with 1002 compacted.
    c.isolate(laggerId);
    lagger.closeOwner("o");
    const gone = sink();
    await run(c, () => (c.heal(), lagger.watch("p", "k", undefined, gone)));
    c.isolate(laggerId);
    for (let i = 7; i <= 30; i++) await run(c, () => leader.put("k", i));
    c.heal();
    await c.tick(5);
    expect(gone.ended.map((e) => [e.code, e.details.reason])).toEqual([[1002, "compacted"]]);
    expect(far.events.length).toBe(6); // closed by closeOwner before
    const e = await rejection(run(c, () => leader.watch("q", "k", 2, sink())));
    expect(e.code).toBe(1002);
    expect(e.details).toMatchObject({ reason: "compacted", compact_revision: leader.state.compactRevision });
  });

  it("leases: keys go when the leader's clock passes the TTL without keepalive, on every member at one revision", async () => {
    const { c, clock } = cluster(3);
    await c.start();
    let leader = await c.waitLeader();
    const { lease_id, ttl_ms } = await run(c, () => leader.leaseGrant(1000));
    expect(ttl_ms).toBe(1000);
    await run(c, () => leader.put("lock/a", "me", { lease: lease_id }));
    await run(c, () => leader.put("lock/b", "me", { lease: lease_id }));
    await run(c, () => leader.put("free", 1));
    const follower = [...c.nodes.values()].find((k) => k && k !== leader)!;
    // Keepalive is a leader's business.
    expect((await rejection(run(c, () => follower.leaseKeepAlive(lease_id)))).details.reason).toBe("not_leader");
    clock.now += 800;
    await c.tick(2);
    expect(await run(c, () => leader.leaseKeepAlive(lease_id))).toEqual({ ttl_ms: 1000 });
    clock.now += 800;
    await c.tick(2);
    expect(leader.state.get("lock/a")).toBeDefined(); // 800 ms after the keepalive
    clock.now += 300;
    await c.tick(3);
    for (const kv of c.nodes.values()) {
      expect(kv!.state.get("lock/a")).toBeUndefined();
      expect(kv!.state.get("lock/b")).toBeUndefined();
      expect(kv!.state.get("free")).toBeDefined();
      expect(kv!.state.leaseTtl(lease_id)).toBeUndefined();
    }
    expect(leader.state.revision).toBe(4); // both keys at one revision
    expect((await rejection(run(c, () => leader.leaseKeepAlive(lease_id)))).code).toBe(1001);
    expect((await rejection(run(c, () => leader.put("x", 1, { lease: lease_id })))).details.reason).toBe("lease_not_found");

    // A new leader restarts the clocks at the full TTL: the lease outlives the crash.
    const l2 = await run(c, () => leader.leaseGrant(1000));
    await run(c, () => leader.put("held", 1, { lease: l2.lease_id }));
    clock.now += 900;
    c.crash(leader.node.id);
    leader = await c.waitLeader();
    await c.tick(1); // the new leader's first tick as leader: its lease clocks start now
    clock.now += 900; // 1800 ms after the grant, 900 after the new leader took over
    await c.tick(2);
    expect(leader.lessor.remaining(l2.lease_id)).toBe(100);
    expect(leader.state.get("held")).toBeDefined();
    clock.now += 200;
    await c.tick(3);
    expect(leader.state.get("held")).toBeUndefined();
    // A revoke deletes at once.
    const l3 = await run(c, () => leader.leaseGrant(5000));
    await run(c, () => leader.put("r", 1, { lease: l3.lease_id }));
    expect(await run(c, () => leader.leaseRevoke(l3.lease_id))).toEqual({ revoked: true });
    expect(leader.state.get("r")).toBeUndefined();
  });
});

describe("kvBuiltins", () => {
  function ctx(owner: string, frames: object[]): BuiltinContext {
    return { owner, push: (f) => frames.push(f), signal: new AbortController().signal, request_id: "r1" };
  }

  it("serves the protocol's built-ins; writes on a follower go through forwardToLeader", async () => {
    const { c } = cluster(3);
    await c.start();
    const leader = await c.waitLeader();
    const follower = [...c.nodes.values()].find((k) => k && k !== leader)!;
    const forwarded: string[] = [];
    const tables = new Map<RaftKV, ReturnType<typeof kvBuiltins>>();
    const table = (kv: RaftKV) => {
      let t = tables.get(kv);
      if (!t) {
        t = kvBuiltins({
          kv,
          group: "g",
          leaderWaitMs: 1000,
          forwardToLeader: (to, fun, args, cx) => {
            forwarded.push(`${fun}->${to}`);
            return call(c.nodes.get(to)!, fun, args, cx);
          },
        });
        tables.set(kv, t);
      }
      return t;
    };
    const call = (kv: RaftKV, fun: string, args: unknown[] | readonly unknown[], cx: BuiltinContext) =>
      Promise.resolve(table(kv).find((b) => b.name === fun)!.run(args, cx));
    const names = table(leader).map((b) => b.name);
    expect(names.sort()).toEqual(
      [
        "mpreg.kv.cas", "mpreg.kv.delete", "mpreg.kv.get", "mpreg.kv.lease.grant", "mpreg.kv.lease.keepalive", "mpreg.kv.lease.revoke",
        "mpreg.kv.put", "mpreg.kv.range", "mpreg.kv.txn", "mpreg.kv.unwatch", "mpreg.kv.watch",
        "mpreg.raft.add_member", "mpreg.raft.remove_member", "mpreg.raft.status", "mpreg.raft.transfer_leader",
      ].sort(),
    );
    expect(table(leader).filter((b) => b.admin).map((b) => b.name).sort()).toEqual(["mpreg.raft.add_member", "mpreg.raft.remove_member", "mpreg.raft.transfer_leader"]);

    const frames: object[] = [];
    const cx = ctx("conn-1", frames);
    const w = (await run(c, () => call(follower, "mpreg.kv.watch", ["app/", {}], cx))) as { watch_id: string; revision: number };
    expect(w.revision).toBe(0);
    expect(await run(c, () => call(follower, "mpreg.kv.put", ["app/x", new Uint8Array([1, 2])], cx))).toEqual({ version: 1, revision: 1 });
    expect(forwarded).toEqual([`mpreg.kv.put->${leader.node.id}`]);
    expect(await run(c, () => call(follower, "mpreg.kv.cas", ["app/x", 1, "two"], cx))).toEqual({ ok: true, version: 2 });
    expect(await run(c, () => call(follower, "mpreg.kv.get", ["app/x"], cx))).toEqual({ found: true, value: "two", version: 2, mod_revision: 2 });
    const txn = await run(c, () => call(follower, "mpreg.kv.txn", [{ compare: [{ key: "app/x", target: "value", op: "==", value: "two" }], success: [{ put: ["app/y", 1] }] }], cx));
    expect(txn).toEqual({ succeeded: true, results: [{ version: 1, revision: 3 }], revision: 3 });
    expect(await run(c, () => call(follower, "mpreg.kv.range", ["app/"], cx))).toMatchObject({ items: [{ key: "app/x" }, { key: "app/y" }], more: false, revision: 3 });
    const lease = (await run(c, () => call(follower, "mpreg.kv.lease.grant", [{ ttl_ms: 5000 }], cx))) as { lease_id: number };
    expect(await run(c, () => call(follower, "mpreg.kv.lease.keepalive", [lease.lease_id], cx))).toEqual({ ttl_ms: 5000 });
    expect(await run(c, () => call(follower, "mpreg.kv.lease.revoke", [lease.lease_id], cx))).toEqual({ revoked: true });
    expect(await run(c, () => call(follower, "mpreg.kv.delete", ["app/y"], cx))).toEqual({ deleted: true, revision: 4 });
    await c.settle();
    expect(frames).toEqual([
      { role: "kv-event", watch_id: w.watch_id, events: [{ type: "put", key: "app/x", value: new Uint8Array([1, 2]), mod_revision: 1 }] },
      { role: "kv-event", watch_id: w.watch_id, events: [{ type: "put", key: "app/x", value: "two", mod_revision: 2 }] },
      { role: "kv-event", watch_id: w.watch_id, events: [{ type: "put", key: "app/y", value: 1, mod_revision: 3 }] },
      { role: "kv-event", watch_id: w.watch_id, events: [{ type: "delete", key: "app/y", mod_revision: 4 }] },
    ]);
    // The connection closes: its watches end.
    follower.closeOwner("conn-1");
    await run(c, () => call(leader, "mpreg.kv.put", ["app/z", 1], cx));
    expect(frames.length).toBe(4);
    expect(await call(follower, "mpreg.kv.unwatch", [w.watch_id], cx)).toEqual({ ok: false });
    expect(await call(follower, "mpreg.raft.status", [], cx)).toMatchObject({ group: "g", revision: 5 });
  });

  it("bad arguments are 1002 naming the field", async () => {
    const { c } = cluster(1);
    await c.start();
    const kv = await c.waitLeader();
    const t = kvBuiltins({ kv, group: "g", forwardToLeader: () => Promise.reject(new Error("no")) });
    const cx = ctx("o", []);
    const err = async (fun: string, args: unknown[]) => {
      const e = await rejection(run(c, async () => t.find((b) => b.name === fun)!.run(args, cx)));
      return [e.code, e.details.path ?? e.details.reason];
    };
    expect(await err("mpreg.kv.put", [5, 1])).toEqual([1002, "args.0"]);
    expect(await err("mpreg.kv.put", ["k", 1, { lease: "x" }])).toEqual([1002, "args.2.lease"]);
    expect(await err("mpreg.kv.range", ["b", "a"])).toEqual([1002, "end"]);
    expect(await err("mpreg.kv.range", ["a", null, { limit: 0 }])).toEqual([1002, "args.2.limit"]);
    expect(await err("mpreg.kv.txn", [{ compare: [{ key: "k", target: "size", op: "==", value: 1 }] }])).toEqual([1002, "args.0.compare.0.target"]);
    expect(await err("mpreg.kv.txn", [{ success: [{ put: ["k"] }] }])).toEqual([1002, "args.0.success.0.put"]);
    expect(await err("mpreg.kv.txn", [{ success: [{ get: "k", delete: "k" }] }])).toEqual([1002, "args.0.success.0"]);
    expect(await err("mpreg.kv.lease.grant", [{ ttl_ms: -1 }])).toEqual([1002, "args.0.ttl_ms"]);
    expect(await err("mpreg.kv.watch", ["p", { start_revision: 0 }])).toEqual([1002, "args.1.start_revision"]);
    expect(await err("mpreg.kv.cas", ["k", -1, 1])).toEqual([1002, "args.1"]);
    expect(await err("mpreg.kv.lease.keepalive", [999])).toEqual([1001, "lease_not_found"]);
  });
});
