/**
 * Framed records: `[length u32 LE][crc32c(payload) u32 LE][payload]`. The CRC tells a complete
 * record from a torn or damaged one.
 */

import { Buffer } from "node:buffer";
import { crc32c } from "./crc32c.js";

export const FRAME_HEADER_BYTES = 8;
/** Largest payload a frame may claim; larger lengths are treated as damage. */
export const MAX_FRAME_PAYLOAD = 256 * 1024 * 1024;

/** One framed record, ready to write. */
export function encodeFrame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out.writeUInt32LE(crc32c(payload), 4);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/** Why frame parsing stopped before the end of the buffer. */
export type FrameStop = "incomplete" | "bad-length" | "bad-crc";

export interface FrameAt {
  /** Where the frame starts. */
  offset: number;
  /** Where the next frame starts. */
  end: number;
  payload: Uint8Array;
}

/**
 * Reads the frame at `offset`; returns the reason instead when the bytes there are not a
 * complete, intact frame. `maxPayload`: larger claimed lengths count as damage (a snapshot file
 * holds one larger frame).
 */
export function readFrame(buf: Uint8Array, offset: number, maxPayload = MAX_FRAME_PAYLOAD): FrameAt | FrameStop {
  if (buf.length - offset < FRAME_HEADER_BYTES) return "incomplete";
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const len = view.readUInt32LE(offset);
  if (len > maxPayload) return "bad-length";
  const start = offset + FRAME_HEADER_BYTES;
  const end = start + len;
  if (end > buf.length) return "incomplete";
  if (crc32c(buf, 0, start, end) !== view.readUInt32LE(offset + 4)) return "bad-crc";
  return { offset, end, payload: buf.subarray(start, end) };
}

/**
 * True when an intact frame starts at `offset`: used to tell a torn tail (nothing valid after
 * the damage) from damage in the middle of a file (valid records follow it).
 */
export function intactFrameAt(buf: Uint8Array, offset: number): boolean {
  return typeof readFrame(buf, offset) === "object";
}

/** How far past a damaged frame {@link findIntactFrame} looks for an intact one. */
export const DAMAGE_SCAN_BYTES = 4 * 1024 * 1024;

/**
 * The offset of the first intact frame starting in `[from, from + maxScan)`, or -1. Used when a
 * frame's length field is damaged: its claimed end says nothing, so the only way to tell a torn
 * tail from damage in the middle is to look for any intact record further on. `plausible`
 * filters candidate payloads by their first byte before the CRC is computed (cheap, and it
 * keeps a scan of random bytes linear in practice). A false match needs a 32-bit CRC to agree
 * by chance.
 */
export function findIntactFrame(
  buf: Uint8Array,
  from: number,
  maxScan: number = DAMAGE_SCAN_BYTES,
  plausible: (firstByte: number) => boolean = () => true,
): number {
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const last = Math.min(buf.length - FRAME_HEADER_BYTES, from + maxScan - 1);
  for (let off = from; off <= last; off++) {
    const len = view.readUInt32LE(off);
    const start = off + FRAME_HEADER_BYTES;
    if (len === 0 || len > buf.length - start || !plausible(buf[start]!)) continue;
    if (crc32c(buf, 0, start, start + len) === view.readUInt32LE(off + 4)) return off;
  }
  return -1;
}
