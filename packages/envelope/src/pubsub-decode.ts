/**
 * Template decoders of the three pub/sub frames that travel once per message: the plain
 * publish (client → node), its ack and the notification (node → client). They read the exact
 * byte layout the template encoders of pubsub-codec.ts write (keys in that order, ASCII
 * strings, a scalar or binary payload, empty headers) and build the frame directly, without
 * the depth scan, the generic MessagePack decoder and the compiled schema check: these frames
 * have a fixed shape, so the checks reduce to a few comparisons done here.
 *
 * The contract (property-tested in pubsub-decode.test.ts): for any input, `decodePubsubTemplate`
 * either returns `undefined` (the caller decodes generically) or a frame deep-equal to what the
 * generic `decodeFrame` path returns for the same bytes, which accepts it. Anything unusual
 * (another key order, extra keys, non-ASCII strings, a map or array payload, non-empty headers,
 * a non-finite timestamp, an empty topic or message id, trailing bytes) is
 * left to the generic path, so nothing the generic decoder accepts is refused.
 */
import {
  MAX_PUBSUB_BATCH,
  type Frame,
  type PubsubAck,
  type PubsubMessage,
  type PubsubNotification,
  type PubsubNotificationBatch,
  type PubsubNotificationMessage,
  type PubsubPublish,
  type PubsubPublishBatch,
} from "./schemas.js";

/** One byte per character (the templates hold MessagePack bytes, not UTF-8 text). */
const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

// The frames as pubsub-codec.ts writes them (see there).
const ROLE_KEY = latin1("\xa4role");
const ROLE_NOTE = latin1("\xb3pubsub-notification\xafsubscription_id");
const NOTE_MESSAGE = latin1("\xa7message\x86\xa5topic");
const K_PAYLOAD = latin1("\xa7payload");
const K_HEADERS_EMPTY = latin1("\xa7headers\x80"); // "headers": {}
const K_MESSAGE_ID = latin1("\xaamessage_id");
const K_PUBLISHER = latin1("\xa9publisher");
const K_TIMESTAMP = latin1("\xa9timestamp");
const ROLE_ACK = latin1("\xaapubsub-ack\xa1u");
const K_SUCCESS = latin1("\xa7success");
const ROLE_PUB = latin1("\xaepubsub-publish\xa7message\x82\xa5topic");
const K_U = latin1("\xa1u");
const ROLE_NOTE_BATCH = latin1("\xb9pubsub-notification-batch\xafsubscription_id");
const K_MESSAGES = latin1("\xa8messages");
const MESSAGE_HEAD = latin1("\x86\xa5topic");
const ROLE_PUB_BATCH = latin1("\xb4pubsub-publish-batch\xa1u");
const PUB_MESSAGE_HEAD = latin1("\x82\xa5topic");

// Reader state: decoding is synchronous, so one cursor serves every call.
let b: Uint8Array = new Uint8Array(0);
let pos = 0;
/** A decoded value could not be read here (not an error: the generic path decides). */
const NO = Symbol("no");

function match(t: Uint8Array): boolean {
  const n = t.length;
  if (pos + n > b.length) return false;
  for (let i = 0; i < n; i++) if (b[pos + i] !== t[i]) return false;
  pos += n;
  return true;
}

/**
 * Recently decoded strings that repeat in every frame (subscription id, topic, publisher):
 * one slot per field, reused when the bytes are the same, so no new string is made for them.
 */
const recent: string[] = ["", "", "", ""];
const SLOT_SID = 0;
const SLOT_TOPIC = 1;
const SLOT_PUBLISHER = 2;
const NO_SLOT = -1;

/** An ASCII string (fixstr, str8, str16); NO for anything else. */
function str(slot: number): string | typeof NO {
  if (pos >= b.length) return NO;
  const h = b[pos]!;
  let n: number;
  let at: number;
  if (h >= 0xa0 && h <= 0xbf) {
    n = h - 0xa0;
    at = pos + 1;
  } else if (h === 0xd9) {
    if (pos + 2 > b.length) return NO;
    n = b[pos + 1]!;
    at = pos + 2;
  } else if (h === 0xda) {
    if (pos + 3 > b.length) return NO;
    n = (b[pos + 1]! << 8) | b[pos + 2]!;
    at = pos + 3;
  } else {
    return NO;
  }
  const end = at + n;
  if (end > b.length) return NO;
  if (slot !== NO_SLOT) {
    const last = recent[slot]!;
    if (last.length === n) {
      let same = true;
      for (let i = 0; i < n; i++) {
        if (b[at + i] !== last.charCodeAt(i)) {
          same = false;
          break;
        }
      }
      if (same) {
        pos = end;
        return last;
      }
    }
  }
  if (n > MAX_TEMPLATE_STRING) return NO;
  for (let i = at; i < end; i++) if (b[i]! > 0x7f) return NO; // UTF-8: the generic decoder's job
  const s = ascii(at, n);
  if (slot !== NO_SLOT) recent[slot] = s;
  pos = end;
  return s;
}

