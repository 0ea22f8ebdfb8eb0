import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeFrame, decodeFrameGeneric, encodeFrame, type DecodeResult } from "./codec.js";
import { anyFrame, frameArbitraries } from "./frame-arbitraries.js";
import { decodePubsubTemplate } from "./pubsub-decode.js";
import { encodeNotification, encodeNotificationBatch, encodePlainPublish, encodePubsubAck, encodePublishBatch } from "./pubsub-codec.js";
import type { PubsubAck, PubsubNotification, PubsubNotificationBatch, PubsubPublishBatch } from "./schemas.js";

const ascii = fc.stringMatching(/^[\x20-\x7e]{0,40}$/);
const asciiNonEmpty = fc.stringMatching(/^[\x20-\x7e]{1,40}$/);
const anyString = fc.oneof(ascii, fc.string({ maxLength: 40 }), fc.string({ unit: "grapheme", maxLength: 12 }), fc.stringMatching(/^[a-z]{250,300}$/));
/** Payloads of every MessagePack kind the template decoder reads, and some it leaves alone. */
const payload = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }),
  fc.double(),
  fc.float().map((f) => Math.fround(f)),
  ascii,
  anyString,
  fc.uint8Array({ maxLength: 300 }),
  fc.constant(null).map(() => new Uint8Array(66_000)), // bin32
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(ascii, fc.integer(), { maxKeys: 2 }),
);
const timestamp = fc.oneof(fc.integer({ min: 0, max: 4_102_444_800_000 }), fc.double(), fc.integer());

const notification = fc
  .record({ sid: anyString, topic: anyString, payload, headers: fc.oneof(fc.constant({}), fc.dictionary(ascii, fc.integer(), { maxKeys: 2 })), id: anyString, publisher: anyString, ts: timestamp })
  .map((r): PubsubNotification => ({
    role: "pubsub-notification",
    subscription_id: r.sid,
    message: { topic: r.topic, payload: r.payload, headers: r.headers, message_id: r.id, publisher: r.publisher, timestamp: r.ts },
  }));
const asciiNotification = fc
  .record({ sid: ascii, topic: asciiNonEmpty, payload: fc.oneof(fc.constant(null), fc.integer(), fc.double({ noNaN: true }).map((d) => (d === 0 ? 0 : d)) /* -0 is written as 0 */, ascii, fc.uint8Array({ maxLength: 200 })), id: asciiNonEmpty, publisher: ascii, ts: fc.integer({ min: 0, max: 4_102_444_800_000 }) })
  .map((r): PubsubNotification => ({
    role: "pubsub-notification",
    subscription_id: r.sid,
    message: { topic: r.topic, payload: r.payload, headers: {}, message_id: r.id, publisher: r.publisher, timestamp: r.ts },
  }));
const ack = fc
  .record({ u: anyString, success: fc.boolean(), id: anyString })
  .map((r): PubsubAck => ({ role: "pubsub-ack", u: r.u, success: r.success, message_id: r.id }));

const notificationBatch = (sid: fc.Arbitrary<string>, n: fc.Arbitrary<PubsubNotification>, max: number) =>
  fc.record({ sid, notes: fc.array(n, { minLength: 1, maxLength: max }) })
    .map((r): PubsubNotificationBatch => ({ role: "pubsub-notification-batch", subscription_id: r.sid, messages: r.notes.map((x) => x.message) }));
const publishBatch = (u: fc.Arbitrary<string>, topic: fc.Arbitrary<string>, p: fc.Arbitrary<unknown>, max: number) =>
  fc.record({ u, ms: fc.array(fc.record({ topic, payload: p }), { minLength: 1, maxLength: max }) })
    .map((r): PubsubPublishBatch => ({ role: "pubsub-publish-batch", u: r.u, messages: r.ms.map((m) => ({ topic: m.topic, payload: m.payload })) }));
const asciiPayload = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), ascii, fc.uint8Array({ maxLength: 200 }));

/** Bytes of frames in the template layouts (valid or not: empty topics, NaN timestamps...). */
const templateBytes = fc.oneof(
  notification.map((n) => encodeNotification(n)),
  notificationBatch(anyString, notification, 2).map((f) => encodeNotificationBatch(f)),
  publishBatch(anyString, anyString, payload, 2).map((f) => encodePublishBatch(f)),
  ack.map((a) => encodePubsubAck(a)),
  fc.record({ u: anyString, topic: anyString, payload }).map((r) => encodePlainPublish(r.u, r.topic, r.payload)),
);

/** What a decode says, comparable with toEqual (errors by code and message). */
function outcome(r: DecodeResult): unknown {
  return r.ok ? { ok: true, frame: r.frame } : { ok: false, code: r.error.code, message: r.error.message, u: r.u };
}

function sameAsGeneric(bytes: Uint8Array): void {
  sameAsGenericFor(bytes);
  // Node's Buffer (what the WebSocket hands over) takes its own string path.
  sameAsGenericFor(Buffer.from(bytes));
}

