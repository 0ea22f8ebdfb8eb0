/**
 * The fabric's service port with a small test service, over in-memory links: delivery to a
 * named node over several hops and back, to the owner of a catalog entry, broadcast, loop,
 * hop-budget and forged-path drops, the mutual handshake (a replayed hello never becomes a
 * link), and `down` events when a relay dies.
 */
import { decodeFrame, encodeFrame, type UnifiedMessage } from "@mpreg/envelope";
import { createMemoryConnectionPair, type Connection } from "@mpreg/transport";
import { waitFor } from "@mpreg/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { Fabric, type DialedConnection, type FabricOptions } from "./fabric.js";
import type { MembershipEvent } from "./service-port.js";

const FAST = { probeIntervalMs: 100, probeTimeoutMs: 50 };

/** In-memory "network": URLs `mem://<id>` lead to fabrics; every link can be cut. */
class MemNet {
  readonly fabrics = new Map<string, Fabric>();
  readonly conns = new Map<string, Connection[]>();
  /** Every frame a dialer sent, by dialer id (to replay them). */
  readonly sent = new Map<string, Uint8Array[]>();

  node(id: string, opts: Partial<FabricOptions> = {}): Fabric {
    const f = new Fabric({
      nodeId: id,
      clusterId: "c",
      urls: () => [`mem://${id}`],
      gossip: FAST,
      dial: (url) => this.dial(id, url),
      ...opts,
    });
    this.fabrics.set(id, f);
    f.start();
    return f;
  }

  /** A raw connection into `id`'s fabric, as the node's listener would hand it over. */
  connectTo(id: string): Connection {
    const target = this.fabrics.get(id);
    if (!target) throw new Error(`no node ${id}`);
    const [a, b] = createMemoryConnectionPair();
    this.track(id, b);
    const off = b.onMessage((data, isBinary) => {
      off();
      const d = decodeFrame(data, isBinary ? "msgpack" : "json");
      if (d.ok && d.frame.role === "peer-hello") target.adopt(b, d.frame);
      else b.close(4400, "not a peer");
    });
    return a;
  }

  private async dial(from: string, url: string): Promise<DialedConnection> {
    const a = this.connectTo(url.slice("mem://".length));
    this.track(from, a);
    const log = this.sent.get(from) ?? [];
    this.sent.set(from, log);
    const send = a.send.bind(a);
    const onClose = a.onClose.bind(a);
    return Object.assign(a, {
      send: (data: Uint8Array | string) => {
        if (data instanceof Uint8Array) log.push(data);
        send(data);
      },
      onOpen: () => () => undefined,
      onClose: (h: (code: number, reason: string, willReconnect: boolean) => void) => onClose((code, reason) => h(code, reason, false)),
    }) as DialedConnection;
  }

  private track(id: string, c: Connection): void {
    const list = this.conns.get(id) ?? [];
    list.push(c);
    this.conns.set(id, list);
  }

  /** Cuts every link of `id` without a goodbye, then silences it (a crash). */
  async crash(id: string): Promise<void> {
    for (const c of this.conns.get(id) ?? []) c.close(1011, "crash");
    await this.fabrics.get(id)?.stop();
  }

  async close(): Promise<void> {
    for (const f of this.fabrics.values()) await f.stop();
  }
}

/** The test service: answers `test.ping` with `test.pong` to the sender, records what it got. */
function echoService(f: Fabric): UnifiedMessage[] {
  const got: UnifiedMessage[] = [];
  f.handle("test", (msg) => {
    got.push(msg);
    if (msg.topic === "test.ping") {
      f.send(msg.headers.source_node, f.message({ topic: "test.pong", payload: msg.payload, correlation_id: msg.headers.correlation_id }));
    }
  });
  return got;
}

/**
 * A line A–B–C–D with one dialed link per node: B first, then A and C dialing B, then D dialing
 * C (a node with a link already dials no one else, so no other edge forms).
 */
async function line(net: MemNet, opts: Partial<FabricOptions> = {}): Promise<Fabric[]> {
  const b = net.node("B", { maxLinks: 1, ...opts });
  const a = net.node("A", { maxLinks: 1, seeds: ["mem://B"], ...opts });
  const c = net.node("C", { maxLinks: 1, seeds: ["mem://B"], ...opts });
  await waitFor(() => b.linkCount === 2, { timeoutMs: 5000, description: "A and C link to B" });
  const d = net.node("D", { maxLinks: 1, seeds: ["mem://C"], ...opts });
  const fabrics = [a, b, c, d];
  await waitFor(() => fabrics.every((f) => f.members().length === 3), { timeoutMs: 15_000, description: "every node reaches the three others" });
  return fabrics;
}

let net: MemNet;
afterEach(async () => {
  await net?.close();
});

