import { MpregError, type PubsubMessage, type PubsubNotificationMessage } from "@mpreg/envelope";
import { validateTopic } from "@mpreg/router";
import { estimateBytes } from "./message-size.js";

/** Longest message or subscription id accepted, in characters (ids are remembered for dedup). */
export const MAX_ID_LENGTH = 256;

/** Fixed per-message overhead counted on top of payload and headers (ids, numbers, framing). */
const MESSAGE_OVERHEAD_BYTES = 64;

/** A message that passed the checks, with what the exchange needs to route and account for it. */
export interface CheckedMessage {
  /** Shared between messages of the same topic: never modify. */
  readonly segments: readonly string[];
  /** Estimated bytes of the whole message (payload, headers, topic, ids). */
  readonly size: number;
}

/** Byte limits applied to a message's parts. */
export interface MessageLimits {
  readonly maxPayloadBytes: number;
  readonly maxHeaderBytes: number;
}

type Raw = Record<string, unknown>;

function isObject(v: unknown): v is Raw {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

/** Checks an optional or required id field; returns it (undefined when absent and allowed). */
export function checkId(v: unknown, path: string, required: boolean): string | undefined {
  if (v === undefined && !required) return undefined;
  if (typeof v !== "string" || v.length === 0) throw MpregError.invalid(`${path} must be a non-empty string`, path);
  if (v.length > MAX_ID_LENGTH) throw MpregError.invalid(`${path} longer than ${MAX_ID_LENGTH} characters`, path);
  return v;
}

// The last valid topic and its segments: a stream of messages on one topic (the common case;
// the template decoder even hands over the same string object) is split and checked once.
let lastTopic: string | undefined;
let lastSegments: readonly string[] = [];

function checkBody(m: Raw, path: string, limits: MessageLimits): { segments: readonly string[]; size: number } {
  let segments: readonly string[];
  // (typeof first: a missing topic must not match the initial `undefined`.)
  if (typeof m.topic === "string" && m.topic === lastTopic) {
    segments = lastSegments;
  } else {
    segments = Object.freeze(validateTopic(m.topic as string, `${path}.topic`));
    lastTopic = m.topic as string;
    lastSegments = segments;
  }
  if (m.payload === undefined) throw MpregError.invalid(`${path}.payload is required`, `${path}.payload`);
  const payloadBytes = estimateBytes(m.payload, limits.maxPayloadBytes);
  if (payloadBytes > limits.maxPayloadBytes) {
    throw MpregError.invalid(`${path}.payload is larger than the limit of ${limits.maxPayloadBytes} bytes`, `${path}.payload`);
  }
  let headerBytes = 0;
  if (m.headers !== undefined) {
    if (!isObject(m.headers)) throw MpregError.invalid(`${path}.headers must be an object`, `${path}.headers`);
    headerBytes = estimateBytes(m.headers, limits.maxHeaderBytes);
    if (headerBytes > limits.maxHeaderBytes) {
      throw MpregError.invalid(`${path}.headers are larger than the limit of ${limits.maxHeaderBytes} bytes`, `${path}.headers`);
    }
  }
  return { segments, size: payloadBytes + headerBytes + (m.topic as string).length + MESSAGE_OVERHEAD_BYTES };
}

/**
 * Checks the `message` of a `pubsub-publish` (also when it did not come through the frame
 * schema): topic (no wildcards, no empty segment, ...), payload present and within the limit,
 * headers an object within the limit, message_id a short non-empty string when given.
 * Throws MpregError 1002 naming the field.
 */
export function checkPublishedMessage(m: unknown, limits: MessageLimits, path = "message"): CheckedMessage & { readonly message: PubsubMessage } {
  if (!isObject(m)) throw MpregError.invalid(`${path} must be an object`, path);
  checkId(m.message_id, `${path}.message_id`, false);
  const { segments, size } = checkBody(m, path, limits);
  return { message: m as PubsubMessage, segments, size };
}

/**
 * Checks a message received from another node (the payload of a pub/sub fabric message): a
 * complete notification message. Returns a clean copy holding only the known fields.
 * Throws MpregError 1002 naming the field.
 */
export function checkRemoteMessage(m: unknown, limits: MessageLimits, path = "message"): CheckedMessage & { readonly message: PubsubNotificationMessage } {
  if (!isObject(m)) throw MpregError.invalid(`${path} must be an object`, path);
  const message_id = checkId(m.message_id, `${path}.message_id`, true) as string;
  if (typeof m.publisher !== "string" || m.publisher.length > MAX_ID_LENGTH) {
    throw MpregError.invalid(`${path}.publisher must be a string of at most ${MAX_ID_LENGTH} characters`, `${path}.publisher`);
  }
  if (typeof m.timestamp !== "number" || !Number.isFinite(m.timestamp)) {
    throw MpregError.invalid(`${path}.timestamp must be a finite number`, `${path}.timestamp`);
  }
  if (m.headers === undefined) throw MpregError.invalid(`${path}.headers is required`, `${path}.headers`);
  const { segments, size } = checkBody(m, path, limits);
  const message: PubsubNotificationMessage = {
    topic: m.topic as string,
    payload: m.payload,
    headers: m.headers as Record<string, unknown>,
    message_id,
    publisher: m.publisher,
    timestamp: m.timestamp,
  };
  return { message, segments, size };
}
