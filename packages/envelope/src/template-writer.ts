/**
 * The scratch writer of the template encoders (fabric-codec.ts, pubsub-codec.ts): a frame is
 * assembled here from constant byte templates and the few variable values, then copied out
 * into the shared slab. Encoding is synchronous, so one scratch buffer serves every encoder;
 * `begin()` resets it.
 */
import { allocOut } from "./codec.js";

/** One byte per character (the templates hold MessagePack bytes, not UTF-8 text). */
export const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

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

/** Appends a template. */
export function put(t: Uint8Array): void {
  const n = t.length;
  room(n);
  // A loop beats `set` for the short key templates (its per-call cost dominated them).
  if (n <= 48) {
    const b = buf;
    let at = pos;
    for (let i = 0; i < n; i++) b[at++] = t[i]!;
    pos = at;
    return;
  }
  buf.set(t, pos);
  pos += n;
}

/** Writes an ASCII string of at most 255 characters (fixstr or str8); false for anything else. */
export function putStr(s: unknown): boolean {
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

/**
 * Writes a binary (bin 8/16/32 and its bytes), as @msgpack/msgpack writes a Uint8Array, without
 * going through its encoder (whose per-call setup cost more than the copy for small payloads).
 */
export function putBin(v: Uint8Array): void {
  const n = v.byteLength;
  room(n + 5);
  if (n < 0x100) {
    buf[pos++] = 0xc4;
    buf[pos++] = n;
  } else if (n < 0x10000) {
    buf[pos++] = 0xc5;
    view.setUint16(pos, n);
    pos += 2;
  } else {
    buf[pos++] = 0xc6;
    view.setUint32(pos, n);
    pos += 4;
  }
  buf.set(v, pos);
  pos += n;
}

/** Writes a number in the form @msgpack/msgpack picks; false for the rare forms left to it. */
export function putNum(v: unknown): boolean {
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

export function putStrArray(a: unknown): boolean {
  if (!Array.isArray(a) || a.length >= 16) return false;
  room(1);
  buf[pos++] = 0x90 | a.length;
  for (let i = 0; i < a.length; i++) if (!putStr(a[i])) return false;
  return true;
}

/** Own enumerable keys of a plain object (for-in: no array allocated). */
export function keyCount(o: object): number {
  let n = 0;
  for (const k in o) if (k !== undefined) n++;
  return n;
}

/** Starts a new frame. */
export function begin(): void {
  pos = 0;
}

/** Writes one raw byte (a map or array header). */
export function putByte(b: number): void {
  room(1);
  buf[pos++] = b;
}

/** The scratch buffer grown past this for one large frame is released afterwards. */
const KEEP_BYTES = 64 * 1024;

/** The frame written since `begin()`, copied out. */
export function finish(): Uint8Array {
  const out = allocOut(pos);
  out.set(buf.subarray(0, pos));
  if (buf.length > KEEP_BYTES) {
    buf = new Uint8Array(4096);
    view = new DataView(buf.buffer);
  }
  return out;
}
