/** Byte helpers shared by the backends. Keys order as unsigned bytes (`Buffer.compare`). */

import { Buffer } from "node:buffer";

/** Unsigned lexicographic comparison of two byte strings. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/**
 * The smallest key greater than every key that starts with `prefix`, or undefined when no such
 * key exists (empty prefix, or a prefix made only of 0xff bytes).
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array | undefined {
  let i = prefix.length - 1;
  while (i >= 0 && prefix[i] === 0xff) i--;
  if (i < 0) return undefined;
  const end = prefix.slice(0, i + 1);
  end[i] = end[i]! + 1;
  return end;
}

/** A Buffer view of `u` without copying. */
export function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/**
 * A binary-safe string form of a key. Latin-1 maps each byte to one UTF-16 code unit 0..255, so
 * JavaScript string comparison of these strings is exactly unsigned byte order.
 */
export function keyToString(u: Uint8Array): string {
  return asBuffer(u).toString("latin1");
}

/** The bytes of a string produced by `keyToString`, as a fresh plain Uint8Array. */
export function stringToKey(s: string): Uint8Array {
  return toPlain(Buffer.from(s, "latin1"));
}

/** A fresh plain Uint8Array copy (never a Buffer, never shared with the caller). */
export function copyBytes(u: Uint8Array): Uint8Array {
  const out = new Uint8Array(u.byteLength);
  out.set(u);
  return out;
}

/** A plain Uint8Array view of the same memory (Buffers compare unequal to Uint8Arrays in tests). */
export function toPlain(u: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(u) === Uint8Array.prototype ? u : new Uint8Array(u.buffer, u.byteOffset, u.byteLength);
}

/** UTF-8 bytes of a string. */
export function utf8(s: string): Uint8Array {
  return toPlain(Buffer.from(s, "utf8"));
}
