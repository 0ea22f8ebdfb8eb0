import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_NOTIFICATION_BATCH, MAX_NOTIFICATION_BATCH_BYTES, TopicExchange } from "./index.js";
import { BatchingSink, ManualClock, RecordingSink, codeOf, makeExchange } from "../test/helpers.js";

const MATRIX_TOPICS = ["user.123.login", "user.456.login", "system.startup", "system.config.updated", "user.login", "admin.123.login"];

function subscribeWithSink(ex: TopicExchange, owner: string, patterns: string[], id?: string): { sink: RecordingSink; id: string } {
  const sink = new RecordingSink();
  ex.attach(owner, sink);
  const r = ex.subscribe(owner, { patterns, ...(id !== undefined ? { subscription_id: id } : {}) });
  return { sink, id: r.subscription_id };
}

describe("matching", () => {
  it("the matrix: user.*.login and system.# each receive exactly the right topics", () => {
    const { ex } = makeExchange();
    const user = subscribeWithSink(ex, "c1", ["user.*.login"]);
    const system = subscribeWithSink(ex, "c2", ["system.#"]);
    for (const t of MATRIX_TOPICS) ex.publish({ topic: t, payload: { t } });
    expect(user.sink.topics(user.id)).toEqual(["user.123.login", "user.456.login"]);
    expect(system.sink.topics(system.id)).toEqual(["system.startup", "system.config.updated"]);
  });

  it("# alone receives every topic; a.# receives a", () => {
    const { ex } = makeExchange();
    const all = subscribeWithSink(ex, "c1", ["#"]);
    const a = subscribeWithSink(ex, "c2", ["a.#"]);
    for (const t of [...MATRIX_TOPICS, "a", "a.b.c", "b.a"]) ex.publish({ topic: t, payload: null });
    expect(all.sink.topics(all.id)).toEqual([...MATRIX_TOPICS, "a", "a.b.c", "b.a"]);
    expect(a.sink.topics(a.id)).toEqual(["a", "a.b.c"]);
  });

  it("a subscription with several matching patterns gets one notification", () => {
    const { ex } = makeExchange();
    const s = subscribeWithSink(ex, "c1", ["a.*", "a.#", "#", "a.b"]);
    const r = ex.publish({ topic: "a.b", payload: 1 });
    expect(r.delivered).toBe(1);
    expect(s.sink.frames).toHaveLength(1);
  });

  it("three subscriptions on one pattern: three notifications with their own ids", () => {
    const { ex } = makeExchange();
    const sink = new RecordingSink();
    ex.attach("c1", sink);
    const ids = [0, 1, 2].map(() => ex.subscribe("c1", { patterns: ["x.*"] }).subscription_id);
    expect(ex.publish({ topic: "x.y", payload: 1 }).delivered).toBe(3);
    expect(sink.frames.map((f) => f.subscription_id).sort()).toEqual([...ids].sort());
    expect(ex.stats().delivered).toBe(3);
  });
});

