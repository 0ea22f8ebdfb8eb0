import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_NESTING_DEPTH, decodeFrame, encodeFrame } from "./codec.js";
import { isMpregError } from "./errors.js";
import { frameArbitraries, wireObject, wireValue } from "./frame-arbitraries.js";
import { encodeNotification, encodeNotificationBatch, encodePlainPublish, encodePubsubAck, encodePublish, encodePublishBatch } from "./pubsub-codec.js";
import type { PubsubAck, PubsubNotification, PubsubNotificationBatch, PubsubPublish, PubsubPublishBatch } from "./schemas.js";

const bytes = (b: Uint8Array) => Array.from(b);
const decoded = (b: Uint8Array) => {
  const r = decodeFrame(b, "msgpack");
  if (!r.ok) throw r.error;
  return r.frame;
};
const anyString = fc.oneof(fc.stringMatching(/^[\x20-\x7e]{1,40}$/), fc.string({ minLength: 1, maxLength: 40 }), fc.string({ unit: "grapheme", minLength: 1, maxLength: 12 }), fc.stringMatching(/^[a-z]{250,300}$/));
/** Payloads: any wire value, or binary of every bin size (bin 8, 16, 32). */
const payloadValue = fc.oneof(wireValue, fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 2 }).map((k) => new Uint8Array([10, 70_000, 255][k]!)), fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)));
const number = fc.oneof(fc.integer({ min: 0, max: 4_102_444_800_000 }), fc.double({ noNaN: true }), fc.integer());

/** A notification in the key order the exchange builds. */
const notification = fc
  .record({ sid: anyString, topic: anyString, payload: payloadValue, headers: wireObject, id: anyString, publisher: fc.oneof(anyString, fc.constant("")), ts: number })
  .map(
    (r): PubsubNotification => ({
      role: "pubsub-notification",
      subscription_id: r.sid,
      message: { topic: r.topic, payload: r.payload, headers: r.headers, message_id: r.id, publisher: r.publisher, timestamp: r.ts },
    }),
  );

/** "ok", or the message of the MpregError `f` throws: what encodeFrame and a template must agree on. */
function outcome(f: () => unknown): string {
  try {
    f();
    return "ok";
  } catch (e) {
    return isMpregError(e) ? e.message : "other";
  }
}

describe("encodeNotification", () => {
  it("writes exactly the bytes encodeFrame writes for notifications as the exchange builds them", () => {
    fc.assert(fc.property(notification, (n) => {
        expect(bytes(encodeNotification(n))).toEqual(bytes(encodeFrame(n, "msgpack")));
      }), { numRuns: 500 });
  });

  it("decodes to the same frame as encodeFrame for any valid notification", () => {
    fc.assert(
      fc.property(frameArbitraries["pubsub-notification"], (f) => {
        const n = f as PubsubNotification;
        expect(decoded(encodeNotification(n))).toEqual(decoded(encodeFrame(n, "msgpack")));
      }),
      { numRuns: 300 },
    );
  });

  it("refuses what encodeFrame refuses and accepts the same depths", () => {
    const base: PubsubNotification = { role: "pubsub-notification", subscription_id: "s", message: { topic: "t", payload: null, headers: {}, message_id: "m", publisher: "a", timestamp: 1 } };
    for (let d = MAX_NESTING_DEPTH - 6; d <= MAX_NESTING_DEPTH + 2; d++) {
      let v: unknown = 1;
      for (let i = 0; i < d; i++) v = [v];
      const n = { ...base, message: { ...base.message, payload: v } };
      expect(outcome(() => encodeNotification(n))).toBe(outcome(() => encodeFrame(n, "msgpack")));
    }
    const bad = { ...base, message: { ...base.message, payload: 1n } };
    expect(outcome(() => encodeNotification(bad))).not.toBe("ok");
    expect(outcome(() => encodeNotification(bad))).toBe(outcome(() => encodeFrame(bad, "msgpack")));
  });
});

/** A notification batch as the exchange builds it; sizes across the fixarray/array16 boundary. */
const notificationBatch = fc
  .record({ sid: anyString, notes: fc.array(notification, { minLength: 1, maxLength: 20 }) })
  .map((r): PubsubNotificationBatch => ({ role: "pubsub-notification-batch", subscription_id: r.sid, messages: r.notes.map((n) => n.message) }));

