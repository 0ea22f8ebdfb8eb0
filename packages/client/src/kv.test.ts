import { isMpregError, type KvWatchEvent, type MpregError, type RpcRequest } from "@mpreg/envelope";
import { waitFor } from "@mpreg/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { FakeCluster } from "../test/fake-cluster.js";
import { MpregClient, type ClientOptions } from "./index.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function cluster(n = 1): Promise<FakeCluster> {
  const fc = await FakeCluster.start(n);
  cleanups.push(() => fc.stop());
  return fc;
}

async function connect(fc: FakeCluster, opts: ClientOptions = {}): Promise<MpregClient> {
  const c = await MpregClient.connect(fc.nodes.map((n) => n.url), {
    discovery: false,
    reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
    transport: { pingIntervalMs: 0 },
    ...opts,
  });
  cleanups.push(() => c.close());
  return c;
}

async function rejection(p: Promise<unknown>): Promise<MpregError> {
  try {
    await p;
  } catch (e) {
    expect(isMpregError(e)).toBe(true);
    return e as MpregError;
  }
  throw new Error("expected a rejection");
}

function rpcs(fc: FakeCluster, fun: string): RpcRequest[] {
  return fc.nodes.flatMap((n) => n.frames).filter((f): f is RpcRequest => f.role === "rpc" && f.cmds[0]!.fun === fun);
}

/** Settles within `ms`? (to check that a wait is still waiting, after its watch is in place) */
async function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true), () => (done = true));
  await new Promise((r) => setTimeout(r, ms));
  return done;
}

