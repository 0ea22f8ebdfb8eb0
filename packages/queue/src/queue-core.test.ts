/** One test per rule of PROTOCOL section 5, on the core alone (manual clock, counter ids). */

import { describe, expect, it } from "vitest";
import { ErrorCode, MpregError } from "@mpreg/envelope";
import { QueueCore, type QueueCoreConfig, type QueueReady } from "./queue-core.js";
import type { ReceivedMessage } from "./types.js";

function setup(cfg: Partial<QueueCoreConfig> = {}) {
  const clock = { t: 1_000_000 };
  let n = 0;
  const core = new QueueCore({ now: () => clock.t, newId: () => `id${++n}`, ...cfg });
  const advance = (ms: number) => {
    clock.t += ms;
    core.advance();
  };
  const recv = (q: string, opts: object = {}, owner = "c1"): ReceivedMessage[] => {
    const r = core.receive(q, opts, owner);
    expect(r.messages, "receive answered at once").toBeDefined();
    return r.messages!;
  };
  return { core, clock, advance, recv };
}

function code(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MpregError);
    return (e as MpregError).code;
  }
  return undefined;
}

function errorOf(fn: () => unknown): MpregError {
  try {
    fn();
  } catch (e) {
    return e as MpregError;
  }
  throw new Error("expected an error");
}

const bodies = (ms: ReceivedMessage[]) => ms.map((m) => m.body);

describe("visibility timeout and receive counts", () => {
  it("an unacked message becomes visible again after the timeout with receive_count + 1", () => {
    const { core, advance, recv } = setup();
    core.create("q", { visibility_timeout_ms: 1000, max_receives: 5 });
    core.send("q", "a");
    const [m1] = recv("q");
    expect(m1).toMatchObject({ body: "a", receive_count: 1 });
    expect(recv("q")).toEqual([]);
    expect(core.stats("q")).toMatchObject({ visible: 0, in_flight: 1 });
    advance(999);
    expect(recv("q")).toEqual([]);
    advance(1);
    expect(core.stats("q")).toMatchObject({ visible: 1, in_flight: 0 });
    const [m2] = recv("q");
    expect(m2).toMatchObject({ body: "a", receive_count: 2, message_id: m1!.message_id });
    expect(m2!.receipt).not.toBe(m1!.receipt);
    // The first receipt is stale now.
    expect(code(() => core.ack("q", m1!.receipt))).toBe(ErrorCode.NOT_FOUND);
    expect(core.ack("q", m2!.receipt)).toEqual({ ok: true });
    expect(core.stats("q")).toMatchObject({ visible: 0, in_flight: 0, sent: 1, acked: 1 });
  });

  it("receive's visibility_timeout_ms overrides the queue's", () => {
    const { core, advance, recv } = setup();
    core.create("q", { visibility_timeout_ms: 10_000 });
    core.send("q", 1);
    recv("q", { visibility_timeout_ms: 100 });
    advance(100);
    expect(recv("q")).toHaveLength(1);
  });

  it("extend moves the lease end; extend 0 returns the message at once", () => {
    const { core, advance, recv } = setup();
    core.create("q", { visibility_timeout_ms: 1000 });
    core.send("q", 1);
    const [m] = recv("q");
    advance(900);
    core.extend("q", m!.receipt, 1000);
    advance(900);
    expect(recv("q")).toEqual([]);
    advance(100);
    const [again] = recv("q");
    expect(again!.receive_count).toBe(2);
    core.extend("q", again!.receipt, 0);
    expect(recv("q")).toHaveLength(1);
  });

  it("nack makes the message visible again after delay_ms", () => {
    const { core, advance, recv } = setup();
    core.create("q");
    core.send("q", 1);
    const [m] = recv("q");
    core.nack("q", m!.receipt, { delay_ms: 500 });
    expect(core.stats("q")).toMatchObject({ delayed: 1, in_flight: 0 });
    expect(core.nextDueAt()).toBeDefined();
    advance(499);
    expect(recv("q")).toEqual([]);
    advance(1);
    expect(recv("q")[0]).toMatchObject({ receive_count: 2 });
    // A nacked receipt is stale.
    expect(code(() => core.nack("q", m!.receipt))).toBe(ErrorCode.NOT_FOUND);
  });
});

