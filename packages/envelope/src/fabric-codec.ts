/**
 * Template encoder of the node-to-node `fabric-message` frame. Every remote call, result and
 * pub/sub delivery is one of these; the generic encoder spent most of its time UTF-8 counting
 * and encoding the 17 constant keys of a UnifiedMessage and its headers.
 */
import { Encoder } from "@msgpack/msgpack";
import { MAX_NESTING_DEPTH, allocOut, encodeFrame } from "./codec.js";
import type { UnifiedMessage } from "./schemas.js";

// The message's `payload` sits two levels below the frame (frame.payload.payload): this
// encoder's depth limit is 2 lower, exactly what encodeFrame accepts.
const payloadEncoder = new Encoder({ ignoreUndefined: true, maxDepth: MAX_NESTING_DEPTH + 1 - 2 });

/** One byte per character (the templates hold MessagePack bytes, not UTF-8 text). */
const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
// map(2) "role": "fabric-message", "payload": map(7) "message_id"
const HEAD = latin1("\x82\xa4role\xaefabric-message\xa7payload\x87\xaamessage_id");
const K_TOPIC = latin1("\xa5topic");
const K_MESSAGE_TYPE = latin1("\xacmessage_type");
const K_DELIVERY = latin1("\xa8delivery");
const K_PAYLOAD = latin1("\xa7payload");
const K_TIMESTAMP = latin1("\xa9timestamp");
const K_HEADERS = latin1("\xa7headers");
const K_CORRELATION_ID = latin1("\xaecorrelation_id");
const K_TRACE_ID = latin1("\xa8trace_id");
const K_SOURCE_NODE = latin1("\xabsource_node");
const K_SOURCE_CLUSTER = latin1("\xaesource_cluster");
const K_ROUTING_PATH = latin1("\xacrouting_path");
const K_FEDERATION_PATH = latin1("\xaffederation_path");
const K_HOPS_REMAINING = latin1("\xaehops_remaining");
const K_PRIORITY = latin1("\xa8priority");
const K_TARGET_CLUSTER = latin1("\xaetarget_cluster");
const K_TARGET_NODE = latin1("\xabtarget_node");

// The scratch buffer the frame is assembled in, then copied out (encoding is synchronous).
let buf = new Uint8Array(4096);
let view = new DataView(buf.buffer);
let pos = 0;

function room(n: number): void {
  if (pos + n <= buf.length) return;
  const bigger = new Uint8Array(Math.max(buf.length * 2, pos + n));
  bigger.set(buf.subarray(0, pos));
  buf = bigger;
  view = new DataView(bigger.buffer);
}

function put(t: Uint8Array): void {
  room(t.length);
  buf.set(t, pos);
  pos += t.length;
}

/** Writes an ASCII string of at most 255 characters (fixstr or str8); false for anything else. */
function putStr(s: unknown): boolean {
  if (typeof s !== "string") return false;
  const n = s.length;
  if (n > 255) return false;
  room(n + 2);
  let at = pos;
  if (n < 32) {
    buf[at++] = 0xa0 | n;
  } else {
    buf[at++] = 0xd9;
    buf[at++] = n;
  }
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return false;
    buf[at++] = c;
  }
  pos = at;
  return true;
}

/** Writes a number in the form @msgpack/msgpack picks; false for the rare forms left to it. */
function putNum(v: unknown): boolean {
  if (typeof v !== "number") return false;
  room(9);
  if (Number.isSafeInteger(v)) {
    if (v >= 0) {
      if (v < 0x80) {
        buf[pos++] = v;
      } else if (v < 0x100) {
        buf[pos++] = 0xcc;
        buf[pos++] = v;
      } else if (v < 0x10000) {
        buf[pos++] = 0xcd;
        view.setUint16(pos, v);
        pos += 2;
      } else if (v < 0x1_0000_0000) {
        buf[pos++] = 0xce;
        view.setUint32(pos, v);
        pos += 4;
      } else {
        buf[pos++] = 0xcf;
        view.setUint32(pos, v / 0x1_0000_0000);
        view.setUint32(pos + 4, v);
        pos += 8;
      }
    } else if (v >= -0x20) {
      buf[pos++] = 0xe0 | (v + 0x20);
    } else if (v >= -0x80) {
      buf[pos++] = 0xd0;
      view.setInt8(pos++, v);
    } else if (v >= -0x8000) {
      buf[pos++] = 0xd1;
      view.setInt16(pos, v);
      pos += 2;
    } else if (v >= -0x8000_0000) {
      buf[pos++] = 0xd2;
      view.setInt32(pos, v);
      pos += 4;
    } else {
      return false;
    }
  } else {
    buf[pos++] = 0xcb;
    view.setFloat64(pos, v);
    pos += 8;
  }
  return true;
}