function sameAsGenericFor(bytes: Uint8Array): void {
  const fast = decodePubsubTemplate(bytes);
  const generic = decodeFrameGeneric(bytes, "msgpack");
  if (fast !== undefined) {
    // Whatever the template decoder reads, the generic decoder accepts, as the same frame.
    expect(generic.ok).toBe(true);
    expect(fast).toEqual(generic.ok ? generic.frame : undefined);
  }
  expect(outcome(decodeFrame(bytes, "msgpack"))).toEqual(outcome(generic));
}

describe("decodePubsubTemplate", () => {
  it("reads the frames the template encoders write with ASCII strings and scalar or binary payloads", () => {
    fc.assert(
      fc.property(asciiNotification, (n) => {
        const bytes = encodeNotification(n);
        expect(decodePubsubTemplate(bytes)).toEqual(n);
        sameAsGeneric(bytes);
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(ascii, asciiNonEmpty, fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), ascii, fc.uint8Array({ maxLength: 200 })), (u, topic, p) => {
        const bytes = encodePlainPublish(u, topic, p);
        expect(decodePubsubTemplate(bytes)).toEqual({ role: "pubsub-publish", message: { topic, payload: p }, u });
        sameAsGeneric(bytes);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(ascii, ascii, (u, id) => {
        const a: PubsubAck = { role: "pubsub-ack", u, success: true, message_id: id };
        expect(decodePubsubTemplate(encodePubsubAck(a))).toEqual(a);
      }),
      { numRuns: 300 },
    );
  });

  it("reads the two batches (notifications, plain publishes) in the template layout", () => {
    fc.assert(
      fc.property(notificationBatch(ascii, asciiNotification, 20), (f) => {
        const bytes = encodeNotificationBatch(f);
        expect(decodePubsubTemplate(bytes)).toEqual(f);
        sameAsGeneric(bytes);
      }),
      { numRuns: 100 },
    );
    fc.assert(
      fc.property(publishBatch(ascii, asciiNonEmpty, asciiPayload, 20), (f) => {
        const bytes = encodePublishBatch(f);
        expect(decodePubsubTemplate(bytes)).toEqual(f);
        sameAsGeneric(bytes);
      }),
      { numRuns: 100 },
    );
    // 256 messages (array 16) is read; 257 publishes is the generic path's 1002.
    const m = { topic: "bench.data", payload: new Uint8Array(100) };
    const ok: PubsubPublishBatch = { role: "pubsub-publish-batch", u: "u", messages: Array.from({ length: 256 }, () => m) };
    expect(decodePubsubTemplate(encodePublishBatch(ok))).toEqual(ok);
    const tooMany = encodeFrame({ ...ok, messages: [...ok.messages, m] }, "msgpack");
    expect(decodePubsubTemplate(tooMany)).toBeUndefined();
    expect(decodeFrame(tooMany, "msgpack").ok).toBe(false);
    // An empty batch is the generic path's 1002 too.
    const empty = encodeFrame({ role: "pubsub-notification-batch", subscription_id: "s", messages: [] }, "msgpack");
    expect(decodePubsubTemplate(empty)).toBeUndefined();
    expect(decodeFrame(empty, "msgpack").ok).toBe(false);
  });

  it("a binary payload is a view of the frame, as the generic decoder's", () => {
    const payloadBytes = Uint8Array.from({ length: 100 }, (_, i) => i);
    const bytes = encodePlainPublish("u1", "bench.data", payloadBytes);
    const f = decodePubsubTemplate(bytes) as { message: { payload: Uint8Array } };
    expect(f.message.payload).toEqual(payloadBytes);
    expect(f.message.payload.buffer).toBe(bytes.buffer);
    const g = decodeFrameGeneric(bytes, "msgpack");
    expect(g.ok && (g.frame as { message: { payload: Uint8Array } }).message.payload.constructor).toBe(f.message.payload.constructor);
  });

  it("gives what the generic path gives for any frame in the template layouts", () => {
    fc.assert(fc.property(templateBytes, sameAsGeneric), { numRuns: 300 });
  });

  it("gives what the generic path gives for any valid frame of any role", () => {
    fc.assert(
      fc.property(anyFrame, (f) => sameAsGeneric(encodeFrame(f, "msgpack"))),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(frameArbitraries["pubsub-notification"], (f) => sameAsGeneric(encodeNotification(f as PubsubNotification))),
      { numRuns: 300 },
    );
  });

  it("gives what the generic path gives for damaged template frames (byte changed, cut, extended)", () => {
    const damaged = fc.oneof(
      fc.tuple(templateBytes, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([b, i, v]) => {
        const c = b.slice();
        c[i % c.length] = v;
        return c;
      }),
      fc.tuple(templateBytes, fc.nat()).map(([b, n]) => b.slice(0, n % b.length)),
      fc.tuple(templateBytes, fc.uint8Array({ minLength: 1, maxLength: 4 })).map(([b, extra]) => {
        const c = new Uint8Array(b.length + extra.length);
        c.set(b);
        c.set(extra, b.length);
        return c;
      }),
    );
    fc.assert(fc.property(damaged, sameAsGeneric), { numRuns: 1000 });
  });

  it("custom decode limits take the generic path", () => {
    const bytes = encodePlainPublish("u", "t", null);
    const r = decodeFrame(bytes, "msgpack", { maxElements: 3 });
    expect(r.ok).toBe(false);
  });
});
