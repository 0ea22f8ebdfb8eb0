/**
 * Template encoders of the pub/sub frames sent per message: the publish and its ack, the
 * notification, and their batched forms (docs/protocol.md, additions). Same bytes as `encodeFrame` for frames in the order the node builds them
 * (property-tested); anything else goes through `encodeFrame`.
 */
import { Encoder } from "@msgpack/msgpack";
import { MAX_NESTING_DEPTH, encodeFrame, fastEncoderStrings } from "./codec.js";
import type { PubsubAck, PubsubMessage, PubsubNotification, PubsubNotificationBatch, PubsubNotificationMessage, PubsubPublish, PubsubPublishBatch } from "./schemas.js";
import { begin, finish, keyCount, latin1, put, putBin, putByte, putNum, putStr } from "./template-writer.js";

// A notification's payload and headers sit two levels below the frame (frame.message.payload).
const valueEncoder = fastEncoderStrings(new Encoder({ ignoreUndefined: true, maxDepth: MAX_NESTING_DEPTH + 1 - 2 }));
// In a batch they sit one level deeper (frame.messages[i].payload).
const batchValueEncoder = fastEncoderStrings(new Encoder({ ignoreUndefined: true, maxDepth: MAX_NESTING_DEPTH + 1 - 3 }));
/** The value encoder of the frame being written (one level deeper inside a batch). */
let currentValueEncoder = valueEncoder;

// map(3) "role": "pubsub-notification", "subscription_id"
const NOTE_HEAD = latin1("\x83\xa4role\xb3pubsub-notification\xafsubscription_id");
// "message": map(6) "topic"
const NOTE_MESSAGE = latin1("\xa7message\x86\xa5topic");
// map(6) "topic" (a message of a notification batch)
const MESSAGE_HEAD = latin1("\x86\xa5topic");
// map(3) "role": "pubsub-notification-batch", "subscription_id"
const NOTE_BATCH_HEAD = latin1("\x83\xa4role\xb9pubsub-notification-batch\xafsubscription_id");
const K_MESSAGES = latin1("\xa8messages");
const K_MESSAGE_IDS = latin1("\xabmessage_ids");
// map(3) "role": "pubsub-publish-batch", "u"
const PUB_BATCH_HEAD = latin1("\x83\xa4role\xb4pubsub-publish-batch\xa1u");
// map(2) "topic" (a message of a publish batch)
const PUB_MESSAGE_HEAD = latin1("\x82\xa5topic");
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
    bytes = currentValueEncoder.encodeSharedRef(v);
  } catch {
    return false;
  }
  put(bytes);
  return true;
}

/** An array header as @msgpack/msgpack writes it. */
function putArrayHeader(n: number): void {
  if (n < 16) {
    putByte(0x90 | n);
  } else if (n < 0x10000) {
    putByte(0xdc);
    putByte(n >>> 8);
    putByte(n & 0xff);
  } else {
    putByte(0xdd);
    putByte(n >>> 24);
    putByte((n >>> 16) & 0xff);
    putByte((n >>> 8) & 0xff);
    putByte(n & 0xff);
  }
}

function notificationTemplate(n: PubsubNotification): Uint8Array | undefined {
  const m = n.message as PubsubNotification["message"] | null | undefined;
  if (typeof m !== "object" || m === null || keyCount(n) !== 3 || keyCount(m) !== 6) return undefined;
  begin();
  put(NOTE_HEAD);
  if (!putStr(n.subscription_id)) return undefined;
  put(NOTE_MESSAGE);
  return messageRest(m) ? finish() : undefined;
}

/** A notification message `{topic, payload, headers, message_id, publisher, timestamp}` (map header written). */
function messageRest(m: PubsubNotificationMessage): boolean {
  if (!putStr(m.topic)) return false;
  put(K_PAYLOAD);
  if (!value(m.payload)) return false;
  put(K_HEADERS);
  if (!value(m.headers)) return false;
  put(K_MESSAGE_ID);
  if (!putStr(m.message_id)) return false;
  put(K_PUBLISHER);
  if (!putStr(m.publisher)) return false;
  put(K_TIMESTAMP);
  return putNum(m.timestamp);
}

