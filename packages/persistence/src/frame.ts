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
 * complete, intact frame.
 */
export function readFrame(buf: Uint8Array, offset: number): FrameAt | FrameStop {
  if (buf.length - offset < FRAME_HEADER_BYTES) return "incomplete";
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const len = view.readUInt32LE(offset);
  if (len > MAX_FRAME_PAYLOAD) return "bad-length";
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
