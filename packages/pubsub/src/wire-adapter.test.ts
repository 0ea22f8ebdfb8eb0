import { decodeFrame, encodeFrame, validateFrame, type PubsubNotification } from "@mpreg/envelope";
import { describe, expect, it } from "vitest";
import { handlePubsubRequest, pubsubFabricMessage } from "./index.js";
import { RecordingSink, makeExchange } from "../test/helpers.js";

/** Every reply must be a valid `pubsub-ack` frame of the protocol. */
function valid<T extends object>(frame: T): T {
  const r = validateFrame(frame);
  expect(r.ok).toBe(true);
  return frame;
}

describe("wire adapter", () => {
  it("publish: ack with the message_id; the publish result says where to forward", () => {
    const { ex } = makeExchange();
    const r = handlePubsubRequest(ex, { role: "pubsub-publish", u: "u1", message: { topic: "a.b", payload: 1, message_id: "m1" } }, "c1");
    expect(valid(r.ack)).toEqual({ role: "pubsub-ack", u: "u1", success: true, message_id: "m1" });
    expect(r.publish?.forwardTo).toEqual([]);
    const auto = handlePubsubRequest(ex, { role: "pubsub-publish", u: "u2", message: { topic: "a.b", payload: 1 } }, "c1");
    expect(auto.ack.message_id).toBe(auto.publish?.message.message_id);
  });

  it("publish errors: 1002 naming the problem, no publish result", () => {
    const { ex } = makeExchange();
    const r = handlePubsubRequest(ex, { role: "pubsub-publish", u: "u1", message: { topic: "a..b", payload: 1 } }, "c1");
    expect(valid(r.ack)).toMatchObject({ role: "pubsub-ack", u: "u1", success: false, error: { code: 1002, details: { path: "message.topic" } } });
    expect(r.ack.error?.message).toMatch(/empty segment/);
    expect(r.publish).toBeUndefined();
  });

  it("subscribe and unsubscribe: acks carry the subscription_id; unknown id is 1001", () => {
    const { ex } = makeExchange();
    const sink = new RecordingSink();
    ex.attach("c1", sink);
    ex.publish({ topic: "a", payload: "old" });
    const s = handlePubsubRequest(ex, { role: "pubsub-subscribe", u: "u1", subscription: { subscription_id: "S", patterns: ["a"], backlog: {} } }, "c1");
    expect(valid(s.ack)).toEqual({ role: "pubsub-ack", u: "u1", success: true, subscription_id: "S" });
    expect(s.subscribe?.backlog).toBe(1);
    expect(sink.frames).toHaveLength(0); // the ack goes out first...
    ex.flush("c1"); // ...then the backlog
    expect(sink.frames).toHaveLength(1);

    const bad = handlePubsubRequest(ex, { role: "pubsub-subscribe", u: "u2", subscription: { subscription_id: "T", patterns: ["a*"] } }, "c1");
    expect(valid(bad.ack)).toMatchObject({ success: false, subscription_id: "T", error: { code: 1002, details: { path: "subscription.patterns[0]" } } });

    const other = handlePubsubRequest(ex, { role: "pubsub-unsubscribe", u: "u3", subscription_id: "S" }, "c2");
    expect(valid(other.ack)).toMatchObject({ success: false, subscription_id: "S", error: { code: 1001 } });
    const ok = handlePubsubRequest(ex, { role: "pubsub-unsubscribe", u: "u4", subscription_id: "S" }, "c1");
    expect(valid(ok.ack)).toEqual({ role: "pubsub-ack", u: "u4", success: true, subscription_id: "S" });
    const again = handlePubsubRequest(ex, { role: "pubsub-unsubscribe", u: "u5", subscription_id: "S" }, "c1");
    expect(again.ack).toMatchObject({ success: false, error: { code: 1001 } });
  });

  it("a frame of another role (schema skipped) gets a 1002 ack, not a throw", () => {
    const { ex } = makeExchange();
    const r = handlePubsubRequest(ex, { role: "rpc", u: "u9" } as never, "c1");
    expect(r.ack).toMatchObject({ role: "pubsub-ack", u: "u9", success: false, error: { code: 1002, details: { path: "role" } } });
  });

  it("limits answer 1007", () => {
    const { ex } = makeExchange({ maxSubscriptionsPerOwner: 1 });
    handlePubsubRequest(ex, { role: "pubsub-subscribe", u: "u1", subscription: { patterns: ["a"] } }, "c1");
    const r = handlePubsubRequest(ex, { role: "pubsub-subscribe", u: "u2", subscription: { patterns: ["b"] } }, "c1");
    expect(valid(r.ack)).toMatchObject({ success: false, error: { code: 1007 } });
  });

  it("notifications are valid frames and survive both encodings", () => {
    const { ex } = makeExchange();
    const sink = new RecordingSink();
    ex.attach("c1", sink);
    ex.subscribe("c1", { patterns: ["#"] });
    ex.publish({ topic: "x.y", payload: { n: [1, 2], b: true }, headers: { h: 1 } });
    const n = valid(sink.frames[0]!);
    for (const enc of ["json", "msgpack"] as const) {
      const back = decodeFrame(encodeFrame(n, enc as "json") as never, enc);
      expect(back.ok && (back.frame as PubsubNotification)).toEqual(n);
    }
  });

  it("the fabric message carries the whole message; the receiver delivers its payload", () => {
    const a = makeExchange({ nodeId: "a" }).ex;
    const b = makeExchange({ nodeId: "b" }).ex;
    const sink = new RecordingSink();
    b.attach("c1", sink);
    b.subscribe("c1", { patterns: ["t"] });
    const pub = a.publish({ topic: "t", payload: 42 });
    const fm = valid({ role: "fabric-message" as const, payload: pubsubFabricMessage(pub.message, { source_node: "a", source_cluster: "c", target_node: "b" }) });
    expect(fm.payload).toMatchObject({ message_type: "pubsub", topic: "t", headers: { source_node: "a", target_node: "b", routing_path: ["a"] } });
    expect(b.deliverRemote(fm.payload.payload)).toMatchObject({ duplicate: false, delivered: 1 });
    expect(sink.frames[0]?.message).toEqual(pub.message);
  });
});