function putStrArray(a: unknown): boolean {
  if (!Array.isArray(a) || a.length >= 16) return false;
  room(1);
  buf[pos++] = 0x90 | a.length;
  for (let i = 0; i < a.length; i++) if (!putStr(a[i])) return false;
  return true;
}

function keyCount(o: object): number {
  let n = 0;
  for (const k in o) if (k !== undefined) n++;
  return n;
}

/** The template path; undefined when the message is not of the common shape. */
function encodeTemplate(m: UnifiedMessage): Uint8Array | undefined {
  const h = m.headers as UnifiedMessage["headers"] | null | undefined;
  if (typeof m !== "object" || m === null || typeof h !== "object" || h === null || m.payload === undefined) return undefined;
  const tc = h.target_cluster;
  const tn = h.target_node;
  const headerKeys = 8 + (tc === undefined ? 0 : 1) + (tn === undefined ? 0 : 1);
  // Other (or undefined-valued) keys: the generic encoder decides what to write.
  if (keyCount(m) !== 7 || keyCount(h) !== headerKeys) return undefined;
  let payload: Uint8Array;
  try {
    payload = payloadEncoder.encodeSharedRef(m.payload);
  } catch {
    return undefined;
  }
  pos = 0;
  put(HEAD);
  if (!putStr(m.message_id)) return undefined;
  put(K_TOPIC);
  if (!putStr(m.topic)) return undefined;
  put(K_MESSAGE_TYPE);
  if (!putStr(m.message_type)) return undefined;
  put(K_DELIVERY);
  if (!putStr(m.delivery)) return undefined;
  put(K_PAYLOAD);
  put(payload);
  put(K_TIMESTAMP);
  if (!putNum(m.timestamp)) return undefined;
  put(K_HEADERS);
  room(1);
  buf[pos++] = 0x80 | headerKeys;
  put(K_CORRELATION_ID);
  if (!putStr(h.correlation_id)) return undefined;
  put(K_TRACE_ID);
  if (!putStr(h.trace_id)) return undefined;
  put(K_SOURCE_NODE);
  if (!putStr(h.source_node)) return undefined;
  put(K_SOURCE_CLUSTER);
  if (!putStr(h.source_cluster)) return undefined;
  put(K_ROUTING_PATH);
  if (!putStrArray(h.routing_path)) return undefined;
  put(K_FEDERATION_PATH);
  if (!putStrArray(h.federation_path)) return undefined;
  put(K_HOPS_REMAINING);
  if (!putNum(h.hops_remaining)) return undefined;
  put(K_PRIORITY);
  if (!putNum(h.priority)) return undefined;
  if (tc !== undefined) {
    put(K_TARGET_CLUSTER);
    if (!putStr(tc)) return undefined;
  }
  if (tn !== undefined) {
    put(K_TARGET_NODE);
    if (!putStr(tn)) return undefined;
  }
  const out = allocOut(pos);
  out.set(buf.subarray(0, pos));
  return out;
}

/**
 * Encodes `{role: "fabric-message", payload: msg}` as MessagePack. The constant keys come from
 * templates, in the order `createUnifiedMessage` creates them (message_id, topic, message_type,
 * delivery, payload, timestamp, headers: correlation_id, trace_id, source_node, source_cluster,
 * routing_path, federation_path, hops_remaining, priority, target_cluster?, target_node?): for
 * a message in that order the bytes are those of `encodeFrame`; for another order they decode
 * to the same frame. A message with other keys, strings that are not ASCII or longer than 255
 * characters, or anything else out of the common shape goes through `encodeFrame` (same
 * result, same errors).
 *
 * @throws {MpregError} code 1002 when the frame cannot be encoded (as encodeFrame).
 */
export function encodeFabricMessage(msg: UnifiedMessage): Uint8Array {
  return encodeTemplate(msg) ?? encodeFrame({ role: "fabric-message", payload: msg }, "msgpack");
}
