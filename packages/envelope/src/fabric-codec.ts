/**
 * Template encoder of the node-to-node `fabric-message` frame. Every remote call, result and
 * pub/sub delivery is one of these; the generic encoder spent most of its time UTF-8 counting
 * and encoding the 17 constant keys of a UnifiedMessage and its headers.
 */
import { Encoder } from "@msgpack/msgpack";
import { MAX_NESTING_DEPTH, encodeFrame, fastEncoderStrings } from "./codec.js";
import type { UnifiedMessage } from "./schemas.js";
import { begin, finish, keyCount, latin1, put, putByte, putNum, putStr, putStrArray } from "./template-writer.js";

// The message's `payload` sits two levels below the frame (frame.payload.payload): this
// encoder's depth limit is 2 lower, exactly what encodeFrame accepts.
const payloadEncoder = fastEncoderStrings(new Encoder({ ignoreUndefined: true, maxDepth: MAX_NESTING_DEPTH + 1 - 2 }));

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
  begin();
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
  putByte(0x80 | headerKeys);
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
  return finish();
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
