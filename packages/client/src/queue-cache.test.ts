import { isMpregError, type MpregError, type RpcRequest } from "@mpreg/envelope";
import { waitFor } from "@mpreg/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { FakeCluster } from "../test/fake-cluster.js";
import { MpregClient, type ReceivedMessage } from "./index.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup(): Promise<{ fc: FakeCluster; c: MpregClient }> {
  const fc = await FakeCluster.start(1);
  cleanups.push(() => fc.stop());
  const c = await MpregClient.connect(fc.nodes[0]!.url, { discovery: false, transport: { pingIntervalMs: 0 } });
  cleanups.push(() => c.close());
  return { fc, c };
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

function calls(fc: FakeCluster): Array<[string, unknown[]]> {
  return fc.nodes[0]!.frames.filter((f) => f.role === "rpc").map((f) => [(f as RpcRequest).cmds[0]!.fun, (f as RpcRequest).cmds[0]!.args ?? []]);
}

describe("queue helpers", () => {
  it("create, send, receive, ack, nack, extend, stats, purge, delete map onto mpreg.queue.*", async () => {
    const { fc, c } = await setup();
    const q = c.queue("work");
    expect(await q.create({ type: "fifo", visibility_timeout_ms: 1000 })).toEqual({ name: "work", created: true });
    expect(await q.create({ type: "fifo", visibility_timeout_ms: 1000 })).toEqual({ name: "work", created: false });
    const sent = await q.send({ job: 1 }, { group_id: "g" });
    expect(sent).toMatchObject({ duplicate: false });
    await q.send({ job: 2 });
    const [m1, m2] = await q.receive({ max: 2, wait_ms: 100 });
    expect(m1).toMatchObject({ message_id: sent.message_id, body: { job: 1 }, receive_count: 1 });
    await m1!.extend(5000);
    await m1!.ack();
    await m2!.nack({ delay_ms: 0 });
    expect((await rejection(m1!.ack())).code).toBe(1001); // stale receipt
    expect(await q.stats()).toMatchObject({ visible: 1, in_flight: 0, sent: 2, acked: 1 });
    await q.purge();
    expect(await q.stats()).toMatchObject({ visible: 0 });
    await q.delete();
    expect((await rejection(q.stats())).code).toBe(1001);
    expect(calls(fc).map(([f]) => f)).toEqual([
      "mpreg.queue.create", "mpreg.queue.create", "mpreg.queue.send", "mpreg.queue.send", "mpreg.queue.receive",
      "mpreg.queue.extend", "mpreg.queue.ack", "mpreg.queue.nack", "mpreg.queue.ack", "mpreg.queue.stats",
      "mpreg.queue.purge", "mpreg.queue.stats", "mpreg.queue.delete", "mpreg.queue.stats",
    ]);
    const args = new Map(calls(fc));
    expect(args.get("mpreg.queue.create")).toEqual(["work", { type: "fifo", visibility_timeout_ms: 1000 }]);
    expect(args.get("mpreg.queue.receive")).toEqual(["work", { max: 2, wait_ms: 100 }]);
    expect(args.get("mpreg.queue.extend")).toEqual(["work", m1!.receipt, 5000]);
    expect(args.get("mpreg.queue.nack")).toEqual(["work", m2!.receipt, { delay_ms: 0 }]);
    // A long poll gets a request timeout longer than its wait.
    const receive = fc.nodes[0]!.frames.find((f) => f.role === "rpc" && (f as RpcRequest).cmds[0]!.fun === "mpreg.queue.receive") as RpcRequest;
    expect(receive.timeout_ms).toBeGreaterThanOrEqual(30_000);
  });

  it("subscribe({prefetch}) yields deliveries with ack(), within the prefetch window", async () => {
    const { fc, c } = await setup();
    const q = c.queue("jobs");
    await q.create();
    for (let i = 0; i < 5; i++) await q.send(i);
    const sub = await q.subscribe({ prefetch: 2 });
    expect(sub.id).toMatch(/^qs/);
    const got: unknown[] = [];
    for await (const m of sub) {
      got.push(m.body);
      // Only `prefetch` are out at once.
      expect((await q.stats()).in_flight).toBeLessThanOrEqual(2);
      await m.ack();
      if (got.length === 5) break;
    }
    expect(got).toEqual([0, 1, 2, 3, 4]);
    await waitFor(() => calls(fc).some(([f]) => f === "mpreg.queue.unsubscribe"));
    expect(await q.stats()).toMatchObject({ visible: 0, in_flight: 0, acked: 5 });
  });

  it("a callback consumer receives each delivery; unsubscribe stops it", async () => {
    const { c } = await setup();
    const q = c.queue("cb");
    await q.create();
    const got: ReceivedMessage[] = [];
    const sub = await q.subscribe({ callback: (m) => got.push(m) });
    await q.send("x");
    await waitFor(() => got.length === 1);
    await got[0]!.ack();
    await sub.unsubscribe();
    expect(sub.closed).toBe(true);
  });

  it("a consumer that falls behind maxBuffered drops the oldest, which stay leased until their visibility timeout", async () => {
    const { c } = await setup();
    const q = c.queue("slow");
    await q.create();
    const sub = await q.subscribe({ prefetch: 10, maxBuffered: 2 });
    for (let i = 0; i < 4; i++) await q.send(i);
    await waitFor(() => sub.received === 4);
    expect(sub.dropped).toBe(2);
    const it = sub[Symbol.asyncIterator]();
    expect(((await it.next()).value as ReceivedMessage).body).toBe(2);
    expect(((await it.next()).value as ReceivedMessage).body).toBe(3);
    expect(await q.stats()).toMatchObject({ in_flight: 4, visible: 0 });
  });

  it("refuses a bad queue name or prefetch with 1002", async () => {
    const { c } = await setup();
    expect(() => c.queue("")).toThrow(expect.objectContaining({ code: 1002 }));
    expect((await rejection(c.queue("q").subscribe({ prefetch: 0 }))).details).toMatchObject({ path: "prefetch" });
  });
});

describe("cache helpers", () => {
  it("get, put, delete, invalidate, stats map onto mpreg.cache.*", async () => {
    const { fc, c } = await setup();
    expect(await c.cache.get("k")).toEqual({ hit: false });
    expect(await c.cache.put("k", { v: 1 }, { namespace: "ns", ttl_ms: 1000, dependencies: ["d"], cost: 2 })).toEqual({ ok: true });
    expect(await c.cache.get("k", { namespace: "ns" })).toEqual({ hit: true, value: { v: 1 } });
    expect(await c.cache.delete("k", { namespace: "ns" })).toEqual({ deleted: true });
    await c.cache.put("a", 1);
    expect(await c.cache.invalidate({ pattern: "a.#" })).toEqual({ invalidated: 1 });
    expect(await c.cache.stats({ namespace: "ns" })).toMatchObject({ entries: 0 });
    expect(calls(fc)).toEqual([
      ["mpreg.cache.get", ["k", {}]],
      ["mpreg.cache.put", ["k", { v: 1 }, { namespace: "ns", ttl_ms: 1000, dependencies: ["d"], cost: 2 }]],
      ["mpreg.cache.get", ["k", { namespace: "ns" }]],
      ["mpreg.cache.delete", ["k", { namespace: "ns" }]],
      ["mpreg.cache.put", ["a", 1, {}]],
      ["mpreg.cache.invalidate", [{ pattern: "a.#" }]],
      ["mpreg.cache.stats", [{ namespace: "ns" }]],
    ]);
  });
});