describe("dead-letter queue", () => {
  it("after max_receives receives the message moves to the DLQ with the reason and the count", () => {
    const { core, advance, recv } = setup();
    core.create("q", { visibility_timeout_ms: 100, max_receives: 2 });
    core.takeReady();
    core.send("q", { job: 1 });
    recv("q");
    advance(100);
    const [m] = recv("q");
    expect(m!.receive_count).toBe(2);
    advance(100);
    expect(core.stats("q")).toMatchObject({ visible: 0, in_flight: 0, dead_lettered: 1 });
    expect(core.takeReady().queuesChanged).toBe(true);
    expect(core.names()).toEqual(["q", "q.dlq"]);
    const [d] = recv("q.dlq");
    expect(d).toMatchObject({
      message_id: m!.message_id,
      body: { job: 1 },
      receive_count: 1,
      dead_letter: { reason: "max_receives", source_queue: "q", receive_count: 2, last_return: "visibility_timeout" },
    });
  });

  it("a nack of the last allowed receive dead-letters at once, into a DLQ created beforehand", () => {
    const { core, recv } = setup();
    core.create("dead", { type: "priority" });
    core.create("q", { max_receives: 1, dead_letter_queue: "dead" });
    core.send("q", "x");
    const [m] = recv("q");
    core.nack("q", m!.receipt);
    const [d] = recv("dead");
    expect(d).toMatchObject({ body: "x", priority: 0, dead_letter: { last_return: "nack", receive_count: 1 } });
  });

  it("without a dead-letter queue, max_receives is not enforced (redelivered until acked)", () => {
    const { core, advance, recv } = setup();
    core.create("q", { visibility_timeout_ms: 10, max_receives: 1, dead_letter_queue: null });
    core.send("q", "x");
    for (let i = 1; i <= 5; i++) {
      expect(recv("q")[0]!.receive_count).toBe(i);
      advance(10);
    }
    expect(core.stats("q").dead_lettered).toBe(0);
  });

  it("a full DLQ leaves the message in its queue rather than losing it", () => {
    const { core, advance, recv } = setup();
    core.create("dead", { max_messages: 1 });
    core.create("q", { visibility_timeout_ms: 10, max_receives: 1, dead_letter_queue: "dead" });
    core.send("q", 1);
    core.send("q", 2);
    recv("q", { max: 2 });
    advance(10);
    expect(core.stats("dead").visible).toBe(1);
    expect(core.stats("q")).toMatchObject({ visible: 1, dead_lettered: 1 });
  });
});

describe("fifo", () => {
  it("delivers each group in order, one in flight per group", () => {
    const { core, recv } = setup();
    core.create("f", { type: "fifo" });
    for (const [g, b] of [["a", "a1"], ["b", "b1"], ["a", "a2"], ["a", "a3"], ["b", "b2"]]) core.send("f", b, { group_id: g });
    const first = recv("f", { max: 10 });
    expect(bodies(first)).toEqual(["a1", "b1"]);
    expect(first[0]!.group_id).toBe("a");
    expect(recv("f", { max: 10 })).toEqual([]);
    core.ack("f", first[0]!.receipt);
    const second = recv("f", { max: 10 });
    expect(bodies(second)).toEqual(["a2"]);
    // A nack puts the head back: the group's order is kept.
    core.nack("f", first[1]!.receipt);
    expect(bodies(recv("f", { max: 10 }))).toEqual(["b1"]);
  });

  it("a dead-lettered head lets the rest of its group through", () => {
    const { core, advance, recv } = setup();
    core.create("f", { type: "fifo", max_receives: 1, visibility_timeout_ms: 10 });
    core.send("f", "a1", { group_id: "a" });
    core.send("f", "a2", { group_id: "a" });
    recv("f");
    advance(10);
    expect(bodies(recv("f"))).toEqual(["a2"]);
    const [d] = recv("f.dlq");
    expect(d!.body).toBe("a1");
    expect(d!.group_id).toBeUndefined();
  });

  it("a dedup_id seen within the window is a duplicate and is not enqueued again", () => {
    const { core, advance, recv } = setup();
    core.create("f", { type: "fifo", dedup_window_ms: 1000 });
    const a = core.send("f", "x", { dedup_id: "d1" });
    const b = core.send("f", "x", { dedup_id: "d1" });
    expect(b).toEqual({ message_id: a.message_id, duplicate: true });
    expect(core.stats("f")).toMatchObject({ visible: 1, sent: 1 });
    // Still a duplicate after the message was consumed, until the window passes.
    core.ack("f", recv("f")[0]!.receipt);
    expect(core.send("f", "x", { dedup_id: "d1" }).duplicate).toBe(true);
    advance(1000);
    const c = core.send("f", "x", { dedup_id: "d1" });
    expect(c.duplicate).toBe(false);
    expect(c.message_id).not.toBe(a.message_id);
  });

  it("a delayed head holds its group back", () => {
    const { core, advance, recv } = setup();
    core.create("f", { type: "fifo" });
    core.send("f", "a1", { group_id: "a", delay_ms: 100 });
    core.send("f", "a2", { group_id: "a" });
    expect(recv("f", { max: 10 })).toEqual([]);
    advance(100);
    expect(bodies(recv("f", { max: 10 }))).toEqual(["a1"]);
  });
});

