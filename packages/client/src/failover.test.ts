import { isMpregError, type MpregError, type PubsubNotificationMessage, type RpcRequest } from "@mpreg/envelope";
import { waitFor } from "@mpreg/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { FakeCluster } from "../test/fake-cluster.js";
import { MpregClient, type ClientOptions, type FailoverEvent } from "./index.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function cluster(n: number): Promise<FakeCluster> {
  const c = await FakeCluster.start(n);
  cleanups.push(() => c.stop());
  return c;
}

/** Fast failover for tests: retries within tens of milliseconds. */
const FAST: ClientOptions = { reconnect: { initialDelayMs: 10, maxDelayMs: 50 }, transport: { pingIntervalMs: 0 } };

async function connect(urls: string | string[], opts: ClientOptions = {}): Promise<MpregClient> {
  const c = await MpregClient.connect(urls, { ...FAST, ...opts });
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

/** Reads the next message of an iterator, failing after a deadline rather than hanging. */
async function nextOf<T>(it: AsyncIterator<T>, ms = 5000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([
    it.next(),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("no message in time")), ms);
    }),
  ]).finally(() => clearTimeout(timer));
  if (r.done) throw new Error("iterator ended");
  return r.value;
}

describe("cluster-aware client", () => {
  it("kill the node in use: a plain in-flight call fails with 1005, an idempotent one runs once on another node, the subscription is made again there", async () => {
    const fc = await cluster(3);
    const c = await connect(fc.nodes.map((n) => n.url), { discovery: false });
    const failovers: FailoverEvent[] = [];
    c.onFailover((e) => failovers.push(e));
    const sub = await c.subscribe("orders.#");
    const it = sub[Symbol.asyncIterator]();
    const first = fc.nodeByUrl(c.url)!;
    expect(fc.subscriptionsOn(first)).toEqual([sub.id]);

    const idem = c.call("hold", [], { idempotent: true });
    const plain = c.call("hold");
    await waitFor(() => fc.heldCount === 2);
    const plainFailed = rejection(plain);
    await fc.kill(first);

    const e = await plainFailed;
    expect(e.code).toBe(1005);
    expect(e.details).toMatchObject({ reason: "connection lost", url: first.url });

    // The idempotent call reached the new node exactly once.
    await waitFor(() => fc.heldCount === 1, { timeoutMs: 5000 });
    const second = fc.nodeByUrl(c.url)!;
    expect(second).not.toBe(first);
    fc.release();
    expect(await idem).toBe(second.name);
    const holds = (n: typeof first) => n.frames.filter((f) => f.role === "rpc" && (f as RpcRequest).cmds[0]!.fun === "hold").length;
    expect(holds(first)).toBe(2);
    expect(holds(second)).toBe(1);
    expect(fc.nodes.filter((n) => n !== first && n !== second).map(holds)).toEqual([0]);

    expect(failovers).toEqual([{ from: first.url, to: second.url }]);
    expect(c.state).toBe("open");

    // Made again on the new node, with the same id; messages flow.
    await waitFor(() => fc.subscriptionsOn(second).includes(sub.id));
    fc.publish("orders.eu.1", { n: 1 });
    const m = await nextOf(it);
    expect(m).toMatchObject({ topic: "orders.eu.1", payload: { n: 1 } });
    expect(await c.call("whoami")).toBe(second.name);
  });

  it("discovers further node URLs through cluster_map and fails over to one of them", async () => {
    const fc = await cluster(3);
    const [n1, n2, n3] = fc.nodes;
    const c = await connect(n1!.url);
    await waitFor(() => c.knownUrls.length === 3);
    expect(c.knownUrls[0]).toBe(n1!.url);
    expect(c.knownUrls.slice(1).sort()).toEqual([n2!.url, n3!.url].sort());
    expect(c.nodeId).toBe("n1");
    await fc.kill(n1!);
    await waitFor(() => c.state === "open" && c.url !== n1!.url);
    expect([n2!.url, n3!.url]).toContain(c.url);
    expect(await c.call("whoami", [], { idempotent: true })).not.toBe("n1");
    // Refreshed on reconnect: the dead node left the map (the seed stays known).
    await waitFor(() => c.knownUrls.length === 2 + 1 && c.nodeId !== undefined && c.nodeId !== "n1");
  });

  it("a node that answers 'shutting down' is drained: the refused idempotent call moves on, in-flight replies still arrive, then the old connection closes", async () => {
    const fc = await cluster(2);
    const [a, b] = fc.nodes;
    const c = await connect([a!.url, b!.url], { discovery: false });
    expect(c.url).toBe(a!.url);
    const inflight = c.call("hold");
    await waitFor(() => fc.heldCount === 1);
    a!.draining = true;
    // Refused with 1005 shutdown: the client moves to b and sends it there.
    expect(await c.call("whoami", [], { idempotent: true })).toBe(b!.name);
    expect(c.url).toBe(b!.url);
    expect(a!.conns.size).toBe(1); // still open: a reply is due on it
    fc.release();
    expect(await inflight).toBe(a!.name);
    await waitFor(() => a!.conns.size === 0);
    expect(await c.call("whoami")).toBe(b!.name);
  });

  it("a plain call refused by a node that shuts down rejects with the node's 1005 shutdown error", async () => {
    const fc = await cluster(2);
    const c = await connect(fc.nodes.map((n) => n.url), { discovery: false });
    fc.nodes[0]!.draining = true;
    const e = await rejection(c.call("echo", [1]));
    expect(e.code).toBe(1005);
    expect(e.details).toMatchObject({ reason: "shutdown", node_id: "n1" });
    await waitFor(() => c.url === fc.nodes[1]!.url);
    expect(await c.call("echo", [2])).toBe(2);
  });

  it("with a single URL, a stopping node is not drained: an idempotent call it refused waits for the reconnect", async () => {
    const fc = await cluster(1);
    const node = fc.nodes[0]!;
    const c = await connect(node.url, { discovery: false });
    let reconnects = 0;
    c.onReconnect(() => reconnects++);
    node.draining = true;
    const p = c.call("whoami", [], { idempotent: true });
    await waitFor(() => node.frames.length === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(reconnects).toBe(0); // no dialing of the stopping node again
    expect(c.pendingCount).toBe(1);
    node.draining = false; // "restarted": closes its connections and answers again
    for (const conn of node.conns) conn.close(1001, "restart");
    expect(await p).toBe(node.name);
    expect(reconnects).toBe(1);
  });

  it("makes a queue consumer and a KV watch again on the new node; the watch resumes at the last revision seen + 1, nothing lost or repeated", async () => {
    const fc = await cluster(2);
    const c = await connect(fc.nodes.map((n) => n.url), { discovery: false });
    const first = fc.nodeByUrl(c.url)!;
    const q = c.queue("jobs");
    await q.create();
    const consumer = await q.subscribe({ prefetch: 1 });
    const qi = consumer[Symbol.asyncIterator]();
    await q.send("one");
    const m1 = await nextOf(qi);
    expect(m1.body).toBe("one");
    await m1.ack();

    const watch = await c.kv.watch("k/");
    const wi = watch[Symbol.asyncIterator]();
    const r1 = fc.kvPut("k/1", 1);
    expect(await nextOf(wi)).toMatchObject({ type: "put", key: "k/1", mod_revision: r1 });
    expect(watch.nextRevision).toBe(r1 + 1);

    await fc.kill(first);
    const r2 = fc.kvPut("k/2", 2); // written while the client has no watch anywhere
    await waitFor(() => c.state === "open" && c.url !== first.url);
    const second = fc.nodeByUrl(c.url)!;
    await waitFor(() => fc.watchesOn(second) === 1);
    const rewatch = second.frames.find((f) => f.role === "rpc" && (f as RpcRequest).cmds[0]!.fun === "mpreg.kv.watch") as RpcRequest;
    expect(rewatch.cmds[0]!.args).toEqual(["k/", { start_revision: r1 + 1 }]);
    const r3 = fc.kvPut("k/3", 3);
    expect(await nextOf(wi)).toMatchObject({ key: "k/2", mod_revision: r2 });
    expect(await nextOf(wi)).toMatchObject({ key: "k/3", mod_revision: r3 });

    await q.send("two");
    const m2 = await nextOf(qi);
    expect(m2.body).toBe("two");
    await m2.ack();
    expect(await q.stats()).toMatchObject({ visible: 0, in_flight: 0, acked: 2 });
    expect(consumer.id).not.toBeUndefined();
  });

  it("backs off with full jitter across every URL, then gives up after maxAttempts: pending idempotent calls and iterators end with 1005", async () => {
    const fc = await cluster(3);
    const c = await connect(fc.nodes.map((n) => n.url), {
      discovery: false,
      reconnect: { initialDelayMs: 8, maxDelayMs: 30, maxAttempts: 5 },
      transport: { pingIntervalMs: 0, random: () => 0.999 },
    });
    const sub = await c.subscribe("x");
    const it = sub[Symbol.asyncIterator]();
    const tries: Array<[number, number, string]> = [];
    c.onReconnecting((attempt, delay, url) => tries.push([attempt, delay, url]));
    const downs: boolean[] = [];
    c.onDisconnect((_code, _reason, will) => downs.push(will));
    const first = c.url!;
    await Promise.all(fc.nodes.map((n) => fc.kill(n)));
    const idem = c.call("echo", [1], { idempotent: true });
    expect((await rejection(idem)).code).toBe(1005);
    expect(c.state).toBe("closed");
    expect(tries.map(([a]) => a)).toEqual([1, 2, 3, 4, 5]);
    // random 0.999: each wait is (almost) its cap min(30, 8 * 2^n).
    expect(tries.map(([, d]) => d)).toEqual([8, 16, 30, 30, 30]);
    // The two other nodes first (the lost one counts as tried), then never the URL just tried.
    expect(new Set([first, tries[0]![2], tries[1]![2]]).size).toBe(3);
    for (let i = 1; i < tries.length; i++) expect(tries[i]![2]).not.toBe(tries[i - 1]![2]);
    expect(downs).toEqual([true, false]);
    await expect(it.next()).rejects.toMatchObject({ code: 1005 });
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });

  it("the first connect skips seeds that do not answer; none answering is 1005 listing them", async () => {
    const fc = await cluster(2);
    const dead = fc.nodes[0]!;
    await fc.kill(dead);
    const c = await connect([dead.url, fc.nodes[1]!.url], { discovery: false });
    expect(c.url).toBe(fc.nodes[1]!.url);
    await fc.kill(fc.nodes[1]!);
    const e = await rejection(MpregClient.connect([dead.url, fc.nodes[1]!.url]));
    expect(e.code).toBe(1005);
    expect(e.details).toMatchObject({ urls: [dead.url, fc.nodes[1]!.url] });
  });

  it("refuses bad URLs and options with 1002 naming them", async () => {
    expect((await rejection(MpregClient.connect("http://x"))).details).toMatchObject({ path: "urls.0" });
    expect((await rejection(MpregClient.connect([]))).details).toMatchObject({ path: "urls" });
    expect((await rejection(MpregClient.connect("ws://x", { maxUrls: 0 }))).details).toMatchObject({ path: "maxUrls" });
    expect((await rejection(MpregClient.connect("ws://x", { discovery: { intervalMs: -1 } }))).details).toMatchObject({ path: "discovery.intervalMs" });
    expect((await rejection(MpregClient.connect("ws://x", { reconnect: { initialDelayMs: -1 } }))).details).toMatchObject({ path: "reconnect.initialDelayMs" });
  });

  it("with reconnect off, the first loss closes the client even with other URLs", async () => {
    const fc = await cluster(2);
    const c = await connect(fc.nodes.map((n) => n.url), { discovery: false, reconnect: false });
    const downs: boolean[] = [];
    c.onDisconnect((_code, _reason, will) => downs.push(will));
    await fc.kill(fc.nodeByUrl(c.url)!);
    await waitFor(() => c.state === "closed");
    expect(downs).toEqual([false]);
    expect((await rejection(c.call("echo", [1], { idempotent: true }))).code).toBe(1005);
  });

  it("a subscription callback keeps receiving across a failover, and duplicates by message_id are dropped", async () => {
    const fc = await cluster(2);
    const c = await connect(fc.nodes.map((n) => n.url), { discovery: false });
    const got: PubsubNotificationMessage[] = [];
    const sub = await c.subscribe(["a.*"], { callback: (m) => got.push(m) });
    fc.publish("a.1", 1, "m-1");
    fc.publish("a.1", 1, "m-1");
    await waitFor(() => got.length === 1);
    await fc.kill(fc.nodeByUrl(c.url)!);
    await waitFor(() => c.state === "open" && fc.subscriptionsOn(fc.nodeByUrl(c.url)!).includes(sub.id));
    fc.publish("a.2", 2, "m-2");
    fc.publish("a.3", 3, "m-1"); // seen before: dropped
    await waitFor(() => got.length === 2);
    await c.call("echo", [0]); // anything behind it has arrived
    expect(got.map((m) => m.payload)).toEqual([1, 2]);
    expect(() => sub[Symbol.asyncIterator]()).toThrow(/callback/);
  });
});
