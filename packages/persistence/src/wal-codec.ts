/**
 * MessagePack encoding of state operations (the payload of a write-ahead-log frame) and of
 * the chunks of a compacted state file.
 */

import { Decoder, Encoder } from "@msgpack/msgpack";
import type { StateOp } from "./state.js";
import { storageError } from "./errors.js";

const encoder = new Encoder();
const decoder = new Decoder();

const KV = 1;
const APPEND = 2;
const TRUNC = 3;
const DROP = 4;

export function encodeOp(op: StateOp): Uint8Array {
  switch (op.t) {
    case "kv": {
      const flat: Array<Uint8Array | null> = [];
      for (const o of op.ops) flat.push(o.k, o.v ?? null);
      return encoder.encode([KV, op.ns, flat]);
    }
    case "append":
      return encoder.encode([APPEND, op.ns, op.first, op.records]);
    case "trunc":
      return encoder.encode([TRUNC, op.ns, op.from]);
    case "drop":
      return encoder.encode([DROP, op.ns, op.upTo]);
  }
}

function bad(what: string): never {
  throw storageError("corrupt", `undecodable record: ${what}`);
}

const isBytes = (x: unknown): x is Uint8Array => x instanceof Uint8Array;
const isIndex = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x) && x >= 0;

/** Decodes a payload, copying byte arrays so they do not pin the buffer read from disk. */
export function decodeOp(payload: Uint8Array): StateOp {
  let v: unknown;
  try {
    v = decoder.decode(payload);
  } catch (e) {
    bad((e as Error).message);
  }
  if (!Array.isArray(v) || typeof v[1] !== "string") bad("not an operation");
  const ns = v[1] as string;
  switch (v[0]) {
    case KV: {
      const flat = v[2];
      if (!Array.isArray(flat) || flat.length % 2 !== 0) bad("kv operation");
      const ops: Array<{ k: Uint8Array; v?: Uint8Array }> = [];
      for (let i = 0; i < flat.length; i += 2) {
        const k = flat[i];
        const val = flat[i + 1];
        if (!isBytes(k) || !(val === null || isBytes(val))) bad("kv operation");
        ops.push(val === null ? { k: k.slice() } : { k: k.slice(), v: val.slice() });
      }
      return { t: "kv", ns, ops };
    }
    case APPEND: {
      const [, , first, records] = v as unknown[];
      if (!isIndex(first) || first < 1 || !Array.isArray(records) || !records.every(isBytes)) bad("append");
      return { t: "append", ns, first, records: (records as Uint8Array[]).map((r) => r.slice()) };
    }
    case TRUNC:
      if (!isIndex(v[2]) || v[2] < 1) bad("truncate");
      return { t: "trunc", ns, from: v[2] };
    case DROP:
      if (!isIndex(v[2])) bad("drop");
      return { t: "drop", ns, upTo: v[2] };
    default:
      bad(`unknown operation ${String(v[0])}`);
  }
}

/** Encodes any plain value (headers and end markers of files). */
export function encodeValue(v: unknown): Uint8Array {
  return encoder.encode(v);
}

/** Decodes a plain value, throwing a `corrupt` error when the bytes are not MessagePack. */
export function decodeValue(payload: Uint8Array): unknown {
  try {
    return decoder.decode(payload);
  } catch (e) {
    bad((e as Error).message);
  }
}
