/**
 * Template encoders of the two pub/sub frames a node sends per message: the publish ack and
 * the notification. Same bytes as `encodeFrame` for frames in the order the node builds them
 * (property-tested); anything else goes through `encodeFrame`.
 */
import { Encoder } from "@msgpack/msgpack";
import { MAX_NESTING_DEPTH, encodeFrame, fastEncoderStrings } from "./codec.js";
import type { PubsubAck, PubsubNotification, PubsubPublish } from "./schemas.js";
import { begin, finish, keyCount, latin1, put, putBin, putNum, putStr } from "./template-writer.js";

// A notification's payload and headers sit two levels below the frame (frame.message.payload).
const valueEncoder = fastEncoderStrings(new Encoder({ ignoreUndefined: true, maxDepth: MAX_NESTING_DEPTH + 1 - 2 }));

// map(3) "role": "pubsub-notification", "subscription_id"
const NOTE_HEAD = latin1("\x83\xa4role\xb3pubsub-notification\xafsubscription_id");
// "message": map(6) "topic"
const NOTE_MESSAGE = latin1("\xa7message\x86\xa5topic");
const K_PAYLOAD = latin1("\xa7payload");
const K_HEADERS = latin1("\xa7headers");
const K_MESSAGE_ID = latin1("\xaamessage_id");
const K_PUBLISHER = latin1("\xa9publisher");
const K_TIMESTAMP = latin1("\xa9timestamp");
// map(4) "role": "pubsub-ack", "u"
const ACK_HEAD = latin1("\x84\xa4role\xaapubsub-ack\xa1u");
const ACK_SUCCESS = latin1("\xa7success\xc3"); // "success": true
// map(3) "role": "pubsub-publish", "message": map(2) "topic"
const PUB_HEAD = latin1("\x83\xa4role\xaepubsub-publish\xa7message\x82\xa5topic");
const PUB_U = latin1("\xa1u");
// The published payload sits two levels below the frame too (frame.message.payload).

function value(v: unknown): boolean {
  if (v === undefined) return false;
  // A binary payload (the common case of a publisher of bytes) is written directly.
  if (v instanceof Uint8Array && v.byteLength < 0x1_0000_0000) {
    putBin(v);
    return true;
  }
  let bytes: Uint8Array;
  try {
    bytes = valueEncoder.encodeSharedRef(v);
  } catch {
    return false;
  }
  put(bytes);
  return true;
}

function notificationTemplate(n: PubsubNotification): Uint8Array | undefined {
  const m = n.message as PubsubNotification["message"] | null | undefined;
  if (typeof m !== "object" || m === null || keyCount(n) !== 3 || keyCount(m) !== 6) return undefined;
  begin();
  put(NOTE_HEAD);
  if (!putStr(n.subscription_id)) return undefined;
  put(NOTE_MESSAGE);
  if (!putStr(m.topic)) return undefined;
  put(K_PAYLOAD);
  if (!value(m.payload)) return undefined;
  put(K_HEADERS);
  if (!value(m.headers)) return undefined;
  put(K_MESSAGE_ID);
  if (!putStr(m.message_id)) return undefined;
  put(K_PUBLISHER);
  if (!putStr(m.publisher)) return undefined;
  put(K_TIMESTAMP);
  if (!putNum(m.timestamp)) return undefined;
  return finish();
}

/**
 * Encodes a `pubsub-notification` `{role, subscription_id, message: {topic, payload, headers,
 * message_id, publisher, timestamp}}` as MessagePack: the bytes of `encodeFrame` when the keys
 * are in that order (as the exchange builds them), the same decoded frame otherwise.
 *
 * @throws {MpregError} code 1002 when the frame cannot be encoded (as encodeFrame).
 */
export function encodeNotification(n: PubsubNotification): Uint8Array {
  return notificationTemplate(n) ?? encodeFrame(n, "msgpack");
}

/**
 * Encodes a `pubsub-ack` as MessagePack; the successful publish ack `{role, u, success: true,
 * message_id}` from a template (the bytes of `encodeFrame`), any other ack generically.
 *
 * @throws {MpregError} code 1002 when the frame cannot be encoded (as encodeFrame).
 */
export function encodePubsubAck(ack: PubsubAck): Uint8Array {
  if (ack.success === true && ack.message_id !== undefined && keyCount(ack) === 4) {
    begin();
    put(ACK_HEAD);
    if (putStr(ack.u)) {
      put(ACK_SUCCESS);
      put(K_MESSAGE_ID);
      if (putStr(ack.message_id)) return finish();
    }
  }
  return encodeFrame(ack, "msgpack");
}

/**
 * Encodes the plain publish `{role: "pubsub-publish", message: {topic, payload}, u}` (the
 * client's `publish` without headers or message_id) from templates: the bytes of
 * `encodeFrame` in that key order, the same decoded frame in another. Any other publish frame
 * goes through `encodeFrame`.
 *
 * @throws {MpregError} code 1002 when the frame cannot be encoded (as encodeFrame).
 */
export function encodePublish(frame: PubsubPublish): Uint8Array {
  const m = frame.message as PubsubPublish["message"] | null | undefined;
  if (typeof m === "object" && m !== null && keyCount(frame) === 3 && keyCount(m) === 2) {
    const out = publishTemplate(frame.u, m.topic, m.payload);
    if (out !== undefined) return out;
  }
  return encodeFrame(frame, "msgpack");
}

/**
 * `encodePublish` of `{role: "pubsub-publish", message: {topic, payload}, u}` from its parts,
 * for a caller that built no frame object (the same bytes).
 *
 * @throws {MpregError} code 1002 when the frame cannot be encoded (as encodeFrame).
 */
export function encodePlainPublish(u: string, topic: string, payload: unknown): Uint8Array {
  return publishTemplate(u, topic, payload) ?? encodeFrame({ role: "pubsub-publish", message: { topic, payload }, u }, "msgpack");
}

function publishTemplate(u: unknown, topic: unknown, payload: unknown): Uint8Array | undefined {
  begin();
  put(PUB_HEAD);
  if (!putStr(topic)) return undefined;
  put(K_PAYLOAD);
  if (!value(payload)) return undefined;
  put(PUB_U);
  if (!putStr(u)) return undefined;
  return finish();
}