describe("the service port", () => {
  it("delivers to a named node over three hops and the answer comes back", async () => {
    net = new MemNet();
    const [a, , , d] = await line(net);
    const atA = echoService(a!);
    const atD = echoService(d!);
    const ping = a!.message({ topic: "test.ping", payload: { n: 1 }, trace_id: "trace-1" });
    // canSend says what send decides, without sending: a link (B), a route (D), this node.
    expect([a!.canSend("B"), a!.canSend("D"), a!.canSend("A"), a!.canSend("Z")]).toEqual([true, true, true, false]);
    expect(a!.send("D", ping)).toBe(true);
    await waitFor(() => atA.length === 1, { timeoutMs: 5000, description: "pong back at A" });
    expect(atD[0]!.payload).toEqual({ n: 1 });
    expect(atD[0]!.headers.routing_path).toEqual(["A", "B", "C"]);
    expect(atD[0]!.headers.trace_id).toBe("trace-1");
    expect(atD[0]!.headers.hops_remaining).toBe(ping.headers.hops_remaining - 2);
    expect(atA[0]!.topic).toBe("test.pong");
    expect(atA[0]!.headers.correlation_id).toBe(ping.headers.correlation_id);
    expect(net.fabrics.get("B")!.stats.relayed).toBeGreaterThan(0);
  });

  it("sends to the owner of a catalog entry, and broadcasts to members with interest", async () => {
    net = new MemNet();
    const [a, b, c, d] = await line(net);
    const got = [a!, b!, c!, d!].map(echoService);
    d!.announce({ kind: "queue", name: "jobs" });
    await waitFor(() => a!.owner("queue", "jobs") === "D", { timeoutMs: 5000, description: "A learns that D owns jobs" });
    expect(a!.owner("queue", "nothing")).toBeUndefined();
    expect(a!.send(a!.owner("queue", "jobs")!, a!.message({ topic: "test.job", payload: 7 }))).toBe(true);
    await waitFor(() => got[3]!.length === 1, { timeoutMs: 5000, description: "D gets the job" });
    const n = a!.broadcast(a!.message({ topic: "test.note", payload: "hi" }), (id) => id !== "C");
    expect(n).toBe(2);
    await waitFor(() => got[1]!.length === 1 && got[3]!.length === 2, { timeoutMs: 5000, description: "B and D get the note" });
    expect(got[2]!).toHaveLength(0);
  });

  it("drops a message that loops, one whose hop budget runs out, and one with a forged path", async () => {
    net = new MemNet();
    const [a, b, c, d] = await line(net);
    const atD = echoService(d!);
    // routing_path already holds B: B drops it as a loop instead of passing it on.
    const loop = a!.message({ topic: "test.x", payload: 1 });
    expect(a!.send("B", { ...loop, headers: { ...loop.headers, routing_path: ["B", "A"], target_node: "D" } })).toBe(true);
    await waitFor(() => b!.stats.droppedLoop === 1, { timeoutMs: 5000, description: "B drops the loop" });
    // A next hop already on the path is never used: no route, rather than a loop.
    expect(a!.send("D", { ...loop, headers: { ...loop.headers, routing_path: ["B", "A"] } })).toBe(false);
    // One hop left: B forwards with 0, C cannot forward any more.
    const short = a!.message({ topic: "test.y", payload: 2 });
    expect(a!.send("D", { ...short, headers: { ...short.headers, hops_remaining: 1 } })).toBe(true);
    await waitFor(() => c!.stats.droppedHops === 1, { timeoutMs: 5000, description: "C drops the spent budget" });
    // A link speaks for its own node only: a path that does not end with A is refused by B.
    const forged = a!.message({ topic: "test.z", payload: 3 });
    expect(a!.send("B", { ...forged, headers: { ...forged.headers, source_node: "X", routing_path: ["X"], target_node: "D" } })).toBe(true);
    await waitFor(() => b!.stats.droppedForged === 1, { timeoutMs: 5000, description: "B drops the forged path" });
    expect(atD).toHaveLength(0);
  });

  it("answers a node it has no route to yet along the way that node's message came", async () => {
    net = new MemNet();
    const [a, b, c, d] = await line(net);
    const atD = echoService(d!);
    // Z is no member: no overlay knows a route to it, as for a node whose link-state has not
    // reached D yet. Its message comes through A (the path ends with A, so B admits it).
    const ping = a!.message({ topic: "test.ping", payload: 9 });
    expect(d!.canSend("Z")).toBe(false);
    expect(a!.send("B", { ...ping, headers: { ...ping.headers, source_node: "Z", routing_path: ["Z", "A"], target_node: "D" } })).toBe(true);
    await waitFor(() => atD.length === 1, { timeoutMs: 5000, description: "D gets Z's ping" });
    // The way Z's message came is a way back.
    expect(d!.canSend("Z")).toBe(true);
    // D's pong goes back C → B → A; A, which got nothing from Z, has no way on and drops it.
    await waitFor(() => a!.stats.droppedNoRoute === 1, { timeoutMs: 5000, description: "the pong back at A" });
    expect(d!.stats.droppedNoRoute).toBe(0);
    expect(c!.stats.relayed).toBeGreaterThan(0);
    expect(b!.stats.relayed).toBeGreaterThan(0);
  });

  it("reports `down` for the nodes behind a relay that crashed, at once", async () => {
    net = new MemNet();
    // Default probe timing: suspicion alone lasts at least 4 s, so nothing below is the failure detector.
    // maxLinks 0: nodes keep only their seed links, so A does not dial C or D once B is gone.
    const [a] = await line(net, { maxLinks: 0, gossip: { probeIntervalMs: 1000, probeTimeoutMs: 500 } });
    const events: MembershipEvent[] = [];
    a!.onMembership((e) => events.push(e));
    // Reachability is re-checked a few ms after each change: let A's view catch up first.
    await waitFor(() => ["B", "C", "D"].every((id) => !a!.unreachable().has(id)) && a!.reachableAsReported.size === 3, {
      timeoutMs: 5000,
      description: "A sees B, C and D reachable",
    });
    const t0 = Date.now();
    await net.crash("B");
    // A's only link was to B: C and D became unreachable with it, before any failure detector
    // could declare anything (suspicion alone lasts seconds).
    const downs = () => [...new Set(events.filter((e) => e.type === "down").map((e) => e.nodeId))].sort().join();
    await waitFor(() => downs() === "B,C,D", { timeoutMs: 2000, description: "B, C and D down" }).catch((e: Error) => {
      throw new Error(`${e.message}; events: ${JSON.stringify(events)}; links of A: ${a!.linkCount}`);
    });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(a!.linkCount).toBe(0);
    expect(a!.unreachable().has("D")).toBe(true);
    expect(a!.canSend("B") || a!.canSend("D")).toBe(false);
  });

  it("refuses a second handler for one prefix; the longest prefix wins", async () => {
    net = new MemNet();
    const a = net.node("A");
    const b = net.node("B", { seeds: ["mem://A"] });
    const seen: string[] = [];
    b.handle("svc", (m) => seen.push(`svc:${m.topic}`));
    b.handle("svc.special", (m) => seen.push(`special:${m.topic}`));
    expect(() => b.handle("svc", () => undefined)).toThrow(/already has a handler/);
    await waitFor(() => a.members().includes("B"), { timeoutMs: 5000, description: "A links to B" });
    a.send("B", a.message({ topic: "svc.special.one", payload: null }));
    a.send("B", a.message({ topic: "svc.other", payload: null }));
    a.send("B", a.message({ topic: "svcx", payload: null }));
    await waitFor(() => seen.length === 2 && b.stats.unhandled === 1, { timeoutMs: 5000, description: "two handled, one unhandled" });
    expect(seen.sort()).toEqual(["special:svc.special.one", "svc:svc.other"]);
  });
});