describe("priority and delay", () => {
  it("higher priority first, FIFO among equals", () => {
    const { core, recv } = setup();
    core.create("p", { type: "priority" });
    for (const [b, p] of [["a", 1], ["b", 5], ["c", 5], ["d", 10], ["e", 1]] as const) core.send("p", b, { priority: p });
    expect(bodies(recv("p", { max: 10 }))).toEqual(["d", "b", "c", "a", "e"]);
  });

  it("priority and group_id are refused on queues of other types", () => {
    const { core } = setup();
    core.create("s");
    expect(errorOf(() => core.send("s", 1, { priority: 1 })).details).toMatchObject({ path: "options.priority" });
    expect(errorOf(() => core.send("s", 1, { group_id: "g" })).details).toMatchObject({ path: "options.group_id" });
  });

  it("a delayed message is invisible until its delay passed; the queue's delay_ms is the default", () => {
    const { core, advance, recv, clock } = setup();
    core.create("d", { delay_ms: 300 });
    core.send("d", "late");
    core.send("d", "later", { delay_ms: 600 });
    core.send("d", "now", { delay_ms: 0 });
    expect(core.stats("d")).toMatchObject({ delayed: 2, visible: 1 });
    expect(bodies(recv("d", { max: 10 }))).toEqual(["now"]);
    expect(core.nextDueAt()).toBe(clock.t + 300);
    advance(300);
    expect(bodies(recv("d", { max: 10 }))).toEqual(["late"]);
    advance(300);
    expect(bodies(recv("d", { max: 10 }))).toEqual(["later"]);
  });
});