/** Runs a batch template's body with the batch value encoder, the single-frame one restored after. */
function withBatchValues<F>(body: (f: F) => Uint8Array | undefined, f: F): Uint8Array | undefined {
  currentValueEncoder = batchValueEncoder;
  try {
    return body(f);
  } finally {
    currentValueEncoder = valueEncoder;
  }
}

function notificationBatchBody(f: PubsubNotificationBatch): Uint8Array | undefined {
  const ms = f.messages as unknown;
  if (!Array.isArray(ms) || keyCount(f) !== 3) return undefined;
  begin();
  put(NOTE_BATCH_HEAD);
  if (!putStr(f.subscription_id)) return undefined;
  put(K_MESSAGES);
  putArrayHeader(ms.length);
  for (let i = 0; i < ms.length; i++) {
    const m = ms[i] as PubsubNotificationMessage | null | undefined;
    if (typeof m !== "object" || m === null || keyCount(m) !== 6) return undefined;
    put(MESSAGE_HEAD);
    if (!messageRest(m)) return undefined;
  }
  return finish();
}

/**
 * Encodes a `pubsub-notification-batch` `{role, subscription_id, messages: [{topic, payload,
 * headers, message_id, publisher, timestamp}, ...]}` as MessagePack: the bytes of
 * `encodeFrame` when the keys are in that order (as the exchange builds them), the same
 * decoded frame otherwise.
 *
 * @throws {MpregError} code 1002 when the frame cannot be encoded (as encodeFrame).
 */
export function encodeNotificationBatch(f: PubsubNotificationBatch): Uint8Array {
  return withBatchValues(notificationBatchBody, f) ?? encodeFrame(f, "msgpack");
}

/**
 * Encodes a `pubsub-publish-batch` `{role, u, messages: [{topic, payload}, ...]}` (plain
 * messages, as the client coalesces them) from templates: the bytes of `encodeFrame` in that
 * key order; any other batch goes through `encodeFrame`.
 *
 * @throws {MpregError} code 1002 when the frame cannot be encoded (as encodeFrame).
 */
export function encodePublishBatch(f: PubsubPublishBatch): Uint8Array {
  return withBatchValues(publishBatchBody, f) ?? encodeFrame(f, "msgpack");
}

function publishBatchBody(f: PubsubPublishBatch): Uint8Array | undefined {
  const ms = f.messages as unknown;
  if (!Array.isArray(ms) || keyCount(f) !== 3) return undefined;
  begin();
  put(PUB_BATCH_HEAD);
  if (!putStr(f.u)) return undefined;
  put(K_MESSAGES);
  putArrayHeader(ms.length);
  for (let i = 0; i < ms.length; i++) {
    const m = ms[i] as PubsubMessage | null | undefined;
    if (typeof m !== "object" || m === null || keyCount(m) !== 2) return undefined;
    put(PUB_MESSAGE_HEAD);
    if (!putStr(m.topic)) return undefined;
    put(K_PAYLOAD);
    if (!value(m.payload)) return undefined;
  }
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
  } else if (ack.success === true && ack.message_ids !== undefined && keyCount(ack) === 4) {
    // The ack of a publish batch: {role, u, success: true, message_ids}.
    const ids = ack.message_ids as unknown;
    begin();
    put(ACK_HEAD);
    if (Array.isArray(ids) && putStr(ack.u)) {
      put(ACK_SUCCESS);
      put(K_MESSAGE_IDS);
      putArrayHeader(ids.length);
      let ok = true;
      for (let i = 0; i < ids.length && ok; i++) ok = putStr(ids[i]);
      if (ok) return finish();
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
