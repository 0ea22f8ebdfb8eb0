/** The driver: durability across reopen, group commit, answers after durability, the one timer. */

import { describe, expect, it } from "vitest";
import { SimClock } from "@mpreg/testkit";
import { ErrorCode, MpregError, type QueueDelivery } from "@mpreg/envelope";
import { MemoryBackend } from "@mpreg/persistence";
import { GatedBackend, reopenable, simService, turn } from "../test/sim.js";

async function rejection(p: Promise<unknown>): Promise<MpregError> {
  try {
    await p;
  } catch (e) {
    return e as MpregError;
  }
  throw new Error("expected a rejection");
}

describe("QueueService in memory", () => {
  it("send, receive, ack; stats", async () => {
    const clock = new SimClock({ startMs: 1e6 });
    const { service } = await simService(clock);
    await service.create("q");
    expect(service.options("q").durable).toBe(false);
    const { message_id } = await service.send("q", { n: 1 });
    const [m] = await service.receive("q");
    expect(m).toMatchObject({ message_id, body: { n: 1 }, receive_count: 1, sent_at: 1e6 });
    await service.ack("q", m!.receipt);
    expect(await service.stats("q")).toEqual({ visible: 0, in_flight: 0, delayed: 0, dead_lettered: 0, sent: 1, acked: 1 });
  });

  it("keeps one timer for the next due event and none when nothing is due (no polling)", async () => {
    const clock = new SimClock({ startMs: 0 });
    const { service, timers } = await simService(clock);
    await service.create("q", { visibility_timeout_ms: 1000 });
    expect(timers.armed()).toBe(0);
    for (let i = 0; i < 5; i++) await service.send("q", i);
    await service.send("q", "late", { delay_ms: 500 });
    expect(timers.armed()).toBe(1);
    const ms = await service.receive("q", { max: 10 });
    expect(ms).toHaveLength(5);
    expect(timers.armed()).toBe(1);
    clock.advance(500);
    await service.idle();
    expect((await service.stats("q")).visible).toBe(1);
    clock.advance(500);
    await service.idle();
    expect(await service.stats("q")).toMatchObject({ visible: 6, in_flight: 0 });
    expect(timers.armed()).toBe(0);
  });

  it("a long poll is answered by a send, and by its timeout with []", async () => {
    const clock = new SimClock();
    const { service } = await simService(clock);
    await service.create("q");
    const waiting = service.receive("q", { wait_ms: 5000 });
    await turn();
    await service.send("q", "wake");
    expect((await waiting).map((m) => m.body)).toEqual(["wake"]);
    const empty = service.receive("q", { wait_ms: 5000 });
    clock.advance(5000);
    expect(await empty).toEqual([]);
  });

  it("an aborted long poll answers [] and leaves later messages to others", async () => {
    const clock = new SimClock();
    const { service } = await simService(clock);
    await service.create("q");
    const ac = new AbortController();
    const waiting = service.receive("q", { wait_ms: 5000 }, "c1", ac.signal);
    ac.abort();
    expect(await waiting).toEqual([]);
    await service.send("q", 1);
    expect(await service.receive("q", {}, "c2")).toHaveLength(1);
  });

  it("push subscriptions: the answer resolves before the first delivery; closeOwner returns the lease", async () => {
    const clock = new SimClock();
    const { service } = await simService(clock);
    await service.create("q");
    await service.send("q", "first");
    const seen: QueueDelivery[] = [];
    let answered = false;
    const sub = service.subscribe("q", { prefetch: 2 }, "conn", (f) => {
      expect(answered).toBe(true);
      seen.push(f);
    });
    const { subscription_id } = await sub;
    answered = true;
    await turn();
    expect(seen.map((f) => [f.role, f.subscription_id, f.message.body])).toEqual([["queue-delivery", subscription_id, "first"]]);
    await service.send("q", "second");
    expect(seen).toHaveLength(2);
    await service.ack("q", seen[0]!.message.receipt);
    await service.closeOwner("conn");
    expect(await service.stats("q")).toMatchObject({ visible: 1, in_flight: 0, acked: 1 });
    await service.send("q", "third");
    expect(seen).toHaveLength(2);
  });

  it("quorum: send resolves after the acks; too few subscribers is 1005", async () => {
    const clock = new SimClock();
    const { service } = await simService(clock);
    await service.create("q");
    const frames: QueueDelivery[] = [];
    await service.subscribe("q", {}, "a", (f) => frames.push(f));
    await service.subscribe("q", {}, "b", (f) => frames.push(f));
    expect((await rejection(service.send("q", 1, { delivery: "quorum", quorum: 3 }))).code).toBe(ErrorCode.UNREACHABLE);
    let done = false;
    const sending = service.send("q", "v", { delivery: "quorum", quorum: 2 }).then((r) => ((done = true), r));
    await turn();
    expect(frames).toHaveLength(2);
    await service.ack("q", frames[0]!.message.receipt);
    await turn();
    expect(done).toBe(false);
    await service.ack("q", frames[1]!.message.receipt);
    expect((await sending).duplicate).toBe(false);
  });

  it("announces the set of queues when it changes", async () => {
    const clock = new SimClock();
    const seen: string[][] = [];
    const { service } = await simService(clock, { onQueuesChanged: (n) => seen.push([...n]) });
    const late: string[][] = [];
    service.onQueuesChanged((n) => late.push([...n]));
    await service.create("a");
    await service.create("a");
    await service.create("b", { max_receives: 1 });
    await service.send("b", 1);
    const [m] = await service.receive("b");
    await service.nack("b", m!.receipt);
    await service.delete("a");
    expect(seen).toEqual([["a"], ["a", "b"], ["a", "b", "b.dlq"], ["b", "b.dlq"]]);
    expect(late).toEqual(seen);
    expect(service.names()).toEqual(["b", "b.dlq"]);
  });

  it("close answers waiting receives with [] and refuses later calls", async () => {
    const clock = new SimClock();
    const { service } = await simService(clock);
    await service.create("q");
    const waiting = service.receive("q", { wait_ms: 5000 });
    await service.close();
    expect(await waiting).toEqual([]);
    expect((await rejection(service.send("q", 1))).code).toBe(ErrorCode.UNREACHABLE);
  });
});