describe("consumers", () => {
  it("competing subscriptions share the messages within their prefetch", () => {
    const { core } = setup();
    core.create("q");
    const s1 = core.subscribe("q", { prefetch: 1 }, "c1").subscription_id;
    const s2 = core.subscribe("q", { prefetch: 1 }, "c2").subscription_id;
    for (let i = 0; i < 4; i++) core.send("q", i);
    let rd = core.takeReady();
    expect(rd.deliveries.map((d) => [d.subscription_id, d.message.body])).toEqual([
      [s1, 0],
      [s2, 1],
    ]);
    core.ack("q", rd.deliveries[1]!.message.receipt);
    rd = core.takeReady();
    expect(rd.deliveries.map((d) => [d.subscription_id, d.message.body])).toEqual([[s2, 2]]);
    expect(core.stats("q")).toMatchObject({ visible: 1, in_flight: 2 });
  });

  it("a long poll is woken by a send", () => {
    const { core } = setup();
    core.create("q");
    const r = core.receive("q", { wait_ms: 5000, max: 3 }, "c1");
    expect(r.waiter).toBeDefined();
    core.takeReady();
    core.send("q", "hello");
    const rd = core.takeReady();
    expect(rd.completions).toHaveLength(1);
    expect(rd.completions[0]).toMatchObject({ kind: "receive", waiter: r.waiter });
    expect(bodies((rd.completions[0] as { messages: ReceivedMessage[] }).messages)).toEqual(["hello"]);
  });

  it("a long poll times out with [] at its deadline, and the core is then idle", () => {
    const { core, advance, clock } = setup();
    core.create("q");
    const r = core.receive("q", { wait_ms: 2000 });
    expect(core.nextDueAt()).toBe(clock.t + 2000);
    advance(1999);
    expect(core.takeReady().completions).toEqual([]);
    advance(1);
    expect(core.takeReady().completions).toEqual([{ kind: "receive", waiter: r.waiter, messages: [] }]);
    expect(core.nextDueAt()).toBeUndefined();
  });

  it("waiting receives are served before subscriptions, in arrival order", () => {
    const { core } = setup();
    core.create("q");
    core.subscribe("q", {}, "s");
    const w1 = core.receive("q", { wait_ms: 100 }, "a").waiter;
    const w2 = core.receive("q", { wait_ms: 100 }, "b").waiter;
    core.takeReady();
    core.send("q", 1);
    core.send("q", 2);
    core.send("q", 3);
    const rd = core.takeReady();
    expect(rd.completions.map((c) => c.kind === "receive" && [c.waiter, bodies(c.messages)])).toEqual([
      [w1, [1]],
      [w2, [2]],
    ]);
    expect(rd.deliveries.map((d) => d.message.body)).toEqual([3]);
  });

  it("closeOwner returns its leases, ends its subscriptions and its waits", () => {
    const { core, recv } = setup();
    core.create("q");
    core.send("q", "a");
    core.send("q", "b");
    const [m] = recv("q", {}, "conn1");
    core.subscribe("q", { prefetch: 5 }, "conn1");
    core.receive("q", { wait_ms: 1000 }, "conn1");
    const rd0 = core.takeReady();
    expect(rd0.deliveries.map((d) => d.message.body)).toEqual(["b"]);
    expect(core.stats("q")).toMatchObject({ in_flight: 2, visible: 0 });
    core.closeOwner("conn1");
    expect(core.stats("q")).toMatchObject({ in_flight: 0, visible: 2 });
    const rd = core.takeReady();
    expect(rd.ended).toHaveLength(1);
    expect(rd.completions).toEqual([expect.objectContaining({ kind: "receive", messages: [] })]);
    expect(code(() => core.ack("q", m!.receipt))).toBe(ErrorCode.NOT_FOUND);
    // Another consumer now gets both, with their receive counts kept.
    expect(recv("q", { max: 5 }, "conn2").map((x) => [x.body, x.receive_count])).toEqual([
      ["a", 2],
      ["b", 2],
    ]);
  });

  it("unsubscribe returns the subscription's leases; another owner cannot end it", () => {
    const { core, recv } = setup();
    core.create("q");
    const { subscription_id } = core.subscribe("q", {}, "c1");
    core.send("q", 1);
    expect(core.stats("q").in_flight).toBe(1);
    expect(code(() => core.unsubscribe(subscription_id, "c2"))).toBe(ErrorCode.NOT_FOUND);
    core.unsubscribe(subscription_id, "c1");
    expect(recv("q")).toHaveLength(1);
    expect(code(() => core.unsubscribe(subscription_id))).toBe(ErrorCode.NOT_FOUND);
  });
});

