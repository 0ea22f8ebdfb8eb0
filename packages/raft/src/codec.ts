import { MpregError } from "@mpreg/envelope";
import type { ConfChange, ConfState, Entry, HardState } from "./types.js";

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();
const VERSION = 1;
const HEADER = 1 + 1 + 8 + 8 + 4;

/**
 * Binary form of a log entry in the AppendLog: version u8, type u8 (0 normal, 1 conf),
 * term f64, index f64, conf-change JSON length u32, the JSON, then the data bytes.
 * The entry's own index is stored so recovery can check the log is where it should be.
 */
export function encodeEntry(e: Entry): Uint8Array {
  const conf = e.conf ? textEncoder.encode(JSON.stringify(e.conf)) : new Uint8Array(0);
  const out = new Uint8Array(HEADER + conf.length + e.data.length);
  const dv = new DataView(out.buffer);
  dv.setUint8(0, VERSION);
  dv.setUint8(1, e.type === "conf" ? 1 : 0);
  dv.setFloat64(2, e.term);
  dv.setFloat64(10, e.index);
  dv.setUint32(18, conf.length);
  out.set(conf, HEADER);
  out.set(e.data, HEADER + conf.length);
  return out;
}

export function decodeEntry(b: Uint8Array): Entry {
  if (b.length < HEADER) throw MpregError.invalid("raft: stored entry is truncated", "entry");
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint8(0) !== VERSION) throw MpregError.invalid("raft: unknown stored entry version", "entry");
  const type = dv.getUint8(1) === 1 ? "conf" : "normal";
  const term = dv.getFloat64(2);
  const index = dv.getFloat64(10);
  const clen = dv.getUint32(18);
  if (HEADER + clen > b.length) throw MpregError.invalid("raft: stored entry is truncated", "entry");
  const e: Entry = { index, term, type, data: b.slice(HEADER + clen) };
  if (clen > 0) e.conf = JSON.parse(textDecoder.decode(b.subarray(HEADER, HEADER + clen))) as ConfChange;
  return e;
}

export function encodeJson(v: unknown): Uint8Array {
  return textEncoder.encode(JSON.stringify(v));
}

export function decodeJson<T>(b: Uint8Array): T {
  return JSON.parse(textDecoder.decode(b)) as T;
}

export function isHardState(v: unknown): v is HardState {
  const h = v as HardState;
  return typeof h === "object" && h !== null && typeof h.term === "number" && typeof h.commit === "number" &&
    (h.vote === null || typeof h.vote === "string");
}

export function isConfState(v: unknown): v is ConfState {
  const c = v as ConfState;
  return typeof c === "object" && c !== null && Array.isArray(c.voters) && Array.isArray(c.learners);
}