/** Longer strings are left to the generic decoder. */
const MAX_TEMPLATE_STRING = 1024;
/** Reused argument list of `String.fromCharCode` (a fresh view per string cost more). */
const codes: number[] = [];

/** `n` ASCII bytes at `at` as a string. */
function ascii(at: number, n: number): string {
  if (n === 0) return "";
  // Node's Buffer (what `ws` hands over) has a native ASCII slice: the cheapest way by far.
  const slice = (b as { asciiSlice?: (start: number, end: number) => string }).asciiSlice;
  if (typeof slice === "function") return slice.call(b, at, at + n);
  codes.length = n;
  for (let i = 0; i < n; i++) codes[i] = b[at + i]!;
  return String.fromCharCode.apply(null, codes);
}

function u16(at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}

function u32(at: number): number {
  return ((b[at]! << 24) >>> 0) + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
}

// Floats are read through a scratch buffer (MessagePack is big-endian) rather than a DataView
// per frame.
const f64 = new Float64Array(1);
const f32 = new Float32Array(f64.buffer, 0, 1);
const fb = new Uint8Array(f64.buffer);
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
function float(at: number, n: 4 | 8): number {
  for (let i = 0; i < n; i++) fb[LITTLE ? n - 1 - i : i] = b[at + i]!;
  return n === 8 ? f64[0]! : f32[0]!;
}

/** A number (any integer or float form); NO for anything else. */
function num(): number | typeof NO {
  if (pos >= b.length) return NO;
  const h = b[pos]!;
  const left = b.length - pos;
  if (h < 0x80) {
    pos++;
    return h;
  }
  if (h >= 0xe0) {
    pos++;
    return h - 0x100;
  }
  switch (h) {
    case 0xcb:
      if (left < 9) return NO;
      pos += 9;
      return float(pos - 8, 8);
    case 0xca:
      if (left < 5) return NO;
      pos += 5;
      return float(pos - 4, 4);
    case 0xcc:
      if (left < 2) return NO;
      pos += 2;
      return b[pos - 1]!;
    case 0xcd:
      if (left < 3) return NO;
      pos += 3;
      return u16(pos - 2);
    case 0xce:
      if (left < 5) return NO;
      pos += 5;
      return u32(pos - 4);
    case 0xd0:
      if (left < 2) return NO;
      pos += 2;
      return (b[pos - 1]! << 24) >> 24;
    case 0xd1:
      if (left < 3) return NO;
      pos += 3;
      return (u16(pos - 2) << 16) >> 16;
    case 0xd2:
      if (left < 5) return NO;
      pos += 5;
      return u32(pos - 4) | 0;
    case 0xcf: // uint 64 (timestamps in ms pass 2^32), computed as the library does
      if (left < 9) return NO;
      pos += 9;
      return u32(pos - 8) * 4294967296 + u32(pos - 4);
    case 0xd3: // int 64
      if (left < 9) return NO;
      pos += 9;
      return (u32(pos - 8) | 0) * 4294967296 + u32(pos - 4);
    default:
      return NO;
  }
}

/** A payload: nil, a boolean, a number, an ASCII string or a binary (a view, as the library's). */
function payload(): unknown {
  if (pos >= b.length) return NO;
  const h = b[pos]!;
  if (h === 0xc0) {
    pos++;
    return null;
  }
  if (h === 0xc2 || h === 0xc3) {
    pos++;
    return h === 0xc3;
  }
  if (h === 0xc4 || h === 0xc5 || h === 0xc6) {
    const head = h === 0xc4 ? 2 : h === 0xc5 ? 3 : 5;
    if (pos + head > b.length) return NO;
    const n = h === 0xc4 ? b[pos + 1]! : h === 0xc5 ? u16(pos + 1) : u32(pos + 1);
    const at = pos + head;
    if (at + n > b.length) return NO;
    pos = at + n;
    return b.subarray(at, at + n);
  }
  if ((h >= 0xa0 && h <= 0xbf) || h === 0xd9 || h === 0xda) return str(NO_SLOT);
  return num();
}

function notification(): PubsubNotification | undefined {
  if (!match(ROLE_NOTE)) return undefined;
  const subscription_id = str(SLOT_SID);
  if (subscription_id === NO || !match(NOTE_MESSAGE)) return undefined;
  const message = noteMessage();
  if (message === undefined || pos !== b.length) return undefined;
  return { role: "pubsub-notification", subscription_id, message };
}

/**
 * The length of a non-empty array (fixarray, array 16); NO for anything else: an empty array
 * (the schema's minItems is the generic path's to report) or an array 32 (65,535 messages of
 * 13 values each stay below MAX_FRAME_ELEMENTS, which the generic path checks beyond that).
 */
function arrayLength(): number | typeof NO {
  if (pos >= b.length) return NO;
  const h = b[pos]!;
  if (h > 0x90 && h <= 0x9f) {
    pos++;
    return h - 0x90;
  }
  if (h === 0xdc && pos + 3 <= b.length) {
    pos += 3;
    return u16(pos - 2);
  }
  return NO;
}