describe("delivery modes", () => {
  it("at_most_once: removed when delivered; its ack is a no-op, nack is 1001", () => {
    const { core, advance, recv } = setup();
    core.create("q", { visibility_timeout_ms: 10 });
    core.send("q", "once", { delivery: "at_most_once" });
    const [m] = recv("q");
    expect(m!.body).toBe("once");
    expect(core.stats("q")).toMatchObject({ visible: 0, in_flight: 0, acked: 1 });
    advance(10);
    expect(recv("q")).toEqual([]);
    expect(core.ack("q", m!.receipt)).toEqual({ ok: true });
    expect(code(() => core.nack("q", m!.receipt))).toBe(ErrorCode.NOT_FOUND);
  });

  it("broadcast: one copy to every current subscriber, none to pull receivers", () => {
    const { core, recv } = setup();
    core.create("q");
    const subs = ["a", "b", "c"].map((o) => core.subscribe("q", { prefetch: 1 }, o).subscription_id);
    core.takeReady();
    const { message_id } = core.send("q", "news", { delivery: "broadcast" });
    const rd = core.takeReady();
    expect(rd.deliveries.map((d) => d.subscription_id).sort()).toEqual([...subs].sort());
    expect(new Set(rd.deliveries.map((d) => d.message.message_id))).toEqual(new Set([message_id]));
    expect(recv("q")).toEqual([]);
    // Each copy is acked on its own.
    for (const d of rd.deliveries) core.ack("q", d.message.receipt);
    expect(core.stats("q")).toMatchObject({ sent: 1, acked: 3, visible: 0, in_flight: 0 });
  });

  it("broadcast copies wait for a subscriber's prefetch and end with the subscription", () => {
    const { core } = setup();
    core.create("q");
    const s = core.subscribe("q", { prefetch: 1 }, "a").subscription_id;
    core.send("q", 1, { delivery: "broadcast" });
    core.send("q", 2, { delivery: "broadcast" });
    expect(core.takeReady().deliveries.map((d) => d.message.body)).toEqual([1]);
    expect(core.stats("q")).toMatchObject({ visible: 1, in_flight: 1 });
    core.unsubscribe(s);
    expect(core.stats("q")).toMatchObject({ visible: 0, in_flight: 0 });
  });

  it("broadcast with no subscriber is accepted and reaches nobody", () => {
    const { core } = setup();
    core.create("q");
    expect(core.send("q", 1, { delivery: "broadcast" }).duplicate).toBe(false);
    expect(core.stats("q")).toMatchObject({ sent: 1, visible: 0 });
  });

  it("quorum: answered once N subscribers acked their copy", () => {
    const { core } = setup();
    core.create("q");
    for (const o of ["a", "b", "c"]) core.subscribe("q", {}, o);
    core.takeReady();
    const out = core.send("q", "vote", { delivery: "quorum", quorum: 2 });
    expect(out.ticket).toBeDefined();
    const rd = core.takeReady();
    expect(rd.deliveries).toHaveLength(3);
    core.ack("q", rd.deliveries[0]!.message.receipt);
    expect(core.takeReady().completions).toEqual([]);
    core.ack("q", rd.deliveries[2]!.message.receipt);
    expect(core.takeReady().completions).toEqual([{ kind: "quorum", ticket: out.ticket, result: { message_id: out.message_id, duplicate: false } }]);
    // The remaining copy is still delivered and acked normally.
    expect(core.ack("q", rd.deliveries[1]!.message.receipt)).toEqual({ ok: true });
  });

  it("quorum with too few subscribers is 1005 and enqueues nothing", () => {
    const { core } = setup();
    core.create("q");
    core.subscribe("q", {}, "a");
    const e = errorOf(() => core.send("q", 1, { delivery: "quorum", quorum: 2 }));
    expect(e.code).toBe(ErrorCode.UNREACHABLE);
    expect(e.details).toMatchObject({ reason: "too_few_subscribers", subscribers: 1, quorum: 2 });
    expect(core.stats("q").sent).toBe(0);
  });

  it("quorum timeout is 1004; unacked copies are withdrawn and the dedup id forgotten", () => {
    const { core, advance } = setup();
    core.create("q");
    core.subscribe("q", {}, "a");
    core.subscribe("q", {}, "b");
    const out = core.send("q", 1, { delivery: "quorum", quorum: 2, quorum_timeout_ms: 500, dedup_id: "x" });
    const rd = core.takeReady();
    core.ack("q", rd.deliveries[0]!.message.receipt);
    advance(500);
    const c = core.takeReady().completions;
    expect(c).toHaveLength(1);
    expect(c[0]!.kind).toBe("quorum-failed");
    expect((c[0] as { error: MpregError }).error.code).toBe(ErrorCode.TIMEOUT);
    expect(core.stats("q")).toMatchObject({ visible: 0, in_flight: 0 });
    expect(code(() => core.ack("q", rd.deliveries[1]!.message.receipt))).toBe(ErrorCode.NOT_FOUND);
    expect(core.send("q", 1, { delivery: "quorum", quorum: 2, dedup_id: "x" }).message_id).not.toBe(out.message_id);
  });

  it("quorum fails at once (1005) when subscribers leave so it can no longer be reached", () => {
    const { core } = setup();
    core.create("q");
    core.subscribe("q", {}, "a");
    core.subscribe("q", {}, "b");
    core.send("q", 1, { delivery: "quorum", quorum: 2 });
    core.takeReady();
    core.closeOwner("b");
    const c = core.takeReady().completions;
    expect(c[0]).toMatchObject({ kind: "quorum-failed" });
    expect((c[0] as { error: MpregError }).error.details).toMatchObject({ reason: "quorum_lost" });
  });
});

