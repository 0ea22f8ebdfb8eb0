import { decodeFrame, encodeFrame, isMpregError, type MpregError, type PubsubNotificationMessage } from "@mpreg/envelope";
import { createMemoryConnectionPair } from "@mpreg/transport";
import { waitFor } from "@mpreg/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { FakeCluster } from "../test/fake-cluster.js";
import { DEDUP_WINDOW } from "./subscription.js";
import { MpregClient } from "./index.js";

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

describe("pub/sub", () => {
  it("batchPublishes: a turn's publishes travel in one frame; each resolves with its own id, a refused batch rejects each", async () => {
    const fc = await FakeCluster.start(1);
    cleanups.push(() => fc.stop());
    const c = await MpregClient.connect(fc.nodes[0]!.url, { discovery: false, batchPublishes: true, transport: { pingIntervalMs: 0 } });
    cleanups.push(() => c.close());
    const got: unknown[] = [];
    await c.subscribe("t.*", { callback: (m) => got.push(m.payload) });
    const ids = await Promise.all([0, 1, 2, 3, 4].map((i) => c.publish(`t.${i}`, i)));
    const batches = fc.nodes[0]!.frames.filter((f) => f.role === "pubsub-publish-batch");
    expect(batches).toHaveLength(1);
    expect(new Set(ids).size).toBe(5);
    await waitFor(() => got.length === 5);
    expect(got).toEqual([0, 1, 2, 3, 4]);
    // A publish with options is not coalesced; one bad topic refuses its whole batch.
    const results = await Promise.allSettled([c.publish("t.a", 1), c.publish("t.*", 2), c.publish("t.b", 3)]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"]);
    for (const r of results) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 1002 });
    expect(got).toHaveLength(5);
    expect(c.pendingCount).toBe(0);
    // More than MAX_PUBSUB_BATCH in one turn: several frames, every id back in order.
    const many = await Promise.all(Array.from({ length: 600 }, (_, i) => c.publish("u.x", i)));
    expect(many).toHaveLength(600);
    expect(fc.nodes[0]!.frames.filter((f) => f.role === "pubsub-publish-batch").length).toBe(2 + 3);
  });

  it("batchPublishes: publishes waiting for their ack reject with 1005 when the connection is lost", async () => {
    const fc = await FakeCluster.start(1);
    cleanups.push(() => fc.stop());
    const c = await MpregClient.connect(fc.nodes[0]!.url, { discovery: false, batchPublishes: true, reconnect: false, transport: { pingIntervalMs: 0 } });
    cleanups.push(() => c.close());
    fc.holdPublishBatches = true;
    const settled = Promise.allSettled([c.publish("t", 1), c.publish("t", 2)]);
    await waitFor(() => fc.nodes[0]!.frames.some((f) => f.role === "pubsub-publish-batch"));
    expect(c.pendingCount).toBe(2);
    await fc.kill(fc.nodes[0]!);
    for (const r of await settled) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 1005 });
    expect(c.pendingCount).toBe(0);
  });

  it("asks for batched notifications by default and hands a batch over one message at a time, in order, deduplicated", async () => {
    const { fc, c } = await setup();
    const got: unknown[] = [];
    const sub = await c.subscribe("t", { callback: (m) => got.push(m.payload) });
    const plain = await c.subscribe("u", { batch: false });
    const subscribes = fc.nodes[0]!.frames.filter((f) => f.role === "pubsub-subscribe") as Array<{ subscription: { batch?: boolean } }>;
    expect(subscribes.map((f) => f.subscription.batch)).toEqual([true, undefined]);
    const m = (i: number) => ({ topic: "t", payload: i, headers: {}, message_id: `id${i}`, publisher: "n", timestamp: 1 });
    fc.pushToSubscription(sub.id, { role: "pubsub-notification-batch", subscription_id: sub.id, messages: [m(1), m(2), m(3)] });
    fc.pushToSubscription(sub.id, { role: "pubsub-notification", subscription_id: sub.id, message: m(4) });
    fc.pushToSubscription(sub.id, { role: "pubsub-notification-batch", subscription_id: sub.id, messages: [m(3), m(5)] });
    await waitFor(() => got.length === 5);
    expect(got).toEqual([1, 2, 3, 4, 5]);
    expect(sub.received).toBe(5);
    await plain.unsubscribe();
    await expect(c.subscribe("t", { batch: "yes" as unknown as boolean })).rejects.toMatchObject({ code: 1002 });
  });

  it("publish resolves with the message id; a subscription yields the messages with for await", async () => {
    const { fc, c } = await setup();
    const sub = await c.subscribe(["orders.*", "alerts.#"]);
    expect(fc.subscriptionsOn(fc.nodes[0]!)).toEqual([sub.id]);
    const id = await c.publish("orders.new", { n: 1 }, { headers: { k: "v" } });
    expect(id).toMatch(/^m/);
    expect(await c.publish("alerts.a.b", 2, { message_id: "mine" })).toBe("mine");
    await c.publish("other.x", 3);
    const seen: PubsubNotificationMessage[] = [];
    for await (const m of sub) {
      seen.push(m);
      if (seen.length === 2) break;
    }
    expect(seen.map((m) => [m.topic, m.payload, m.message_id])).toEqual([
      ["orders.new", { n: 1 }, id],
      ["alerts.a.b", 2, "mine"],
    ]);
    // `break` unsubscribed it on the node.
    await waitFor(() => fc.subscriptionsOn(fc.nodes[0]!).length === 0);
    expect(sub.closed).toBe(true);
  });

  it("unsubscribe() ends a waiting loop cleanly and tells the node", async () => {
    const { fc, c } = await setup();
    const sub = await c.subscribe("a", { subscription_id: "my-sub" });
    expect(sub.id).toBe("my-sub");
    const loop = (async () => {
      const got: unknown[] = [];
      for await (const m of sub) got.push(m.payload);
      return got;
    })();
    await c.publish("a", 1);
    await waitFor(() => sub.received === 1);
    await sub.unsubscribe();
    expect(await loop).toEqual([1]);
    expect(fc.subscriptionsOn(fc.nodes[0]!)).toEqual([]);
    await sub.unsubscribe(); // twice is harmless
  });

  it("bounds the buffer: past maxBuffered the oldest messages are dropped and counted", async () => {
    const { fc, c } = await setup();
    const sub = await c.subscribe("t", { maxBuffered: 3 });
    for (let i = 0; i < 10; i++) fc.publish("t", i);
    await waitFor(() => sub.received === 10);
    expect(sub.dropped).toBe(7);
    const it = sub[Symbol.asyncIterator]();
    const got = [];
    for (let i = 0; i < 3; i++) got.push(((await it.next()).value as PubsubNotificationMessage).payload);
    expect(got).toEqual([7, 8, 9]);
  });

  it("asks for a backlog on the first subscribe only", async () => {
    const { fc, c } = await setup();
    for (let i = 0; i < 3; i++) fc.publish("b.x", i);
    const sub = await c.subscribe("b.*", { backlog: { seconds: 60, max: 2 } });
    const it = sub[Symbol.asyncIterator]();
    expect(((await it.next()).value as PubsubNotificationMessage).payload).toBe(1);
    expect(((await it.next()).value as PubsubNotificationMessage).payload).toBe(2);
    const frame = fc.nodes[0]!.frames.find((f) => f.role === "pubsub-subscribe");
    expect(frame).toMatchObject({ subscription: { patterns: ["b.*"], backlog: { seconds: 60, max: 2 }, subscription_id: sub.id } });
  });

  it("rejects a refused publish with the ack's wire code; refuses bad subscribe input locally with 1002", async () => {
    const { c } = await setup();
    const e = await rejection(c.publish("a.*", 1));
    expect(e.code).toBe(1002);
    expect(e.details).toMatchObject({ path: "message.topic" });
    expect((await rejection(c.subscribe([]))).details).toMatchObject({ path: "patterns" });
    expect((await rejection(c.subscribe(["a", ""]))).details).toMatchObject({ path: "patterns.1" });
    expect((await rejection(c.subscribe("a", { maxBuffered: 0 }))).details).toMatchObject({ path: "maxBuffered" });
  });

  it("close() ends every subscription loop cleanly", async () => {
    const { c } = await setup();
    const sub = await c.subscribe("z");
    const loop = (async () => {
      let n = 0;
      for await (const _ of sub) n++;
      return n;
    })();
    await c.close();
    expect(await loop).toBe(0);
    expect((await rejection(c.publish("z", 1))).code).toBe(1005);
  });

  it("holds pushes that arrive before the reply naming their subscription, and hands them over", async () => {
    // A node that pushes a queue delivery before it answers mpreg.queue.subscribe.
    const [a, b] = createMemoryConnectionPair();
    b.onMessage((data, isBinary) => {
      const res = decodeFrame(data, isBinary ? "msgpack" : "json");
      if (!res.ok || res.frame.role !== "rpc") return;
      const cmd = res.frame.cmds[0]!;
      b.send(encodeFrame({ role: "queue-delivery", subscription_id: "qs1", message: { message_id: "m1", receipt: "r1", body: "early", receive_count: 1, sent_at: 1 } }, "msgpack"));
      b.send(encodeFrame({ role: "rpc-response", u: res.frame.u, r: { [cmd.name]: { subscription_id: "qs1" } }, error: null }, "msgpack"));
    });
    const c = new MpregClient(a);
    cleanups.push(() => c.close());
    const sub = await c.queue("q").subscribe();
    const first = await sub[Symbol.asyncIterator]().next();
    expect(first.value).toMatchObject({ message_id: "m1", body: "early", receipt: "r1" });
  });

  it("drops a message id seen among the last DEDUP_WINDOW (and at most twice as many)", async () => {
    // A node that answers the subscribe, then pushes the ids the test hands it.
    const [a, b] = createMemoryConnectionPair();
    let sid = "";
    b.onMessage((data, isBinary) => {
      const res = decodeFrame(data, isBinary ? "msgpack" : "json");
      if (!res.ok || res.frame.role !== "pubsub-subscribe") return;
      sid = res.frame.subscription.subscription_id ?? "";
      b.send(encodeFrame({ role: "pubsub-ack", u: res.frame.u, success: true, subscription_id: sid }, "msgpack"));
    });
    const c = new MpregClient(a);
    cleanups.push(() => c.close());
    const got: string[] = [];
    await c.subscribe("t", { callback: (m) => got.push(m.message_id) });
    const push = (id: string) =>
      b.send(encodeFrame({ role: "pubsub-notification", subscription_id: sid, message: { topic: "t", payload: 1, headers: {}, message_id: id, publisher: "n", timestamp: 1 } }, "msgpack"));
    const ids = Array.from({ length: 3 * DEDUP_WINDOW }, (_, i) => `m${i}`);
    for (const id of ids) push(id);
    // Every id again, newest first: the last DEDUP_WINDOW are all dropped.
    for (const id of [...ids].reverse()) push(id);
    await waitFor(() => got.length >= ids.length && got[got.length - 1] === "m0");
    const again = got.slice(ids.length);
    expect(got.slice(0, ids.length)).toEqual(ids);
    for (const id of ids.slice(-DEDUP_WINDOW)) expect(again).not.toContain(id);
    // Forgotten: the first DEDUP_WINDOW (more than twice the window back) come through again.
    for (const id of ids.slice(0, DEDUP_WINDOW)) expect(again).toContain(id);
  });
  it("a plain publish (no options) settles like any request: its ack, 1004 at the deadline, 1007 past maxPending, 1005 when the link is lost", async () => {
    // A node that acks the publishes whose payload is "ack" (with an error for "refuse") and
    // leaves the others unanswered.
    const [a, b] = createMemoryConnectionPair();
    const seen: string[] = [];
    b.onMessage((data, isBinary) => {
      const res = decodeFrame(data, isBinary ? "msgpack" : "json");
      if (!res.ok || res.frame.role !== "pubsub-publish") return;
      const { u, message } = res.frame;
      seen.push(u);
      if (message.payload === "ack") b.send(encodeFrame({ role: "pubsub-ack", u, success: true, message_id: `m-${u}` }, "msgpack"));
      if (message.payload === "refuse") b.send(encodeFrame({ role: "pubsub-ack", u, success: false, error: { code: 1002, message: "bad topic", details: { reason: "bad topic" } } }, "msgpack"));
    });
    const c = new MpregClient(a, { timeoutMs: 50, deadlineGraceMs: 10, maxPending: 3 });
    cleanups.push(() => c.close());
    expect(await c.publish("t", "ack")).toMatch(/^m-/);
    expect((await rejection(c.publish("t", "refuse"))).code).toBe(1002);
    expect(c.pendingCount).toBe(0);
    // Unanswered: the client deadline (timeoutMs + grace) rejects with 1004.
    const silent = [c.publish("t", "none"), c.publish("t", "none"), c.publish("t", "none")];
    expect(c.pendingCount).toBe(3);
    // maxPending counts plain publishes too.
    expect((await rejection(c.publish("t", "ack"))).code).toBe(1007);
    for (const p of silent) expect((await rejection(p)).code).toBe(1004);
    expect(c.pendingCount).toBe(0);
    // Lost link: what was unanswered fails with 1005.
    const lost = c.publish("t", "none");
    await waitFor(() => seen.length === 6);
    b.close();
    expect((await rejection(lost)).code).toBe(1005);
    expect(c.pendingCount).toBe(0);
  });
});