describe("kv helpers", () => {
  it("get, put, delete, cas, range, prefix and txn map onto mpreg.kv.*", async () => {
    const fc = await cluster();
    const c = await connect(fc);
    expect(await c.kv.get("a")).toEqual({ found: false });
    const p1 = await c.kv.put("a", { x: 1 });
    expect(p1).toEqual({ version: 1, revision: 1 });
    expect(await c.kv.get("a")).toEqual({ found: true, value: { x: 1 }, version: 1, mod_revision: 1 });
    expect(await c.kv.cas("a", 0, 2)).toEqual({ ok: false, version: 1 });
    expect(await c.kv.cas("a", 1, 2)).toEqual({ ok: true, version: 2 });
    await c.kv.put("b/1", 1);
    await c.kv.put("b/2", 2);
    await c.kv.put("c", 3);
    const r = await c.kv.prefix("b/");
    expect(r.items.map((i) => i.key)).toEqual(["b/1", "b/2"]);
    expect(r.more).toBe(false);
    expect((await c.kv.range("b/", undefined, { limit: 2 })).items.map((i) => i.key)).toEqual(["b/1", "b/2"]);
    expect((await c.kv.range("b/", undefined, { limit: 2 })).more).toBe(true);
    const t = await c.kv.txn({
      compare: [{ key: "a", target: "value", op: "==", value: 2 }],
      success: [{ put: ["d", 4] }, { get: "a" }],
      failure: [{ delete: "a" }],
    });
    expect(t.succeeded).toBe(true);
    expect(t.results[1]).toMatchObject({ found: true, value: 2 });
    expect(await c.kv.delete("a")).toMatchObject({ deleted: true });
    expect(rpcs(fc, "mpreg.kv.range").map((f) => f.cmds[0]!.args)).toEqual([
      ["b/", "b0"],
      ["b/", null, { limit: 2 }],
      ["b/", null, { limit: 2 }],
    ]);
    expect(rpcs(fc, "mpreg.kv.put")[0]!.cmds[0]!.args).toEqual(["a", { x: 1 }]);
  });

  it("watch yields changes under its prefix in revision order, replays from start_revision, and ends on cancel", async () => {
    const fc = await cluster();
    const c = await connect(fc);
    const r1 = fc.kvPut("w/1", "a");
    fc.kvPut("other", 0);
    const w = await c.kv.watch("w/", { start_revision: r1 });
    const r3 = fc.kvPut("w/2", "b");
    await c.kv.delete("w/1");
    const seen: KvWatchEvent[] = [];
    const loop = (async () => {
      for await (const ev of w) seen.push(ev);
    })();
    await waitFor(() => seen.length === 3);
    expect(seen.map((e) => [e.type, e.key, e.mod_revision])).toEqual([
      ["put", "w/1", r1],
      ["put", "w/2", r3],
      ["delete", "w/1", r3 + 1],
    ]);
    expect(w.nextRevision).toBe(r3 + 2);
    await w.cancel();
    await loop;
    expect(rpcs(fc, "mpreg.kv.unwatch")).toHaveLength(1);
    expect(fc.watchesOn(fc.nodes[0]!)).toBe(0);
  });

  it("a watch that falls maxBuffered behind ends with 1007 and the revision to continue from", async () => {
    const fc = await cluster();
    const c = await connect(fc);
    const w = await c.kv.watch("o/", { maxBuffered: 2 });
    const revs = [1, 2, 3, 4].map((i) => fc.kvPut(`o/${i}`, i));
    await waitFor(() => w.closed);
    const it = w[Symbol.asyncIterator]();
    expect((await it.next()).value).toMatchObject({ mod_revision: revs[0] });
    expect((await it.next()).value).toMatchObject({ mod_revision: revs[1] });
    const e = await rejection(it.next());
    expect(e.code).toBe(1007);
    expect(e.details).toMatchObject({ reason: "watch buffer full", next_revision: revs[2] });
    await waitFor(() => fc.watchesOn(fc.nodes[0]!) === 0);
  });

  it("a watch whose resume revision was compacted away ends with 1002 compacted", async () => {
    const fc = await cluster(2);
    const c = await connect(fc);
    const w = await c.kv.watch("p/");
    const it = w[Symbol.asyncIterator]();
    fc.kvPut("p/1", 1);
    await it.next();
    fc.compacted = 100;
    await fc.kill(fc.nodeByUrl(c.url)!);
    const e = await rejection(it.next());
    expect(e.code).toBe(1002);
    expect(e.details).toMatchObject({ reason: "compacted" });
  });

  it("leases: grant/keepalive/revoke, and lease() keeps one alive until revoked or lost", async () => {
    const fc = await cluster();
    const c = await connect(fc);
    const g = await c.kv.grant(1000);
    expect(await c.kv.keepalive(g.lease_id)).toEqual({ ttl_ms: 1000 });
    expect(await c.kv.revoke(g.lease_id)).toEqual({ revoked: true });
    expect((await rejection(c.kv.keepalive(g.lease_id))).code).toBe(1001);

    const lease = await c.kv.lease(120);
    await c.kv.put("leased", 1, { lease: lease.id });
    // Well past its ttl: alive thanks to the keepalives.
    await new Promise((r) => setTimeout(r, 400));
    expect(lease.alive).toBe(true);
    expect((await c.kv.get("leased")).found).toBe(true);
    await lease.revoke();
    expect(lease.signal.aborted).toBe(true);
    expect((await c.kv.get("leased")).found).toBe(false);

    const lost = await c.kv.lease(100);
    fc.leases.delete(String(lost.id)); // expired on the store's side
    await waitFor(() => lost.signal.aborted);
    expect(lost.signal.reason).toMatchObject({ code: 1001 });
  });

  it("lock: one holder at a time, each waiter watches only the key before its own, unlock hands it on", async () => {
    const fc = await cluster();
    const [c1, c2, c3] = [await connect(fc), await connect(fc), await connect(fc)];
    const l1 = await c1.kv.lock("db", { ttl_ms: 1000 });
    expect(l1.key).toMatch(/^mpreg\/lock\/db\//);
    const p2 = c2.kv.lock("db", { ttl_ms: 1000 });
    await waitFor(() => rpcs(fc, "mpreg.kv.watch").length === 1);
    const p3 = c3.kv.lock("db", { ttl_ms: 1000 });
    await waitFor(() => rpcs(fc, "mpreg.kv.watch").length === 2);
    expect(await settledWithin(Promise.race([p2, p3]), 50)).toBe(false);
    const keys = [...fc.kv.keys()].filter((k) => k.startsWith("mpreg/lock/db/"));
    expect(keys).toHaveLength(3);
    const watched = rpcs(fc, "mpreg.kv.watch").map((f) => f.cmds[0]!.args![0]);
    expect(watched[0]).toBe(l1.key);
    expect(watched[1]).not.toBe(l1.key); // the third waits on the second, not the holder

    await l1.unlock();
    expect(l1.signal.aborted).toBe(true);
    const l2 = await p2;
    expect(l2.revision).toBeGreaterThan(l1.revision);
    expect(await settledWithin(p3, 30)).toBe(false);
    await l2.unlock();
    const l3 = await p3;
    expect(l3.revision).toBeGreaterThan(l2.revision);
    await l3.unlock();
  });

  it("a lock whose holder dies passes on when its lease expires; a waiter that gives up removes its key", async () => {
    const fc = await cluster();
    const c1 = await connect(fc);
    const c2 = await connect(fc);
    const l1 = await c1.kv.lock("job", { ttl_ms: 150 });
    const e = await rejection(c2.kv.lock("job", { signal: AbortSignal.timeout(60) }));
    expect(e.code).toBe(1004);
    expect([...fc.kv.keys()].filter((k) => k.startsWith("mpreg/lock/job/"))).toEqual([l1.key]);
    const p2 = c2.kv.lock("job", { ttl_ms: 1000 });
    await c1.close(); // no unlock: the keepalives stop, the lease expires
    const l2 = await p2;
    expect(l2.key).not.toBe(l1.key);
  });

  it("a lock waiter keeps its place across a failover of its own node", async () => {
    const fc = await cluster(2);
    const [n1, n2] = fc.nodes;
    const waiter = await connect(fc);
    const owner = await MpregClient.connect([n2!.url], { discovery: false, transport: { pingIntervalMs: 0 } });
    cleanups.push(() => owner.close());
    expect(waiter.url).toBe(n1!.url);
    const l1 = await owner.kv.lock("m", { ttl_ms: 2000 });
    const p2 = waiter.kv.lock("m", { ttl_ms: 2000 });
    await waitFor(() => fc.watchesOn(n1!) === 1);
    await fc.kill(n1!);
    // The waiter's watch on the key before its own is made again on n2.
    await waitFor(() => waiter.url === n2!.url && fc.watchesOn(n2!) === 1);
    expect(await settledWithin(p2, 30)).toBe(false);
    await l1.unlock();
    const l2 = await p2;
    expect(l2.revision).toBeGreaterThan(l1.revision);
  });

  it("election: the first candidate leads, leader() tells everyone, resign() passes leadership on", async () => {
    const fc = await cluster();
    const c1 = await connect(fc);
    const c2 = await connect(fc);
    expect(await c2.kv.leader("svc")).toBeUndefined();
    const e1 = await c1.kv.elect("svc", { host: "a" });
    expect(e1.isLeader).toBe(true);
    const p2 = c2.kv.elect("svc", { host: "b" });
    await waitFor(() => rpcs(fc, "mpreg.kv.watch").length === 1);
    expect(await c2.kv.leader("svc")).toMatchObject({ value: { host: "a" }, key: e1.key });
    expect(await settledWithin(p2, 30)).toBe(false);
    await e1.resign();
    const e2 = await p2;
    expect(await e2.leader()).toMatchObject({ value: { host: "b" }, revision: e2.revision });
    expect(e1.isLeader).toBe(false);
  });
});