describe("QueueService durability", () => {
  it("a queue is durable by default with a backend; answered sends survive a reopen, acked messages do not return", async () => {
    const vol = reopenable();
    const clock = new SimClock({ startMs: 1e6 });
    let { service } = await simService(clock, { backend: await vol.open() });
    await service.create("q", { visibility_timeout_ms: 1000, max_receives: 5 });
    await service.create("mem", { durable: false });
    expect(service.options("q").durable).toBe(true);
    for (const b of ["a", "b", "c", "d"]) await service.send("q", b);
    await service.send("q", "later", { delay_ms: 60_000 });
    await service.send("mem", "gone");
    const got = await service.receive("q", { max: 2 });
    await service.ack("q", got[0]!.receipt); // "a" acked; "b" in flight at the "crash"
    const [c] = await service.receive("q");
    await service.nack("q", c!.receipt, { delay_ms: 30_000 });

    ({ service } = await simService(clock, { backend: await vol.open() }));
    expect(service.recovery).toMatchObject({ queues: 1, messages: 4, dropped: 0 }); // "mem" was not durable
    expect(service.names()).toEqual(["q"]);
    expect(await service.stats("q")).toEqual({ visible: 2, in_flight: 0, delayed: 2, dead_lettered: 0, sent: 5, acked: 1 });
    const ms = await service.receive("q", { max: 10 });
    expect(ms.map((m) => [m.body, m.receive_count])).toEqual([
      ["b", 2],
      ["d", 1],
    ]);
    for (const m of ms) await service.ack("q", m.receipt);
    clock.advance(30_000);
    const [c2] = await service.receive("q", { max: 10 });
    expect([c2!.body, c2!.receive_count]).toEqual(["c", 2]);
    await service.ack("q", c2!.receipt);
    clock.advance(30_000);
    expect((await service.receive("q", { max: 10 })).map((m) => m.body)).toEqual(["later"]);
  });

  it("a lease in flight that used the last receive moves to the DLQ on reopen", async () => {
    const vol = reopenable();
    const clock = new SimClock();
    let { service } = await simService(clock, { backend: await vol.open() });
    await service.create("q", { max_receives: 1 });
    await service.send("q", "poison");
    await service.receive("q");
    ({ service } = await simService(clock, { backend: await vol.open() }));
    expect(await service.stats("q")).toMatchObject({ visible: 0, dead_lettered: 1 });
    const [d] = await service.receive("q.dlq");
    expect(d).toMatchObject({ body: "poison", dead_letter: { reason: "max_receives", last_return: "restart", receive_count: 1 } });
  });

  it("fifo: a group whose queued head is dead-lettered on reopen takes new messages (found by the model test)", async () => {
    const vol = reopenable();
    const clock = new SimClock();
    let { service } = await simService(clock, { backend: await vol.open() });
    await service.create("f", { type: "fifo", max_receives: 1 });
    await service.send("f", "a1", { group_id: "g" });
    await service.send("f", "a2", { group_id: "g" });
    await service.receive("f");
    ({ service } = await simService(clock, { backend: await vol.open() }));
    await service.send("f", "a3", { group_id: "g" });
    expect((await service.receive("f", { max: 10 })).map((m) => m.body)).toEqual(["a2"]);
    const { service: s2 } = await simService(clock, { backend: await vol.open() });
    await s2.create("h", { type: "fifo", max_receives: 1 });
    await s2.send("h", "x", { group_id: "g" });
    await s2.receive("h");
    const { service: s3 } = await simService(clock, { backend: await vol.open() });
    await s3.send("h", "y", { group_id: "g" });
    expect((await s3.receive("h", { max: 10 })).map((m) => m.body)).toEqual(["y"]);
  });

  it("fifo order, priorities, dedup ids and options survive a reopen; deleted queues stay deleted", async () => {
    const vol = reopenable();
    const clock = new SimClock();
    let { service } = await simService(clock, { backend: await vol.open() });
    await service.create("f", { type: "fifo", visibility_timeout_ms: 777 });
    await service.create("p", { type: "priority" });
    await service.create("x");
    for (const [b, g] of [["a1", "a"], ["b1", "b"], ["a2", "a"]]) await service.send("f", b, { group_id: g, dedup_id: b });
    for (const [b, p] of [["lo", 1], ["hi", 9], ["mid", 5]] as const) await service.send("p", b, { priority: p });
    await service.delete("x");

    ({ service } = await simService(clock, { backend: await vol.open() }));
    expect(service.names()).toEqual(["f", "p"]);
    expect(service.options("f")).toMatchObject({ type: "fifo", visibility_timeout_ms: 777 });
    expect((await service.send("f", "a1", { group_id: "a", dedup_id: "a1" })).duplicate).toBe(true);
    expect((await service.receive("f", { max: 10 })).map((m) => m.body)).toEqual(["a1", "b1"]);
    expect((await service.receive("p", { max: 10 })).map((m) => m.body)).toEqual(["hi", "mid", "lo"]);
  });

  it("answers, deliveries and long polls wait until their writes are durable", async () => {
    const vol = reopenable();
    const gated = new GatedBackend(await vol.open());
    const clock = new SimClock();
    const { service } = await simService(clock, { backend: gated });
    await service.create("q");
    const frames: QueueDelivery[] = [];
    await service.subscribe("q", { prefetch: 1 }, "c", (f) => frames.push(f));
    await turn();
    gated.gate = true;
    let answered = false;
    const sending = service.send("q", "x").then(() => (answered = true));
    for (let i = 0; i < 5; i++) await turn();
    expect(answered).toBe(false);
    expect(frames).toHaveLength(0);
    gated.release();
    await sending;
    await service.idle();
    expect(frames).toHaveLength(1);
  });

  it("group commit: concurrent operations share batches", async () => {
    const vol = reopenable();
    const gated = new GatedBackend(await vol.open());
    const clock = new SimClock();
    const { service } = await simService(clock, { backend: gated });
    await service.create("q");
    const before = gated.batches;
    await Promise.all(Array.from({ length: 200 }, (_, i) => service.send("q", i)));
    expect(gated.batches - before).toBeLessThanOrEqual(2);
    expect((await service.stats("q")).visible).toBe(200);
  });

  it("a failed write fails the waiting calls and stops the service (1003)", async () => {
    const clock = new SimClock();
    const gated = new GatedBackend(new MemoryBackend());
    const { service } = await simService(clock, { backend: gated });
    await service.create("q");
    gated.failNext = new Error("disk on fire");
    const e = await rejection(service.send("q", 1));
    expect(e.code).toBe(ErrorCode.EXECUTION_FAILED);
    expect((await rejection(service.stats("q"))).details).toMatchObject({ reason: "storage_failed" });
  });
});
