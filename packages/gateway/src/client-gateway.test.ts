import { decodeFrame, encodeFrame, type Frame, type PeerHello } from "@mpreg/envelope";
import { Fabric } from "@mpreg/fabric";
import { PubsubService } from "@mpreg/pubsub";
import { FunctionRegistry, RpcService } from "@mpreg/rpc";
import { createMemoryConnectionPair, type Connection, type UpgradeInfo } from "@mpreg/transport";
import { afterEach, describe, expect, it } from "vitest";
import { ClientGateway, type ClientSession, type GatewayMetrics } from "./index.js";

const info = (over: Partial<UpgradeInfo> = {}): UpgradeInfo => ({
  path: "/",
  query: new URLSearchParams(),
  headers: {},
  remoteAddress: "memory",
  authenticated: true,
  ...over,
});

/** A client's end of a connection into the gateway: frames it sent, frames it received. */
class TestClient {
  readonly received: Frame[] = [];
  closed: number | undefined;
  constructor(readonly conn: Connection) {
    conn.onMessage((data, isBinary) => {
      const d = decodeFrame(data, isBinary ? "msgpack" : "json");
      if (!d.ok) throw new Error(`client got an undecodable frame: ${d.error.message}`);
      this.received.push(d.frame);
    });
    conn.onClose((code) => {
      this.closed = code;
    });
  }
  send(frame: object, encoding: "msgpack" | "json" = "msgpack"): void {
    this.conn.send(encodeFrame(frame, encoding));
  }
  async reply(u: string): Promise<Frame & Record<string, unknown>> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const f = this.received.find((r) => (r as { u?: string }).u === u);
      if (f) return f as Frame & Record<string, unknown>;
      if (Date.now() > deadline) throw new Error(`no reply to ${u}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  }
}

function recordingMetrics(): GatewayMetrics & { errors: number[]; observed: [string, number][] } {
  return {
    connectionsOpened: 0,
    framesIn: 0,
    requests: 0,
    errors: [],
    observed: [],
    countError(code) {
      this.errors.push(code);
    },
    observeRequest(fun, _ms, code) {
      this.observed.push([fun, code]);
    },
  };
}

const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

function setup(opts: { maxInflight?: number; maxQueuedPerSubscription?: number; pushHighWaterBytes?: number } = {}) {
  const fabric = new Fabric({ nodeId: "n1", clusterId: "c", urls: () => [] });
  const registry = new FunctionRegistry<ClientSession>();
  const rpc = new RpcService<ClientSession>({ port: fabric, registry, localLoad: () => 0, defaultTimeoutMs: 5000 });
  const pubsub = new PubsubService({ port: fabric, ...(opts.maxQueuedPerSubscription !== undefined ? { exchange: { maxQueuedPerSubscription: opts.maxQueuedPerSubscription } } : {}) });
  closers.push(() => {
    rpc.close();
    pubsub.close();
  });
  const adopted: { conn: Connection; hello: PeerHello }[] = [];
  const closedOwners: string[] = [];
  const metrics = recordingMetrics();
  const gateway = new ClientGateway({
    nodeId: "n1",
    executor: rpc.executor,
    isAdminFunction: (fun) => registry.isAdmin(fun),
    pubsub,
    maxInflightPerConnection: opts.maxInflight ?? 16,
    isAdminConnection: (i) => i.headers["x-admin"] === "1",
    adoptPeer: (conn, hello) => adopted.push({ conn, hello }),
    onClose: (id) => closedOwners.push(id),
    metrics,
    ...(opts.pushHighWaterBytes !== undefined ? { pushHighWaterBytes: opts.pushHighWaterBytes } : {}),
  });
  registry.register("echo", ({ args }) => args[0]);
  registry.register("whoami", ({ ctx }) => ({ admin: ctx?.admin ?? null }));
  registry.register("purge", () => "purged", { admin: true });
  const connect = (i: UpgradeInfo = info()) => {
    const [server, client] = createMemoryConnectionPair();
    gateway.accept(server, i);
    return new TestClient(client);
  };
  return { gateway, registry, connect, adopted, closedOwners, metrics, pubsub };
}

const rpc = (u: string, fun: string, args: unknown[] = []) => ({ role: "rpc", u, cmds: [{ name: "c", fun, args, kwargs: {}, locs: [] }] });

describe("ClientGateway", () => {
  it("runs an rpc request and replies in the request's encoding", async () => {
    const { connect, metrics } = setup();
    const c = connect();
    c.send(rpc("u1", "echo", ["hi"]));
    expect(await c.reply("u1")).toMatchObject({ role: "rpc-response", r: { c: "hi" }, error: null });
    c.send(rpc("u2", "whoami"), "json");
    expect(await c.reply("u2")).toMatchObject({ role: "rpc-response", r: { c: { admin: false } } });
    expect(metrics.requests).toBe(2);
    expect(metrics.observed).toEqual([["echo", 0], ["whoami", 0]]);
  });

  it("answers a malformed frame with 1002 and keeps the connection", async () => {
    const { connect, metrics } = setup();
    const c = connect();
    c.send({ role: "rpc", u: "bad", cmds: "not a list" });
    expect(await c.reply("bad")).toMatchObject({ role: "rpc-response", error: { code: 1002 } });
    c.send({ role: "rpc-response", u: "odd", r: {}, error: null });
    expect(await c.reply("odd")).toMatchObject({ error: { code: 1002, message: expect.stringMatching(/not a request/) } });
    c.send(rpc("ok", "echo", [1]));
    expect(await c.reply("ok")).toMatchObject({ r: { c: 1 } });
    expect(c.closed).toBeUndefined();
    expect(metrics.errors).toEqual([1002, 1002]);
  });

  it("refuses an administrative function without the admin scope (1006) and runs it with it", async () => {
    const { connect } = setup();
    const plain = connect();
    plain.send(rpc("p", "purge"));
    expect(await plain.reply("p")).toMatchObject({ error: { code: 1006, details: { fun: "purge" } } });
    const admin = connect(info({ headers: { "x-admin": "1" } }));
    admin.send(rpc("a", "purge"));
    expect(await admin.reply("a")).toMatchObject({ r: { c: "purged" } });
  });

  it("bounds the requests in flight per connection (1007) and frees the slot when one ends", async () => {
    const { connect, registry } = setup({ maxInflight: 1 });
    let release!: () => void;
    registry.register("wait", () => new Promise<string>((r) => (release = () => r("done"))));
    const c = connect();
    c.send(rpc("w", "wait"));
    c.send(rpc("x", "echo", [2]));
    expect(await c.reply("x")).toMatchObject({ error: { code: 1007 } });
    release();
    expect(await c.reply("w")).toMatchObject({ r: { c: "done" } });
    c.send(rpc("y", "echo", [3]));
    expect(await c.reply("y")).toMatchObject({ r: { c: 3 } });
  });

  it("lets a connection without a client token speak only the peer handshake", async () => {
    const { connect, adopted, gateway } = setup();
    const stranger = connect(info({ authenticated: false }));
    stranger.send(rpc("s", "echo", [1]));
    const deadline = Date.now() + 5000;
    while (stranger.closed === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    expect(stranger.closed).toBe(4401);
    expect(stranger.received).toEqual([]);

    const peer = connect(info({ authenticated: false }));
    expect(gateway.connectionCount).toBe(1);
    const hello = { role: "peer-hello", node_id: "n2", cluster_id: "c", region: "r", urls: [], protocol_version: 1, nonce: "x".repeat(22) };
    peer.send(hello);
    while (adopted.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    expect(adopted).toHaveLength(1);
    expect(adopted[0]!.hello).toMatchObject({ role: "peer-hello", node_id: "n2" });
    // Adopted: no longer a client, and the gateway reads none of its frames.
    expect(gateway.connectionCount).toBe(0);
    peer.send(rpc("after", "echo", [1]));
    await new Promise((r) => setTimeout(r, 20));
    expect(peer.received).toEqual([]);
  });

  it("drains: new requests get 1005, the ones in flight are aborted after the grace period", async () => {
    const { connect, registry, gateway } = setup();
    registry.register("forever", ({ signal }) => new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))));
    const c = connect();
    c.send(rpc("f", "forever"));
    while (gateway.inflight() === 0) await new Promise((r) => setTimeout(r, 2));
    const drained = gateway.drain(50);
    c.send(rpc("late", "echo", [1]));
    expect(await c.reply("late")).toMatchObject({ error: { code: 1005, details: { reason: "shutdown", node_id: "n1" } } });
    await drained;
    expect(await c.reply("f")).toMatchObject({ error: { code: 1005 } });
    expect(gateway.inflight()).toBe(0);
  });

  it("delivers pub/sub on the connection and ends what the connection owned when it closes", async () => {
    const { connect, closedOwners, gateway } = setup();
    const c = connect();
    c.send({ role: "pubsub-subscribe", u: "s1", subscription: { subscription_id: "sub", patterns: ["a.*"] } });
    expect(await c.reply("s1")).toMatchObject({ role: "pubsub-ack", success: true, subscription_id: "sub" });
    c.send({ role: "pubsub-publish", u: "p1", message: { topic: "a.b", payload: 7 } });
    expect(await c.reply("p1")).toMatchObject({ role: "pubsub-ack", success: true });
    const deadline = Date.now() + 5000;
    const note = () => c.received.find((f) => f.role === "pubsub-notification");
    while (note() === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    expect(note()).toMatchObject({ subscription_id: "sub", message: { topic: "a.b", payload: 7 } });
    c.conn.close();
    while (closedOwners.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    expect(closedOwners).toHaveLength(1);
    expect(gateway.connectionCount).toBe(0);
  });

  it("pushes a turn's notifications of a batch: true subscription as one pubsub-notification-batch, in order", async () => {
    const { connect } = setup();
    const sub = connect();
    const pub = connect();
    sub.send({ role: "pubsub-subscribe", u: "s1", subscription: { subscription_id: "sub", patterns: ["a.*"], batch: true } });
    expect(await sub.reply("s1")).toMatchObject({ role: "pubsub-ack", success: true, subscription_id: "sub" });
    for (let i = 0; i < 10; i++) pub.send({ role: "pubsub-publish", u: `p${i}`, message: { topic: "a.b", payload: i } });
    await pub.reply("p9");
    const payloads = () => sub.received.flatMap((f) => (f.role === "pubsub-notification-batch" ? f.messages : f.role === "pubsub-notification" ? [f.message] : [])).map((m) => m.payload);
    const deadline = Date.now() + 5000;
    while (payloads().length < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    expect(payloads()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // The ten publishes arrived in one turn: one frame carries them all.
    expect(sub.received.filter((f) => f.role === "pubsub-notification-batch")).toHaveLength(1);
    expect(sub.received.some((f) => f.role === "pubsub-notification")).toBe(false);
  });

  it("answers a pubsub-publish-batch with one ack of message_ids; a bad message refuses the whole batch (1002 naming it)", async () => {
    const { connect, metrics } = setup();
    const sub = connect();
    const pub = connect();
    sub.send({ role: "pubsub-subscribe", u: "s1", subscription: { subscription_id: "sub", patterns: ["a.*"], batch: true } });
    await sub.reply("s1");
    pub.send({ role: "pubsub-publish-batch", u: "b1", messages: [{ topic: "a.x", payload: 1 }, { topic: "a.y", payload: 2, message_id: "mine" }, { topic: "a.z", payload: 3 }] });
    const ack = await pub.reply("b1");
    expect(ack).toMatchObject({ role: "pubsub-ack", success: true });
    const ids = ack.message_ids as string[];
    expect(ids).toHaveLength(3);
    expect(ids[1]).toBe("mine");
    pub.send({ role: "pubsub-publish-batch", u: "b2", messages: [{ topic: "a.ok", payload: 4 }, { topic: "a.*", payload: 5 }] });
    expect(await pub.reply("b2")).toMatchObject({ success: false, error: { code: 1002, details: { path: "messages[1].topic", index: 1 } } });
    expect(metrics.errors).toContain(1002);
    // The same message_id again is accepted (idempotent) but not delivered twice.
    pub.send({ role: "pubsub-publish-batch", u: "b3", messages: [{ topic: "a.y", payload: 2, message_id: "mine" }, { topic: "a.w", payload: 6 }] });
    expect(await pub.reply("b3")).toMatchObject({ success: true, message_ids: ["mine", expect.any(String)] });
    const got = () => sub.received.flatMap((f) => (f.role === "pubsub-notification-batch" ? f.messages : f.role === "pubsub-notification" ? [f.message] : []));
    const deadline = Date.now() + 5000;
    while (got().length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    expect(got().map((m) => m.payload)).toEqual([1, 2, 3, 6]);
    expect(got().map((m) => m.message_id).slice(0, 3)).toEqual(ids);
  });

  it("batched notifications: frames hold at most 256 messages; a blocked connection still drops its oldest, counted", async () => {
    const { connect } = setup();
    const sub = connect();
    const pub = connect();
    sub.send({ role: "pubsub-subscribe", u: "s1", subscription: { subscription_id: "sub", patterns: ["a.*"], batch: true } });
    await sub.reply("s1");
    const batch = (u: string, from: number, n: number) => ({ role: "pubsub-publish-batch", u, messages: Array.from({ length: n }, (_, i) => ({ topic: "a.b", payload: from + i })) });
    pub.send(batch("b1", 0, 256));
    pub.send(batch("b2", 256, 100));
    await pub.reply("b2");
    const frames = () => sub.received.filter((f) => f.role === "pubsub-notification-batch" || f.role === "pubsub-notification");
    const count = () => frames().reduce((n, f) => n + (f.role === "pubsub-notification-batch" ? f.messages.length : 1), 0);
    const deadline = Date.now() + 5000;
    while (count() < 356 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    expect(frames().map((f) => (f.role === "pubsub-notification-batch" ? f.messages.length : 1))).toEqual([256, 100]);
    const payloads = frames().flatMap((f) => (f.role === "pubsub-notification-batch" ? f.messages : [])).map((m) => m.payload);
    expect(payloads).toEqual(Array.from({ length: 356 }, (_, i) => i));

    // A connection that never drains (high-water mark 0): the queue of 5 keeps the newest 5.
    const blocked = setup({ maxQueuedPerSubscription: 5, pushHighWaterBytes: 0 });
    const bs = blocked.connect();
    const bp = blocked.connect();
    bs.send({ role: "pubsub-subscribe", u: "s1", subscription: { subscription_id: "sub", patterns: ["a.*"], batch: true } });
    await bs.reply("s1");
    bp.send(batch("b1", 0, 20));
    await bp.reply("b1");
    await new Promise((r) => setImmediate(r));
    expect(blocked.pubsub.exchange.subscription("sub")).toMatchObject({ queued: 5, dropped: 15, delivered: 0 });
    expect(blocked.pubsub.exchange.stats()).toMatchObject({ dropped: 15 });
    expect(bs.received.filter((f) => f.role !== "pubsub-ack")).toEqual([]);
  });
});
