import { Catalog, type CatalogChange, type LocalEntryInput } from "@mpreg/catalog";
import { MpregError, createUnifiedMessage, decodeFrame, encodeFabricMessage, type PubsubNotification, type UnifiedMessage } from "@mpreg/envelope";
import type { FabricMessageHandler, OutboundMessage, ServicePort } from "@mpreg/fabric";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_DELIVERY_BATCH, PUBSUB_DELIVER_TOPIC, PubsubService } from "./index.js";
import { RecordingSink } from "../test/helpers.js";

/** A service port of one node, linked to others in process; sends travel as encoded frames. */
class FakePort implements ServicePort {
  readonly clusterId = "c";
  readonly catalog: Catalog;
  readonly sent: { to: string; msg: UnifiedMessage }[] = [];
  /** Refuses (as too large) messages whose payload is an array longer than this. */
  maxBatch = Infinity;
  private readonly handlers = new Map<string, FabricMessageHandler>();
  private readonly catalogListeners = new Set<(c: CatalogChange) => void>();
  peers = new Map<string, FakePort>();

  constructor(readonly nodeId: string) {
    this.catalog = new Catalog({ nodeId, clusterId: "c" });
  }
  handle(prefix: string, handler: FabricMessageHandler): () => void {
    this.handlers.set(prefix, handler);
    return () => this.handlers.delete(prefix);
  }
  message(out: OutboundMessage): UnifiedMessage {
    return createUnifiedMessage({
      topic: out.topic,
      message_type: out.message_type ?? "data",
      payload: out.payload,
      headers: { source_node: this.nodeId, source_cluster: this.clusterId, correlation_id: out.correlation_id, trace_id: out.trace_id },
    });
  }
  send(nodeId: string, msg: UnifiedMessage): boolean {
    if (Array.isArray(msg.payload) && msg.payload.length > this.maxBatch) throw MpregError.invalid("message_too_large");
    const peer = this.peers.get(nodeId);
    if (peer === undefined) return false;
    this.sent.push({ to: nodeId, msg });
    const decoded = decodeFrame(encodeFabricMessage(msg), "msgpack");
    if (!decoded.ok || decoded.frame.role !== "fabric-message") throw new Error("undecodable");
    const m = decoded.frame.payload;
    queueMicrotask(() => peer.handlers.get(PUBSUB_DELIVER_TOPIC)?.(m, this.nodeId));
    return true;
  }
  owner(): string | undefined {
    return undefined;
  }
  broadcast(): number {
    return 0;
  }
  members(): string[] {
    return [...this.peers.keys()];
  }
  unreachable(): ReadonlySet<string> {
    return new Set();
  }
  onMembership(): () => void {
    return () => {};
  }
  onCatalogChange(listener: (c: CatalogChange) => void): () => void {
    this.catalogListeners.add(listener);
    return () => this.catalogListeners.delete(listener);
  }
  announce(entry: LocalEntryInput): string {
    const delta = this.catalog.registerLocal(entry, Date.now());
    for (const peer of this.peers.values()) {
      const change = peer.catalog.applyDelta(delta, Date.now()).change;
      if (change) for (const l of peer.catalogListeners) l(change);
    }
    return delta.key;
  }
  withdraw(): void {}
}

function twoNodes() {
  const pa = new FakePort("a");
  const pb = new FakePort("b");
  pa.peers.set("b", pb);
  pb.peers.set("a", pa);
  const a = new PubsubService({ port: pa });
  const b = new PubsubService({ port: pb });
  const sink = new RecordingSink();
  b.attach("conn-b", sink);
  b.handle("conn-b", { role: "pubsub-subscribe", u: "s", subscription: { subscription_id: "sub", patterns: ["t.#"] } }, () => {});
  let u = 0;
  const publish = (topic: string, payload: unknown) => a.handle("conn-a", { role: "pubsub-publish", u: `p${++u}`, message: { topic, payload } }, () => {});
  const settled = () => new Promise<void>((r) => setTimeout(r, 0));
  return { pa, pb, a, b, sink, publish, settled };
}

const deliveries = (sent: { msg: UnifiedMessage }[]) => sent.filter((s) => s.msg.topic === PUBSUB_DELIVER_TOPIC);

describe("PubsubService forwarding", () => {
  it("sends one publish of a turn as the message itself, traced by its own id", async () => {
    const { pa, sink, publish, settled } = twoNodes();
    publish("t.x", 1);
    await settled();
    const sent = deliveries(pa.sent);
    expect(sent).toHaveLength(1);
    const payload = sent[0]!.msg.payload as { message_id: string };
    expect(Array.isArray(payload)).toBe(false);
    expect(sent[0]!.msg.headers.trace_id).toBe(payload.message_id);
    expect(sink.frames.map((f: PubsubNotification) => f.message.payload)).toEqual([1]);
  });

  it("batches the publishes of one turn to one node, in order, at most MAX_DELIVERY_BATCH per frame (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 2 * MAX_DELIVERY_BATCH + 3 }), { minLength: 1, maxLength: 4 }), async (bursts) => {
        const { pa, sink, publish, settled } = twoNodes();
        let n = 0;
        for (const burst of bursts) {
          for (let i = 0; i < burst; i++) publish(i % 2 === 0 ? "t.even" : "t.odd", n++);
          await settled();
        }
        expect(sink.frames.map((f) => f.message.payload)).toEqual(Array.from({ length: n }, (_, i) => i));
        const frames = deliveries(pa.sent).length;
        const expected = bursts.reduce((acc, b) => acc + Math.ceil(b / MAX_DELIVERY_BATCH), 0);
        expect(frames).toBe(expected);
      }),
      { numRuns: 15 },
    );
  });

  it("a batch refused as too large for a frame is sent one message at a time", async () => {
    const { pa, sink, publish, settled } = twoNodes();
    pa.maxBatch = 1;
    for (let i = 0; i < 5; i++) publish("t.x", i);
    await settled();
    expect(deliveries(pa.sent)).toHaveLength(5);
    expect(sink.frames.map((f) => f.message.payload)).toEqual([0, 1, 2, 3, 4]);
  });

  it("a malformed message in a batch is dropped, the others delivered", async () => {
    const { pa, sink, settled } = twoNodes();
    const good = { topic: "t.x", payload: 1, headers: {}, message_id: "m1", publisher: "a", timestamp: 1 };
    pa.send("b", createUnifiedMessage({ topic: PUBSUB_DELIVER_TOPIC, message_type: "pubsub", payload: [good, { topic: "" }, { ...good, message_id: "m2" }], headers: { source_node: "a", source_cluster: "c" } }));
    await settled();
    expect(sink.frames.map((f) => f.message.message_id)).toEqual(["m1", "m2"]);
  });
});