describe("the peer handshake", () => {
  it("never makes a link of a replayed hello: the replayer cannot sign the fresh welcome nonce", async () => {
    net = new MemNet();
    const a = net.node("A", { secret: "s3cret" });
    const b = net.node("B", { secret: "s3cret", seeds: ["mem://A"] });
    await waitFor(() => a.members().includes("B"), { timeoutMs: 5000, description: "A and B link" });
    const hello = net.sent.get("B")!.find((f) => {
      const d = decodeFrame(f, "msgpack");
      return d.ok && d.frame.role === "peer-hello";
    })!;
    expect(hello).toBeDefined();
    // An attacker who recorded B's hello replays it and then speaks as B.
    const attacker = net.connectTo("A");
    let closed: number | undefined;
    attacker.onClose((code) => (closed = code));
    attacker.send(hello);
    const ping = b.message({ topic: "test.ping", payload: "forged" });
    attacker.send(encodeFrame({ role: "fabric-message", payload: ping }, "msgpack"));
    await waitFor(() => closed !== undefined, { timeoutMs: 5000, description: "A closes the replayed link" });
    expect(closed).toBe(4401);
    expect(a.stats.handshakesRefused).toBe(1);
    expect(a.linkCount).toBe(1);
  });

  it("refuses a peer with the wrong secret and one from another cluster", async () => {
    net = new MemNet();
    const a = net.node("A", { secret: "right" });
    net.node("B", { secret: "wrong", seeds: ["mem://A"] });
    net.node("C", { secret: "right", clusterId: "other", seeds: ["mem://A"] });
    await waitFor(() => a.stats.handshakesRefused === 2, { timeoutMs: 5000, description: "A refuses both" });
    expect(a.linkCount).toBe(0);
  });

  it("closes a link that never confirms", async () => {
    net = new MemNet();
    const a = net.node("A", { handshakeTimeoutMs: 100 });
    const conn = net.connectTo("A");
    let closed: number | undefined;
    conn.onClose((code) => (closed = code));
    conn.send(encodeFrame({ role: "peer-hello", node_id: "Z", cluster_id: "c", region: "", urls: [], protocol_version: 2, nonce: "n" }, "msgpack"));
    await waitFor(() => closed !== undefined, { timeoutMs: 5000, description: "A gives up on Z" });
    expect(closed).toBe(4401);
    expect(a.linkCount).toBe(0);
  });
});
