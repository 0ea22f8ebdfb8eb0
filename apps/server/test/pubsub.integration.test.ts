/**
 * Pub/sub across real node processes (PROTOCOL section 4): a full mesh of three and a line of
 * three. Every matching subscription on every node gets each message exactly once and in
 * publish order; a node without matching subscriptions receives no forwarded publish; ending a
 * subscription (unsubscribe, connection close) stops delivery; backlog gives retained messages
 * first, then live ones, without duplicates; a subscriber that stops reading does not stall the
 * publisher nor grow the node's memory.
 */
import { MpregClient, type Subscription } from "@mpreg/client";
import { startNode, waitFor, type NodeProcess } from "@mpreg/testkit";
import WebSocket from "ws";
import { afterEach, describe, expect, it } from "vitest";
import { CLI } from "./node-harness.js";

const FAST = ["--gossip-probe-interval-ms", "100", "--gossip-probe-timeout-ms", "50"];
const nodes: NodeProcess[] = [];
const clients: MpregClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
  await Promise.all(nodes.splice(0).map((n) => n.kill()));
});

async function start(name: string, extra: string[] = []): Promise<NodeProcess> {
  const n = await startNode({ bin: CLI, args: ["start", "--port", "0", "--name", name, "--cluster-id", "ps", "--monitoring-port", "0", ...FAST, ...extra], waitForMonitoring: true });
  nodes.push(n);
  return n;
}

async function connect(n: NodeProcess): Promise<MpregClient> {
  const c = await MpregClient.connect(n.url, { reconnect: false });
  clients.push(c);
  return c;
}