describe("limits and bad input", () => {
  it("max_messages: a send past it is 1007", () => {
    const { core } = setup();
    core.create("q", { max_messages: 2 });
    core.send("q", 1);
    core.send("q", 2);
    const e = errorOf(() => core.send("q", 3));
    expect(e.code).toBe(ErrorCode.OVERLOADED);
    expect(e.details).toMatchObject({ reason: "queue_full" });
  });

  it("a body over the limit is 1002 naming body; an unencodable body too", () => {
    const { core } = setup({ limits: { maxBodyBytes: 100 } });
    core.create("q");
    expect(errorOf(() => core.send("q", "x".repeat(200))).details).toMatchObject({ path: "body" });
    expect(errorOf(() => core.send("q", undefined)).details).toMatchObject({ path: "body" });
    expect(errorOf(() => core.send("q", () => 1)).details).toMatchObject({ path: "body" });
  });

  it("unknown queue is 1001; bad names and options are 1002 naming the field", () => {
    const { core } = setup();
    expect(code(() => core.send("nope", 1))).toBe(ErrorCode.NOT_FOUND);
    expect(errorOf(() => core.create("bad/name")).details).toMatchObject({ path: "name" });
    expect(errorOf(() => core.create("q", { visibility_timeout_ms: -1 })).details).toMatchObject({ path: "options.visibility_timeout_ms" });
    expect(errorOf(() => core.create("q", { typo: 1 })).details).toMatchObject({ path: "options.typo" });
    expect(errorOf(() => core.create("q", { type: "lifo" })).details).toMatchObject({ path: "options.type" });
    expect(errorOf(() => core.create("q", { durable: true })).details).toMatchObject({ path: "options.durable" });
    core.create("q");
    expect(errorOf(() => core.receive("q", { max: 101 })).details).toMatchObject({ path: "options.max" });
    expect(errorOf(() => core.receive("q", { wait_ms: 20_001 })).details).toMatchObject({ path: "options.wait_ms" });
    expect(errorOf(() => core.send("q", 1, { delivery: "sometimes" })).details).toMatchObject({ path: "options.delivery" });
    expect(errorOf(() => core.send("q", 1, { quorum: 2 })).details).toMatchObject({ path: "options.quorum" });
    expect(errorOf(() => core.send("q", 1, { delivery: "broadcast", delay_ms: 5 })).details).toMatchObject({ path: "options.delay_ms" });
    expect(errorOf(() => core.extend("q", "r", "soon")).details).toMatchObject({ path: "ms" });
    expect(errorOf(() => core.ack("q", "")).details).toMatchObject({ path: "receipt" });
    expect(errorOf(() => core.ack("q", "never-issued")).details).toMatchObject({ reason: "stale_receipt" });
  });

  it("create is idempotent with the same options; other options are 1002 naming the first difference", () => {
    const { core } = setup();
    expect(core.create("q", { visibility_timeout_ms: 5000 })).toEqual({ name: "q", created: true });
    expect(core.create("q", { visibility_timeout_ms: 5000 })).toEqual({ name: "q", created: false });
    // Defaults count as given: the same options spelled out are the same.
    expect(core.create("q", { visibility_timeout_ms: 5000, max_receives: 3, type: "standard", dead_letter_queue: "q.dlq" }).created).toBe(false);
    expect(errorOf(() => core.create("q")).details).toMatchObject({ path: "options.visibility_timeout_ms" });
    expect(errorOf(() => core.create("q", { visibility_timeout_ms: 5000, type: "fifo" })).details).toMatchObject({ path: "options.type" });
  });

  it("a receipt of one queue is stale on another", () => {
    const { core, recv } = setup();
    core.create("a");
    core.create("b");
    core.send("a", 1);
    const [m] = recv("a");
    expect(code(() => core.ack("b", m!.receipt))).toBe(ErrorCode.NOT_FOUND);
  });

  it("too many waiting receives, subscriptions and queues are 1007", () => {
    const { core } = setup({ limits: { maxWaiters: 1, maxSubscriptions: 1, maxQueues: 2 } });
    core.create("q");
    core.receive("q", { wait_ms: 100 });
    expect(code(() => core.receive("q", { wait_ms: 100 }))).toBe(ErrorCode.OVERLOADED);
    core.subscribe("q");
    expect(code(() => core.subscribe("q"))).toBe(ErrorCode.OVERLOADED);
    core.create("r");
    expect(code(() => core.create("s"))).toBe(ErrorCode.OVERLOADED);
  });

  it("the dedup table is bounded: a new dedup id past it is 1007 with retry_after_ms", () => {
    const { core } = setup({ limits: { maxDedupEntries: 2 } });
    core.create("q", { dedup_window_ms: 1000 });
    core.send("q", 1, { dedup_id: "a" });
    core.send("q", 1, { dedup_id: "b" });
    const e = errorOf(() => core.send("q", 1, { dedup_id: "c" }));
    expect(e.code).toBe(ErrorCode.OVERLOADED);
    expect(e.details["retry_after_ms"]).toBe(1000);
    expect(core.send("q", 1, { dedup_id: "a" }).duplicate).toBe(true);
  });
});