describe("publish", () => {
  it("completes message_id, publisher, timestamp and headers; the notification frame is exact", () => {
    const { ex, clock } = makeExchange();
    const s = subscribeWithSink(ex, "c1", ["t"]);
    const r = ex.publish({ topic: "t", payload: { a: 1 } });
    expect(r.duplicate).toBe(false);
    expect(r.message).toEqual({ topic: "t", payload: { a: 1 }, headers: {}, message_id: r.message.message_id, publisher: "n1", timestamp: clock.t });
    expect(r.message.message_id.length).toBeGreaterThan(0);
    expect(s.sink.frames[0]).toEqual({ role: "pubsub-notification", subscription_id: s.id, message: r.message });
    const given = ex.publish({ topic: "t", payload: 2, headers: { h: "v" }, message_id: "mine" });
    expect(given.message.message_id).toBe("mine");
    expect(given.message.headers).toEqual({ h: "v" });
  });

  it("uses a ULID by default", () => {
    const ex = new TopicExchange({ nodeId: "n1", now: () => 1 });
    expect(ex.publish({ topic: "t", payload: 1 }).message.message_id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
  });

  it("a message_id seen before is a duplicate: not delivered, retained or forwarded again", () => {
    const { ex } = makeExchange();
    const s = subscribeWithSink(ex, "c1", ["t"]);
    expect(ex.publish({ topic: "t", payload: 1, message_id: "m" }).duplicate).toBe(false);
    const again = ex.publish({ topic: "t", payload: 2, message_id: "m" });
    expect(again).toMatchObject({ duplicate: true, delivered: 0, forwardTo: [] });
    expect(s.sink.frames).toHaveLength(1);
    expect(ex.stats()).toMatchObject({ published: 1, deduplicated: 1, retainedCount: 1 });
  });

  it.each([
    [{ topic: "a.*", payload: 1 }, "message.topic", /wildcard/],
    [{ topic: "a.#", payload: 1 }, "message.topic", /wildcard/],
    [{ topic: "a..b", payload: 1 }, "message.topic", /empty segment/],
    [{ topic: ".a", payload: 1 }, "message.topic", /empty segment/],
    [{ topic: "a.", payload: 1 }, "message.topic", /empty segment/],
    [{ topic: "", payload: 1 }, "message.topic", /empty/],
    [{ payload: 1 }, "message.topic", /string/],
    [{ topic: 5, payload: 1 }, "message.topic", /string/],
    [{ topic: "a" }, "message.payload", /required/],
    [{ topic: "a", payload: 1, headers: [1] }, "message.headers", /object/],
    [{ topic: "a", payload: 1, message_id: "" }, "message.message_id", /non-empty/],
    [{ topic: "a", payload: 1, message_id: "x".repeat(300) }, "message.message_id", /longer/],
  ])("refuses %j with 1002 naming %s", (msg, path, reason) => {
    const { ex } = makeExchange();
    const err = codeOf(() => ex.publish(msg as never));
    expect(err.code).toBe(1002);
    expect(err.path).toBe(path);
    expect(err.message).toMatch(reason);
  });

  it("refuses a payload or headers over the configured limit (1002), accepts at the limit", () => {
    const { ex } = makeExchange({ maxPayloadBytes: 1000, maxHeaderBytes: 100 });
    expect(codeOf(() => ex.publish({ topic: "a", payload: "x".repeat(1000) }))).toMatchObject({ code: 1002, path: "message.payload" });
    expect(codeOf(() => ex.publish({ topic: "a", payload: new Uint8Array(2000) }))).toMatchObject({ code: 1002, path: "message.payload" });
    expect(codeOf(() => ex.publish({ topic: "a", payload: new Array(5000).fill(0) }))).toMatchObject({ code: 1002 });
    expect(codeOf(() => ex.publish({ topic: "a", payload: 1, headers: { k: "v".repeat(200) } }))).toMatchObject({
      code: 1002,
      path: "message.headers",
    });
    expect(ex.publish({ topic: "a", payload: "x".repeat(900) }).duplicate).toBe(false);
    expect(ex.stats().published).toBe(1);
  });
});

describe("publishBatch", () => {
  it("accepts each message as publish would, in order; one bad message refuses the lot (1002 naming it), nothing published", () => {
    const { ex } = makeExchange();
    const s = subscribeWithSink(ex, "c1", ["t.*"]);
    const bad = codeOf(() => ex.publishBatch([{ topic: "t.a", payload: 1 }, { topic: "t.b", payload: 2 }, { topic: "t.*", payload: 3 }]));
    expect(bad).toMatchObject({ code: 1002, path: "messages[2].topic" });
    expect(s.sink.frames).toHaveLength(0);
    expect(ex.stats()).toMatchObject({ published: 0, retainedCount: 0 });
    const r = ex.publishBatch([{ topic: "t.a", payload: 1 }, { topic: "t.b", payload: 2, message_id: "x" }, { topic: "t.c", payload: 3, message_id: "x" }]);
    expect(r.map((p) => p.duplicate)).toEqual([false, false, true]);
    expect(r[1]!.message.message_id).toBe("x");
    expect(s.sink.frames.map((f) => f.message.payload)).toEqual([1, 2]);
    expect(codeOf(() => ex.publishBatch([]))).toMatchObject({ code: 1002, path: "messages" });
    expect(codeOf(() => ex.publishBatch(Array.from({ length: 257 }, () => ({ topic: "t.a", payload: 1 }))))).toMatchObject({ code: 1002, path: "messages" });
  });
});

describe("subscriptions and owners", () => {
  it("unsubscribe stops delivery; an unknown id or another owner's id is 1001", () => {
    const { ex } = makeExchange();
    const s = subscribeWithSink(ex, "c1", ["t"]);
    expect(codeOf(() => ex.unsubscribe("c1", "nope")).code).toBe(1001);
    expect(codeOf(() => ex.unsubscribe("c2", s.id)).code).toBe(1001);
    ex.unsubscribe("c1", s.id);
    ex.publish({ topic: "t", payload: 1 });
    expect(s.sink.frames).toHaveLength(0);
    expect(codeOf(() => ex.unsubscribe("c1", s.id)).code).toBe(1001);
  });

  it("closeOwner ends every subscription of that owner, and only those", () => {
    const { ex } = makeExchange();
    const a = subscribeWithSink(ex, "c1", ["t"]);
    ex.subscribe("c1", { patterns: ["u"] });
    const b = subscribeWithSink(ex, "c2", ["t"]);
    expect(ex.closeOwner("c1")).toBe(2);
    expect(ex.closeOwner("c1")).toBe(0);
    ex.publish({ topic: "t", payload: 1 });
    expect(a.sink.frames).toHaveLength(0);
    expect(b.sink.frames).toHaveLength(1);
    expect(ex.stats()).toMatchObject({ subscriptions: 1, owners: 1 });
    expect(ex.subscriptionsOf("c1")).toEqual([]);
  });

  it("a subscription_id held by another owner is refused (1002); the same owner replaces its patterns", () => {
    const { ex } = makeExchange();
    const s = subscribeWithSink(ex, "c1", ["a"], "S");
    expect(codeOf(() => ex.subscribe("c2", { subscription_id: "S", patterns: ["b"] }))).toMatchObject({
      code: 1002,
      path: "subscription.subscription_id",
    });
    expect(ex.subscribe("c1", { subscription_id: "S", patterns: ["b", "c"] })).toMatchObject({ subscription_id: "S", replaced: true });
    for (const t of ["a", "b", "c"]) ex.publish({ topic: t, payload: 1 });
    expect(s.sink.topics("S")).toEqual(["b", "c"]);
    expect(ex.subscription("S")?.patterns).toEqual(["b", "c"]);
  });

  it.each([
    [{ patterns: [] }, "subscription.patterns"],
    [{ patterns: "a" }, "subscription.patterns"],
    [{ patterns: ["a", "a*"] }, "subscription.patterns[1]"],
    [{ patterns: ["a..b"] }, "subscription.patterns[0]"],
    [{ patterns: ["x".repeat(600)] }, "subscription.patterns[0]"],
    [{ patterns: ["a"], subscription_id: "" }, "subscription.subscription_id"],
    [{ patterns: ["a"], backlog: { seconds: -1 } }, "subscription.backlog.seconds"],
    [{ patterns: ["a"], backlog: { max: 1.5 } }, "subscription.backlog.max"],
  ])("refuses subscription %j with 1002 naming %s", (req, path) => {
    const { ex } = makeExchange();
    expect(codeOf(() => ex.subscribe("c1", req as never))).toMatchObject({ code: 1002, path });
    expect(ex.stats().subscriptions).toBe(0);
  });

  it("limits: subscriptions per node, per owner, distinct patterns (1007) and nothing half-done", () => {
    const { ex } = makeExchange({ maxSubscriptions: 3, maxSubscriptionsPerOwner: 2, maxDistinctPatterns: 3 });
    ex.subscribe("c1", { patterns: ["a"] });
    ex.subscribe("c1", { patterns: ["b"] });
    expect(codeOf(() => ex.subscribe("c1", { patterns: ["a"] })).code).toBe(1007);
    expect(codeOf(() => ex.subscribe("c2", { patterns: ["c", "d"] })).code).toBe(1007);
    ex.subscribe("c2", { patterns: ["c", "a"] });
    expect(codeOf(() => ex.subscribe("c3", { patterns: ["a"] })).code).toBe(1007);
    expect(ex.stats()).toMatchObject({ subscriptions: 3, distinctPatterns: 3 });
    expect(ex.takeInterestChanges()).toEqual({ added: ["a", "b", "c"], removed: [] });
  });

  it("validates options once, naming the option", () => {
    expect(codeOf(() => new TopicExchange({ nodeId: "", now: () => 0 }))).toMatchObject({ code: 1002, path: "nodeId" });
    expect(codeOf(() => new TopicExchange({ nodeId: "n", now: () => 0, maxQueuedPerSubscription: 0 }))).toMatchObject({
      path: "maxQueuedPerSubscription",
    });
    expect(codeOf(() => new TopicExchange({ nodeId: "n", now: () => 0, retention: { maxAgeMs: -1 } }))).toMatchObject({
      path: "retention.maxAgeMs",
    });
  });
});

describe("delivery to sinks", () => {
  it("a blocked sink queues in publish order; flush writes them in order once it can write", () => {
    const { ex } = makeExchange();
    const s = subscribeWithSink(ex, "c1", ["t.#"]);
    s.sink.open = false;
    for (let i = 0; i < 10; i++) ex.publish({ topic: "t", payload: i });
    expect(s.sink.frames).toHaveLength(0);
    expect(ex.pendingOwnerIds()).toEqual(["c1"]);
    expect(ex.stats().queued).toBe(10);
    s.sink.open = true;
    expect(ex.flush("c1")).toBe(10);
    ex.publish({ topic: "t", payload: 10 });
    expect(s.sink.frames.map((f) => f.message.payload)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(ex.pendingOwnerIds()).toEqual([]);
  });

  it("a publish behind a queue does not overtake it (order per publisher)", () => {
    const { ex } = makeExchange();
    let budget = 3;
    const frames: unknown[] = [];
    ex.attach("c1", { canWrite: () => budget > 0, write: (f) => (budget--, frames.push(f.message.payload)) });
    const id = ex.subscribe("c1", { patterns: ["t"] }).subscription_id;
    for (let i = 0; i < 6; i++) ex.publish({ topic: "t", payload: i });
    expect(frames).toEqual([0, 1, 2]);
    budget = 2;
    ex.publish({ topic: "t", payload: 6 });
    expect(frames).toEqual([0, 1, 2, 3, 4]);
    budget = 100;
    ex.flushAll();
    expect(frames).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(ex.subscription(id)).toMatchObject({ delivered: 7, dropped: 0, queued: 0 });
  });

  it("without a sink notifications wait (bounded) and can be pulled with take", () => {
    const { ex } = makeExchange({ maxQueuedPerSubscription: 5 });
    const a = ex.subscribe("c1", { patterns: ["t"] }).subscription_id;
    const b = ex.subscribe("c1", { patterns: ["t.#"] }).subscription_id;
    for (let i = 0; i < 8; i++) ex.publish({ topic: "t", payload: i });
    const got = ex.take("c1", 100);
    expect(got.filter((f) => f.subscription_id === a).map((f) => f.message.payload)).toEqual([3, 4, 5, 6, 7]);
    expect(got.filter((f) => f.subscription_id === b).map((f) => f.message.payload)).toEqual([3, 4, 5, 6, 7]);
    expect(ex.stats()).toMatchObject({ dropped: 6, delivered: 10, queued: 0 });
    expect(ex.take("c1", 10)).toEqual([]);
  });

  it("take respects max and keeps each subscription's order across calls", () => {
    const { ex } = makeExchange();
    const a = ex.subscribe("c1", { patterns: ["t"] }).subscription_id;
    for (let i = 0; i < 10; i++) ex.publish({ topic: "t", payload: i });
    const first = ex.take("c1", 4);
    const rest = ex.take("c1", 100);
    expect(first).toHaveLength(4);
    expect([...first, ...rest].filter((f) => f.subscription_id === a).map((f) => f.message.payload)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("a throwing sink: the notification is dropped and counted, other owners unaffected", () => {
    const { ex } = makeExchange();
    ex.attach("bad", {
      canWrite: () => true,
      write: () => {
        throw new Error("socket gone");
      },
    });
    ex.subscribe("bad", { patterns: ["t"] });
    const good = subscribeWithSink(ex, "good", ["t"]);
    ex.publish({ topic: "t", payload: 1 });
    expect(good.sink.frames).toHaveLength(1);
    expect(ex.stats()).toMatchObject({ sinkErrors: 1, dropped: 1, delivered: 1 });
  });

  it("slow subscriber: 100k messages to a sink that never drains keep memory bounded; others get all", () => {
    const limit = 1000;
    const { ex } = makeExchange({ maxQueuedPerSubscription: limit, retention: { maxMessages: 1000 } });
    const slowSink = new RecordingSink();
    slowSink.open = false;
    ex.attach("slow", slowSink);
    const slow = ex.subscribe("slow", { patterns: ["load.#"] }).subscription_id;
    let fastCount = 0;
    let lastFast = -1;
    let inOrder = true;
    ex.attach("fast", {
      canWrite: () => true,
      write: (f) => {
        const p = f.message.payload as number;
        if (p !== lastFast + 1) inOrder = false;
        lastFast = p;
        fastCount++;
      },
    });
    ex.subscribe("fast", { patterns: ["load.*"] });
    const N = 100_000;
    let maxQueued = 0;
    for (let i = 0; i < N; i++) {
      ex.publish({ topic: "load.x", payload: i });
      if (i % 1000 === 0) maxQueued = Math.max(maxQueued, ex.subscription(slow)?.queued ?? 0);
    }
    const info = ex.subscription(slow);
    expect(maxQueued).toBeLessThanOrEqual(limit);
    expect(info?.queued).toBe(limit);
    expect(info?.dropped).toBe(N - limit);
    expect(ex.stats().dropped).toBe(N - limit);
    expect(ex.stats().retainedCount).toBeLessThanOrEqual(1000);
    expect(fastCount).toBe(N);
    expect(inOrder).toBe(true);
    // What the slow subscriber still gets is the newest `limit`, in order.
    slowSink.open = true;
    ex.flush("slow");
    expect(slowSink.frames.map((f) => f.message.payload)).toEqual(Array.from({ length: limit }, (_, k) => N - limit + k));
  });

  it("the per-subscription byte limit drops the oldest too", () => {
    const { ex } = makeExchange({ maxQueuedBytesPerSubscription: 10_000 });
    const sink = new RecordingSink();
    sink.open = false;
    ex.attach("c1", sink);
    const id = ex.subscribe("c1", { patterns: ["t"] }).subscription_id;
    for (let i = 0; i < 100; i++) ex.publish({ topic: "t", payload: "x".repeat(1000) });
    const info = ex.subscription(id)!;
    expect(info.queuedBytes).toBeLessThanOrEqual(10_000);
    expect(info.queued + info.dropped).toBe(100);
    expect(info.dropped).toBeGreaterThan(80);
  });

  it("the node-wide byte budget: slow subscriptions give up their oldest, nothing passes the budget", () => {
    const { ex } = makeExchange({ maxQueuedBytes: 50_000 });
    const sinks = ["a", "b", "c"].map((o) => {
      const sink = new RecordingSink();
      sink.open = false;
      ex.attach(o, sink);
      ex.subscribe(o, { patterns: ["t"] });
      return sink;
    });
    for (let i = 0; i < 200; i++) {
      ex.publish({ topic: "t", payload: [i, "x".repeat(500)] });
      expect(ex.stats().queuedBytes).toBeLessThanOrEqual(50_000);
    }
    const s = ex.stats();
    expect(s.queued + s.dropped).toBe(600);
    expect(s.dropped).toBeGreaterThan(400);
    for (const sink of sinks) sink.open = true;
    ex.flushAll();
    expect(ex.stats().queuedBytes).toBe(0);
    // Each subscription still got its newest messages, in order.
    for (const sink of sinks) {
      const p = sink.frames.map((f) => (f.message.payload as [number, string])[0]);
      expect(p.length).toBeGreaterThan(0);
      expect([...p].sort((x, y) => x - y)).toEqual(p);
      expect(p.at(-1)).toBe(199);
    }
  });

  it("closing an owner discards its queue and forgets its sink", () => {
    const { ex } = makeExchange();
    const s = subscribeWithSink(ex, "c1", ["t"]);
    s.sink.open = false;
    for (let i = 0; i < 5; i++) ex.publish({ topic: "t", payload: i });
    ex.closeOwner("c1");
    expect(ex.stats()).toMatchObject({ discarded: 5, queued: 0, owners: 0 });
    expect(ex.pendingOwnerIds()).toEqual([]);
    s.sink.open = true;
    expect(ex.flush("c1")).toBe(0);
  });
});

describe("batched subscriptions (subscription.batch)", () => {
  it("a turn's notifications leave in one batch frame at flushDeferred, in order; one alone as a notification", () => {
    const { ex } = makeExchange();
    const sink = new BatchingSink();
    ex.attach("c1", sink);
    const id = ex.subscribe("c1", { patterns: ["t"], batch: true }).subscription_id;
    for (let i = 0; i < 5; i++) ex.publish({ topic: "t", payload: i });
    expect(sink.frames).toHaveLength(0);
    expect(ex.hasDeferred()).toBe(true);
    expect(ex.flushDeferred()).toBe(5);
    expect(ex.hasDeferred()).toBe(false);
    expect(sink.frames).toHaveLength(1);
    expect(sink.frames[0]).toMatchObject({ role: "pubsub-notification-batch", subscription_id: id });
    expect(sink.messages().map((m) => m.payload)).toEqual([0, 1, 2, 3, 4]);
    ex.publish({ topic: "t", payload: 5 });
    ex.flushDeferred();
    expect(sink.frames[1]).toMatchObject({ role: "pubsub-notification", subscription_id: id, message: { payload: 5 } });
    expect(ex.subscription(id)).toMatchObject({ delivered: 6, dropped: 0, queued: 0 });
    expect(ex.stats()).toMatchObject({ delivered: 6, dropped: 0, queued: 0 });
  });

  it("frames hold at most MAX_NOTIFICATION_BATCH messages: a full batch leaves at once, mid-turn", () => {
    const { ex } = makeExchange({ maxQueuedPerSubscription: 10_000 });
    const sink = new BatchingSink();
    ex.attach("c1", sink);
    ex.subscribe("c1", { patterns: ["t"], batch: true });
    const n = 2 * MAX_NOTIFICATION_BATCH + 88;
    for (let i = 0; i < n; i++) ex.publish({ topic: "t", payload: i });
    expect(sink.frames.map((f) => (f.role === "pubsub-notification-batch" ? f.messages.length : 1))).toEqual([MAX_NOTIFICATION_BATCH, MAX_NOTIFICATION_BATCH]);
    ex.flushDeferred();
    expect(sink.frames.map((f) => (f.role === "pubsub-notification-batch" ? f.messages.length : 1))).toEqual([MAX_NOTIFICATION_BATCH, MAX_NOTIFICATION_BATCH, 88]);
    expect(sink.messages().map((m) => m.payload)).toEqual(Array.from({ length: n }, (_, i) => i));
  });

  it("frames stop before MAX_NOTIFICATION_BATCH_BYTES (a larger message alone still goes)", () => {
    const { ex } = makeExchange({ maxQueuedBytesPerSubscription: 64 * 1024 * 1024, maxPayloadBytes: 1024 * 1024 });
    const sink = new BatchingSink();
    ex.attach("c1", sink);
    ex.subscribe("c1", { patterns: ["t"], batch: true });
    const big = "x".repeat(10_000);
    for (let i = 0; i < 60; i++) ex.publish({ topic: "t", payload: big });
    ex.publish({ topic: "t", payload: "y".repeat(300_000) });
    ex.publish({ topic: "t", payload: 1 });
    ex.flushDeferred();
    const sizes = sink.frames.map((f) => (f.role === "pubsub-notification-batch" ? f.messages : [f.message]).reduce((t, m) => t + JSON.stringify(m.payload).length, 0));
    expect(sink.messages()).toHaveLength(62);
    for (const [i, size] of sizes.entries()) {
      const f = sink.frames[i]!;
      if (f.role === "pubsub-notification-batch" && f.messages.length > 1) expect(size).toBeLessThanOrEqual(MAX_NOTIFICATION_BATCH_BYTES);
    }
    expect(sink.frames.length).toBeGreaterThanOrEqual(4); // 60 × 10 kB need 3 frames, the 300 kB one its own
  });

  it("a blocked sink: the batched queue drops its oldest exactly as an unbatched one (counted), then flushes in batches", () => {
    const { ex } = makeExchange({ maxQueuedPerSubscription: 300 });
    const plain = new RecordingSink();
    const batched = new BatchingSink();
    plain.open = batched.open = false;
    ex.attach("p", plain);
    ex.attach("b", batched);
    const pid = ex.subscribe("p", { patterns: ["t"] }).subscription_id;
    const bid = ex.subscribe("b", { patterns: ["t"], batch: true }).subscription_id;
    for (let i = 0; i < 1000; i++) ex.publish({ topic: "t", payload: i });
    ex.flushDeferred();
    expect(batched.frames).toHaveLength(0);
    expect(ex.subscription(bid)).toMatchObject({ queued: 300, dropped: 700 });
    expect(ex.subscription(pid)).toMatchObject({ queued: 300, dropped: 700 });
    plain.open = batched.open = true;
    ex.flushAll();
    expect(batched.frames.map((f) => f.role)).toEqual(["pubsub-notification-batch", "pubsub-notification-batch"]);
    expect(batched.messages().map((m) => m.payload)).toEqual(plain.frames.map((f) => f.message.payload));
    expect(ex.subscription(bid)).toMatchObject({ delivered: 300, dropped: 700, queued: 0 });
  });

  it("property: turn by turn, a batched subscription delivers and drops exactly what an unbatched one does", () => {
    const turn = fc.record({ open: fc.boolean(), publishes: fc.nat({ max: 40 }), dup: fc.boolean() });
    fc.assert(
      fc.property(fc.array(turn, { maxLength: 30 }), fc.integer({ min: 1, max: 50 }), (turns, limit) => {
        const { ex } = makeExchange({ maxQueuedPerSubscription: limit });
        const plain = new RecordingSink();
        const batched = new BatchingSink();
        ex.attach("p", plain);
        ex.attach("b", batched);
        const pid = ex.subscribe("p", { patterns: ["t.#"] }).subscription_id;
        const bid = ex.subscribe("b", { patterns: ["t.#"], batch: true }).subscription_id;
        let seq = 0;
        for (const t of turns) {
          plain.open = batched.open = t.open;
          // A connection that drained is flushed by the node's retry before new work arrives.
          if (t.open) ex.flushAll();
          for (let i = 0; i < t.publishes; i++) {
            const n = seq++;
            ex.publish({ topic: "t.x", payload: n, message_id: `m${n}` });
            if (t.dup) ex.publish({ topic: "t.x", payload: n, message_id: `m${n}` }); // deduplicated
          }
          ex.flushDeferred(); // the end of the turn
          if (t.open) ex.flushAll(); // the node's retry once the connection drained
        }
        plain.open = batched.open = true;
        ex.flushAll();
        expect(batched.messages()).toEqual(plain.frames.map((f) => f.message));
        const p = ex.subscription(pid)!;
        const b = ex.subscription(bid)!;
        expect([b.delivered, b.dropped, b.queued]).toEqual([p.delivered, p.dropped, p.queued]);
        for (const f of batched.frames) if (f.role === "pubsub-notification-batch") expect(f.messages.length).toBeGreaterThan(1);
      }),
      { numRuns: 200 },
    );
  });

  it("a throwing writeBatch drops the whole batch (counted); a sink without writeBatch gets notifications one by one", () => {
    const { ex } = makeExchange();
    ex.attach("bad", { canWrite: () => true, write: () => {}, writeBatch: () => { throw new Error("socket gone"); } });
    const bad = ex.subscribe("bad", { patterns: ["t"], batch: true }).subscription_id;
    const old = new RecordingSink();
    ex.attach("old", old);
    ex.subscribe("old", { patterns: ["t"], batch: true });
    for (let i = 0; i < 3; i++) ex.publish({ topic: "t", payload: i });
    ex.flushDeferred();
    expect(ex.subscription(bad)).toMatchObject({ delivered: 0, dropped: 3, queued: 0 });
    expect(ex.stats()).toMatchObject({ sinkErrors: 1, dropped: 3, delivered: 3 });
    expect(old.frames.map((f) => f.message.payload)).toEqual([0, 1, 2]);
  });

  it("the backlog of a batched subscription leaves in batches at flush (after the ack); batch must be a boolean", () => {
    const { ex } = makeExchange();
    for (let i = 0; i < 4; i++) ex.publish({ topic: "t", payload: i });
    const sink = new BatchingSink();
    ex.attach("c1", sink);
    ex.subscribe("c1", { patterns: ["t"], batch: true, backlog: {} });
    expect(sink.frames).toHaveLength(0);
    ex.flush("c1");
    expect(sink.frames.map((f) => f.role)).toEqual(["pubsub-notification-batch"]);
    expect(sink.messages().map((m) => m.payload)).toEqual([0, 1, 2, 3]);
    expect(codeOf(() => ex.subscribe("c1", { patterns: ["t"], batch: "yes" as unknown as boolean }))).toMatchObject({ code: 1002, path: "subscription.batch" });
  });
});

describe("backlog", () => {
  it("retained first, then live, without duplicates; the backlog waits for flush (after the ack)", () => {
    const { ex, clock } = makeExchange();
    for (let i = 0; i < 5; i++) {
      ex.publish({ topic: `news.${i % 2 === 0 ? "eu" : "us"}`, payload: i });
      clock.advance(1000);
    }
    const sink = new RecordingSink();
    ex.attach("c1", sink);
    const r = ex.subscribe("c1", { patterns: ["news.eu"], backlog: {} });
    expect(r.backlog).toBe(3);
    expect(sink.frames).toHaveLength(0);
    ex.flush("c1");
    ex.publish({ topic: "news.eu", payload: 5 });
    expect(sink.frames.map((f) => f.message.payload)).toEqual([0, 2, 4, 5]);
    // Re-subscribing the same id with backlog again brings nothing twice.
    expect(ex.subscribe("c1", { subscription_id: r.subscription_id, patterns: ["news.eu"], backlog: {} }).backlog).toBe(0);
    ex.flush("c1");
    expect(new Set(sink.ids(r.subscription_id)).size).toBe(sink.frames.length);
  });

  it("a live publish before the flush queues behind the backlog", () => {
    const { ex } = makeExchange();
    ex.publish({ topic: "t", payload: "old" });
    const sink = new RecordingSink();
    ex.attach("c1", sink);
    ex.subscribe("c1", { patterns: ["t"], backlog: {} });
    ex.publish({ topic: "t", payload: "new" });
    ex.flush("c1");
    expect(sink.frames.map((f) => f.message.payload)).toEqual(["old", "new"]);
  });

  it("seconds and max select the youngest retained messages", () => {
    const { ex, clock } = makeExchange();
    for (let i = 0; i < 10; i++) {
      ex.publish({ topic: "t", payload: i });
      clock.advance(1000);
    }
    // now = start + 10 s; message i arrived at start + i s.
    const take = (backlog: { seconds?: number; max?: number }) => {
      const owner = `o${Math.random()}`;
      const id = ex.subscribe(owner, { patterns: ["t"], backlog }).subscription_id;
      return ex.take(owner, 100).filter((f) => f.subscription_id === id).map((f) => f.message.payload);
    };
    expect(take({ seconds: 3 })).toEqual([7, 8, 9]);
    expect(take({ max: 2 })).toEqual([8, 9]);
    expect(take({ seconds: 5, max: 3 })).toEqual([7, 8, 9]);
    expect(take({ max: 0 })).toEqual([]);
    expect(take({})).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("the backlog is capped at the subscription's queue limit", () => {
    const { ex } = makeExchange({ maxQueuedPerSubscription: 4 });
    for (let i = 0; i < 10; i++) ex.publish({ topic: "t", payload: i });
    const r = ex.subscribe("c1", { patterns: ["t"], backlog: { max: 100 } });
    expect(r.backlog).toBe(4);
    expect(ex.take("c1", 100).map((f) => f.message.payload)).toEqual([6, 7, 8, 9]);
    expect(ex.stats().dropped).toBe(0);
  });

  it("retention limits by age, count and bytes hold in the exchange", () => {
    const clock = new ManualClock();
    const ex = new TopicExchange({ nodeId: "n1", now: clock.now, retention: { maxAgeMs: 5000, maxMessages: 3, maxBytes: 100_000 } });
    for (let i = 0; i < 10; i++) ex.publish({ topic: "t", payload: i });
    expect(ex.stats().retainedCount).toBe(3);
    clock.advance(5001);
    expect(ex.stats().retainedCount).toBe(0);
    expect(ex.subscribe("c1", { patterns: ["t"], backlog: {} }).backlog).toBe(0);
    const off = new TopicExchange({ nodeId: "n1", now: clock.now, retention: { maxMessages: 0 } });
    off.publish({ topic: "t", payload: 1 });
    expect(off.stats().retainedCount).toBe(0);
  });
});

describe("messages from other nodes", () => {
  const remoteMsg = (id: string, topic = "t") => ({ topic, payload: id, headers: {}, message_id: id, publisher: "n2", timestamp: 5 });

  it("are delivered locally, retained, never forwarded, and deduplicated across both paths", () => {
    const { ex } = makeExchange();
    ex.applyCatalogChange({ type: "added", key: "topic/n3/t", entry: { kind: "topic", node_id: "n3", cluster_id: "c", subscription_id: "t", patterns: ["t"] } });
    const s = subscribeWithSink(ex, "c1", ["t"]);
    expect(ex.deliverRemote(remoteMsg("r1"))).toMatchObject({ duplicate: false, delivered: 1 });
    expect(ex.deliverRemote(remoteMsg("r1")).duplicate).toBe(true);
    expect(ex.publish({ topic: "t", payload: 1, message_id: "r1" }).duplicate).toBe(true);
    const local = ex.publish({ topic: "t", payload: 1, message_id: "l1" });
    expect(local.forwardTo).toEqual(["n3"]);
    expect(ex.deliverRemote(remoteMsg("l1")).duplicate).toBe(true);
    expect(s.sink.ids(s.id)).toEqual(["r1", "l1"]);
    expect(s.sink.frames[0]?.message).toEqual(remoteMsg("r1"));
    expect(ex.stats()).toMatchObject({ received: 1, published: 1, forwarded: 1, deduplicated: 3, retainedCount: 2 });
  });

  it.each([
    [null, "message"],
    [{ ...remoteMsg("x"), message_id: undefined }, "message.message_id"],
    [{ ...remoteMsg("x"), topic: "a.*" }, "message.topic"],
    [{ ...remoteMsg("x"), timestamp: "now" }, "message.timestamp"],
    [{ ...remoteMsg("x"), publisher: 1 }, "message.publisher"],
    [{ ...remoteMsg("x"), headers: undefined }, "message.headers"],
    [{ ...remoteMsg("x"), payload: undefined }, "message.payload"],
  ])("a malformed remote message %j is 1002 naming %s", (raw, path) => {
    const { ex } = makeExchange();
    expect(codeOf(() => ex.deliverRemote(raw))).toMatchObject({ code: 1002, path });
  });

  it("keeps only known fields of a remote message", () => {
    const { ex } = makeExchange();
    const s = subscribeWithSink(ex, "c1", ["t"]);
    ex.deliverRemote({ ...remoteMsg("z"), extra: "dropped" });
    expect(Object.keys(s.sink.frames[0]!.message).sort()).toEqual(["headers", "message_id", "payload", "publisher", "timestamp", "topic"]);
  });
});