async function metric(n: NodeProcess, name: string): Promise<number> {
  const text = await (await fetch(`${n.monitoringUrl}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : NaN;
}

/** Collects the payloads a subscription receives. */
function collect(sub: Subscription): unknown[] {
  const got: unknown[] = [];
  void (async () => {
    for await (const m of sub) got.push(m.payload);
  })();
  return got;
}

/** Waits until every node advertises `patterns` from each subscribing node (interest in the catalog). */
async function interestSpread(c: MpregClient, expected: number): Promise<void> {
  await waitFor(async () => ((await c.call("catalog_query", [{ entry_type: "topics" }])) as { items: unknown[] }).items.length >= expected, {
    timeoutMs: 15_000,
    description: `${expected} topic entries in the catalog`,
  });
}

describe.each([
  ["a full mesh of three", "mesh"],
  ["a line of three (A–B–C, no A–C link)", "line"],
])("pub/sub over %s", (_title, shape) => {
  it("delivers each message exactly once and in order to every matching subscription, and nothing to a node without interest", async () => {
    const limit = shape === "line" ? ["--max-peer-links", "1"] : [];
    const b = await start("B", limit);
    const [a, c] = await Promise.all([start("A", ["--peers", b.url, ...limit]), start("C", ["--peers", b.url, ...limit])]);
    const [ca, cb, cc] = [await connect(a), await connect(b), await connect(c)];
    await waitFor(async () => ((await ca.call("cluster_map")) as { nodes: unknown[] }).nodes.length === 3, { timeoutMs: 15_000, description: "A sees three nodes" });
    // Subscriptions on A (local) and C (remote; through B in the line); none matching on B.
    const subA = await ca.subscribe(["user.*.login"]);
    const subC1 = await cc.subscribe(["user.#"]);
    const subC2 = await cc.subscribe(["user.*.login", "system.#"]);
    const subB = await cb.subscribe(["admin.#"]);
    const got = [collect(subA), collect(subC1), collect(subC2), collect(subB)];
    await interestSpread(ca, 4);
    const N = 200;
    for (let i = 0; i < N; i++) await ca.publish(`user.${i}.login`, i);
    await ca.publish("system.startup", "boot");
    await ca.publish("other.thing", "ignored");
    const expectN = Array.from({ length: N }, (_, i) => i);
    await waitFor(() => got[0]!.length === N && got[1]!.length === N && got[2]!.length === N + 1, { timeoutMs: 15_000, description: "all delivered" });
    expect(got[0]).toEqual(expectN);
    expect(got[1]).toEqual(expectN);
    expect(got[2]).toEqual([...expectN, "boot"]);
    expect(got[3]).toEqual([]);
    // B holds a subscription that matches none of these: in the mesh it received no publish at
    // all; in the line it only relayed them to C (the fabric's relay count), never took them.
    expect(await metric(b, "mpreg_pubsub_received")).toBe(0);
    expect(await metric(c, "mpreg_pubsub_received")).toBe(N + 1);
    expect(await metric(c, "mpreg_pubsub_deduplicated")).toBe(0);
    // Unsubscribe and connection close stop delivery.
    await subC1.unsubscribe();
    await ca.publish("user.x.login", "after");
    await waitFor(() => got[0]!.length === N + 1 && got[2]!.length === N + 2, { timeoutMs: 10_000, description: "after-unsubscribe delivery" });
    expect(got[1]).toHaveLength(N);
    await cc.close();
    await waitFor(async () => ((await ca.call("catalog_query", [{ entry_type: "topics", node_id: "C" }])) as { items: unknown[] }).items.length === 0, {
      timeoutMs: 10_000,
      description: "C's interest withdrawn",
    });
    const forwardedBefore = await metric(a, "mpreg_pubsub_forwarded");
    await ca.publish("user.y.login", "after-close");
    await waitFor(() => got[0]!.length === N + 2, { timeoutMs: 10_000, description: "A's own subscription still served" });
    expect(await metric(a, "mpreg_pubsub_forwarded")).toBe(forwardedBefore);
  });
});

describe("batched pub/sub over a line of three (A–B–C, no A–C link)", () => {
  it("coalesced publishes and batched notifications: each message exactly once and in order; a bad batch publishes nothing", async () => {
    const limit = ["--max-peer-links", "1"];
    const b = await start("B", limit);
    const [a, c] = await Promise.all([start("A", ["--peers", b.url, ...limit]), start("C", ["--peers", b.url, ...limit])]);
    const pub = await MpregClient.connect(a.url, { reconnect: false, batchPublishes: true });
    clients.push(pub);
    const [ca, cc] = [await connect(a), await connect(c)];
    await waitFor(async () => ((await ca.call("cluster_map")) as { nodes: unknown[] }).nodes.length === 3, { timeoutMs: 15_000, description: "A sees three nodes" });
    const got = [
      collect(await ca.subscribe(["load.#"], { batch: true })),
      collect(await cc.subscribe(["load.*"], { batch: true })),
      collect(await cc.subscribe(["load.*"], { batch: false })),
    ];
    await interestSpread(ca, 2);
    const N = 1000;
    // One turn: 1000 publishes leave as 4 pubsub-publish-batch frames, each publish gets its own id.
    const ids = await Promise.all(Array.from({ length: N }, (_, i) => pub.publish(`load.${i % 7}`, i)));
    expect(new Set(ids).size).toBe(N);
    const expectN = Array.from({ length: N }, (_, i) => i);
    await waitFor(() => got.every((g) => g.length >= N), { timeoutMs: 20_000, description: "all delivered" });
    for (const g of got) expect(g).toEqual(expectN);
    expect(await metric(c, "mpreg_pubsub_received")).toBe(N);
    expect(await metric(c, "mpreg_pubsub_deduplicated")).toBe(0);
    // All or nothing: one bad topic refuses the three publishes of its turn.
    const refused = await Promise.allSettled([pub.publish("load.a", "x"), pub.publish("load.*", "y"), pub.publish("load.b", "z")]);
    for (const r of refused) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 1002 });
    await pub.publish("load.c", "last");
    await waitFor(() => got.every((g) => g.length === N + 1), { timeoutMs: 10_000, description: "the last message" });
    for (const g of got) expect(g.at(-1)).toBe("last");
  });
});

describe("pub/sub on one node", () => {
  it("gives retained messages first, then live ones, without duplicates", async () => {
    const a = await start("A");
    const ca = await connect(a);
    for (let i = 0; i < 5; i++) await ca.publish("news.sport", i);
    const sub = await ca.subscribe(["news.#"], { backlog: { seconds: 60, max: 3 } });
    const got = collect(sub);
    await ca.publish("news.sport", 5);
    await waitFor(() => got.length === 4, { timeoutMs: 5000, description: "three retained + one live" });
    expect(got).toEqual([2, 3, 4, 5]);
  });

  it("answers malformed topics and patterns with 1002 and keeps the connection", async () => {
    const a = await start("A");
    const ca = await connect(a);
    await expect(ca.publish("a..b", 1)).rejects.toMatchObject({ code: 1002 });
    await expect(ca.publish("a.*", 1)).rejects.toMatchObject({ code: 1002 });
    await expect(ca.subscribe(["a*"])).rejects.toMatchObject({ code: 1002 });
    expect(await ca.call("echo", ["still here"])).toBe("still here");
  });

  it("drops the oldest notifications of a subscriber that stops reading, without stalling others", async () => {
    const a = await start("A");
    const publisher = await connect(a);
    const fast = await connect(a);
    const fastSub = await fast.subscribe(["load.#"], { maxBuffered: 200_000 });
    let fastCount = 0;
    void (async () => {
      for await (const _ of fastSub) fastCount++;
    })();
    // A raw subscriber that never reads its socket.
    const ws = new WebSocket(a.url);
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    ws.send(JSON.stringify({ role: "pubsub-subscribe", u: "s1", subscription: { patterns: ["load.#"] } }));
    await new Promise((r) => ws.once("message", r));
    (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const N = 100_000;
    const payload = "x".repeat(100);
    const batch = 500;
    for (let i = 0; i < N; i += batch) {
      await Promise.all(Array.from({ length: batch }, (_, j) => publisher.publish("load.test", { i: i + j, payload })));
    }
    await waitFor(() => fastCount === N, { timeoutMs: 60_000, description: "the reading subscriber gets every message" });
    expect(await metric(a, "mpreg_pubsub_dropped")).toBeGreaterThan(0);
    // 100k notifications of ~150 B held for the stalled reader would be ~15 MB of queue plus
    // their objects; the bound keeps the queue to its limit and the node well under 400 MB.
    expect(await metric(a, "mpreg_process_resident_memory_bytes")).toBeLessThan(400 * 1024 * 1024);
    expect(await metric(a, "mpreg_pubsub_queued_bytes")).toBeLessThanOrEqual(64 * 1024 * 1024);
    ws.terminate();
  }, 120_000);
});