describe("admin operations", () => {
  it("purge removes every message (in-flight receipts go stale), keeps the counters", () => {
    const { core, recv } = setup();
    core.create("q");
    core.send("q", 1);
    core.send("q", 2, { delay_ms: 1000 });
    core.send("q", 3);
    const [m] = recv("q");
    expect(core.purge("q")).toEqual({ purged: 3, visible: 0, in_flight: 0, delayed: 0, dead_lettered: 0, sent: 3, acked: 0 });
    expect(code(() => core.ack("q", m!.receipt))).toBe(ErrorCode.NOT_FOUND);
    core.send("q", 4);
    expect(bodies(recv("q", { max: 5 }))).toEqual([4]);
  });

  it("delete removes the queue; its waiting receives fail with 1001; list shows the rest", () => {
    const { core } = setup();
    core.create("a");
    core.create("b", { type: "fifo" });
    core.send("a", 1);
    core.receive("b", { wait_ms: 1000 });
    core.takeReady();
    expect(core.delete("b")).toMatchObject({ deleted: true, visible: 0 });
    const rd: QueueReady = core.takeReady();
    expect(rd.queuesChanged).toBe(true);
    expect(rd.completions[0]).toMatchObject({ kind: "receive-failed" });
    expect(core.list()).toEqual([{ name: "a", type: "standard", durable: false, visible: 1, in_flight: 0, delayed: 0, dead_lettered: 0, sent: 1, acked: 0 }]);
    expect(code(() => core.stats("b"))).toBe(ErrorCode.NOT_FOUND);
  });
});

describe("the driver's timer", () => {
  it("nextDueAt names the earliest live event only; superseded ones are skipped", () => {
    const { core, recv, clock } = setup();
    core.create("q", { visibility_timeout_ms: 1000 });
    expect(core.nextDueAt()).toBeUndefined();
    core.send("q", 1);
    const [m] = recv("q");
    expect(core.nextDueAt()).toBe(clock.t + 1000);
    core.extend("q", m!.receipt, 5000);
    expect(core.nextDueAt()).toBe(clock.t + 5000);
    core.ack("q", m!.receipt);
    expect(core.nextDueAt()).toBeUndefined();
  });

  it("operations run due events first, so a late timer never changes an answer", () => {
    const { core, recv, clock } = setup();
    core.create("q", { visibility_timeout_ms: 100 });
    core.send("q", 1);
    recv("q");
    clock.t += 100; // no advance() call: the next operation must see the expiry
    expect(recv("q")[0]!.receive_count).toBe(2);
  });
});