describe("encodeNotificationBatch", () => {
  it("writes exactly the bytes encodeFrame writes for batches as the exchange builds them", () => {
    fc.assert(fc.property(notificationBatch, (f) => {
        expect(bytes(encodeNotificationBatch(f))).toEqual(bytes(encodeFrame(f, "msgpack")));
      }), { numRuns: 100 });
  });

  it("decodes to the same frame as encodeFrame for any valid batch, in any key order", () => {
    fc.assert(
      fc.property(frameArbitraries["pubsub-notification-batch"], (f) => {
        const n = f as PubsubNotificationBatch;
        expect(decoded(encodeNotificationBatch(n))).toEqual(decoded(encodeFrame(n, "msgpack")));
      }),
      { numRuns: 300 },
    );
  });

  it("handles a batch of 256 (array16) and refuses what encodeFrame refuses at the same depths", () => {
    const base: PubsubNotificationBatch["messages"][number] = { topic: "t", payload: new Uint8Array(100), headers: {}, message_id: "m", publisher: "a", timestamp: 1 };
    const big: PubsubNotificationBatch = { role: "pubsub-notification-batch", subscription_id: "s", messages: Array.from({ length: 256 }, (_, i) => ({ ...base, message_id: `m${i}` })) };
    expect(bytes(encodeNotificationBatch(big))).toEqual(bytes(encodeFrame(big, "msgpack")));
    for (let d = MAX_NESTING_DEPTH - 6; d <= MAX_NESTING_DEPTH + 2; d++) {
      let v: unknown = 1;
      for (let i = 0; i < d; i++) v = [v];
      const f: PubsubNotificationBatch = { role: "pubsub-notification-batch", subscription_id: "s", messages: [base, { ...base, payload: v }] };
      expect(outcome(() => encodeNotificationBatch(f))).toBe(outcome(() => encodeFrame(f, "msgpack")));
      // The single-message encoder right after keeps its own depth.
      const n: PubsubNotification = { role: "pubsub-notification", subscription_id: "s", message: { ...base, payload: v } };
      expect(outcome(() => encodeNotification(n))).toBe(outcome(() => encodeFrame(n, "msgpack")));
    }
  });
});

describe("encodePublishBatch", () => {
  it("writes exactly the bytes encodeFrame writes for the client's batch of plain publishes", () => {
    const plainBatch = fc
      .record({ u: fc.oneof(anyString, fc.constant("")), ms: fc.array(fc.record({ topic: anyString, payload: payloadValue }), { minLength: 1, maxLength: 20 }) })
      .map((r): PubsubPublishBatch => ({ role: "pubsub-publish-batch", u: r.u, messages: r.ms.map((m) => ({ topic: m.topic, payload: m.payload })) }));
    fc.assert(
      fc.property(plainBatch, (f) => {
        expect(bytes(encodePublishBatch(f))).toEqual(bytes(encodeFrame(f, "msgpack")));
      }),
      { numRuns: 100 },
    );
  });

  it("decodes to the same frame as encodeFrame for any valid batch, in any key order", () => {
    fc.assert(
      fc.property(frameArbitraries["pubsub-publish-batch"], (f) => {
        const p = f as PubsubPublishBatch;
        expect(decoded(encodePublishBatch(p))).toEqual(decoded(encodeFrame(p, "msgpack")));
      }),
      { numRuns: 300 },
    );
  });
});

describe("encodePubsubAck", () => {
  it("writes exactly the bytes encodeFrame writes for the publish ack, the batch ack, and any other ack", () => {
    const publishAck = fc.record({ u: fc.oneof(anyString, fc.constant("")), id: fc.oneof(anyString, fc.constant("")) }).map((r): PubsubAck => ({ role: "pubsub-ack", u: r.u, success: true, message_id: r.id }));
    const batchAck = fc.record({ u: anyString, ids: fc.array(anyString, { maxLength: 20 }) }).map((r): PubsubAck => ({ role: "pubsub-ack", u: r.u, success: true, message_ids: r.ids }));
    fc.assert(
      fc.property(fc.oneof(publishAck, batchAck, frameArbitraries["pubsub-ack"].map((f) => f as PubsubAck)), (ack) => {
        expect(bytes(encodePubsubAck(ack))).toEqual(bytes(encodeFrame(ack, "msgpack")));
      }),
      { numRuns: 500 },
    );
  });
});

describe("encodePublish", () => {
  it("writes exactly the bytes encodeFrame writes for the client's plain publish", () => {
    const plain = fc
      .record({ topic: anyString, payload: payloadValue, u: fc.oneof(anyString, fc.constant("")) })
      .map((r): PubsubPublish => ({ role: "pubsub-publish", message: { topic: r.topic, payload: r.payload }, u: r.u }));
    fc.assert(
      fc.property(plain, (f) => {
        expect(bytes(encodePublish(f))).toEqual(bytes(encodeFrame(f, "msgpack")));
        expect(bytes(encodePlainPublish(f.u, f.message.topic, f.message.payload))).toEqual(bytes(encodeFrame(f, "msgpack")));
      }),
      { numRuns: 500 },
    );
  });

  it("decodes to the same frame as encodeFrame for any valid publish, in any key order", () => {
    fc.assert(
      fc.property(frameArbitraries["pubsub-publish"], (f) => {
        const p = f as PubsubPublish;
        expect(decoded(encodePublish(p))).toEqual(decoded(encodeFrame(p, "msgpack")));
      }),
      { numRuns: 500 },
    );
  });
});