function notificationBatch(): PubsubNotificationBatch | undefined {
  if (!match(ROLE_NOTE_BATCH)) return undefined;
  const subscription_id = str(SLOT_SID);
  if (subscription_id === NO || !match(K_MESSAGES)) return undefined;
  const n = arrayLength();
  // Each message takes well over 8 bytes: a count the input cannot hold is not ours to read.
  if (n === NO || n * 8 > b.length - pos) return undefined;
  const messages: PubsubNotificationMessage[] = new Array(n);
  for (let i = 0; i < n; i++) {
    if (!match(MESSAGE_HEAD)) return undefined;
    const m = noteMessage();
    if (m === undefined) return undefined;
    messages[i] = m;
  }
  if (pos !== b.length) return undefined;
  return { role: "pubsub-notification-batch", subscription_id, messages };
}

/** `{topic, payload, headers: {}, message_id, publisher, timestamp}` after "topic". */
function noteMessage(): PubsubNotificationMessage | undefined {
  const topic = str(SLOT_TOPIC);
  if (topic === NO || topic === "" || !match(K_PAYLOAD)) return undefined;
  const p = payload();
  if (p === NO || !match(K_HEADERS_EMPTY) || !match(K_MESSAGE_ID)) return undefined;
  const message_id = str(NO_SLOT);
  if (message_id === NO || message_id === "" || !match(K_PUBLISHER)) return undefined;
  const publisher = str(SLOT_PUBLISHER);
  if (publisher === NO || !match(K_TIMESTAMP)) return undefined;
  const timestamp = num();
  // The schema's Number refuses NaN and infinities; the generic path says so.
  if (timestamp === NO || !Number.isFinite(timestamp)) return undefined;
  return { topic, payload: p, headers: {}, message_id, publisher, timestamp };
}

function ack(): PubsubAck | undefined {
  if (!match(ROLE_ACK)) return undefined;
  const u = str(NO_SLOT);
  if (u === NO || !match(K_SUCCESS) || pos >= b.length) return undefined;
  const s = b[pos];
  if (s !== 0xc3 && s !== 0xc2) return undefined;
  pos++;
  if (!match(K_MESSAGE_ID)) return undefined;
  const message_id = str(NO_SLOT);
  if (message_id === NO || pos !== b.length) return undefined;
  return { role: "pubsub-ack", u, success: s === 0xc3, message_id };
}

function publish(): PubsubPublish | undefined {
  if (!match(ROLE_PUB)) return undefined;
  const topic = str(SLOT_TOPIC);
  if (topic === NO || topic === "" || !match(K_PAYLOAD)) return undefined;
  const p = payload();
  if (p === NO || !match(K_U)) return undefined;
  const u = str(NO_SLOT);
  if (u === NO || pos !== b.length) return undefined;
  return { role: "pubsub-publish", message: { topic, payload: p }, u };
}

function publishBatch(): PubsubPublishBatch | undefined {
  if (!match(ROLE_PUB_BATCH)) return undefined;
  const u = str(NO_SLOT);
  if (u === NO || !match(K_MESSAGES)) return undefined;
  const n = arrayLength();
  if (n === NO || n > MAX_PUBSUB_BATCH || n * 8 > b.length - pos) return undefined;
  const messages: PubsubMessage[] = new Array(n);
  for (let i = 0; i < n; i++) {
    if (!match(PUB_MESSAGE_HEAD)) return undefined;
    const topic = str(SLOT_TOPIC);
    if (topic === NO || topic === "" || !match(K_PAYLOAD)) return undefined;
    const p = payload();
    if (p === NO) return undefined;
    messages[i] = { topic, payload: p };
  }
  if (pos !== b.length) return undefined;
  return { role: "pubsub-publish-batch", u, messages };
}

/**
 * The frame in `bytes` when it is a plain publish, a publish ack, a notification or one of the
 * two batches (of plain publishes, of notifications) in the layout of the template encoders; `undefined` otherwise (then decode it generically). What
 * it returns is what the generic decoder returns for the same bytes, and valid.
 */
export function decodePubsubTemplate(bytes: Uint8Array): Frame | undefined {
  // map(3) or map(4), then "role"
  const h = bytes[0];
  if ((h !== 0x83 && h !== 0x84) || bytes.length < 16 || bytes[1] !== 0xa4) return undefined;
  b = bytes;
  pos = 1;
  let out: Frame | undefined;
  try {
    if (!match(ROLE_KEY)) return undefined;
    if (h === 0x84) out = ack();
    else {
      const r = bytes[pos];
      out = r === 0xb3 ? notification() : r === 0xb9 ? notificationBatch() : r === 0xb4 ? publishBatch() : publish();
    }
  } finally {
    // Do not hold on to the frame's bytes.
    b = EMPTY;
  }
  return out;
}
const EMPTY = new Uint8Array(0);
