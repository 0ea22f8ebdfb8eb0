import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeFrame, findIntactFrame, readFrame } from "./frame.js";

const payload = fc.uint8Array({ minLength: 1, maxLength: 64 });

describe("frames", () => {
  it("property: frames written back to back read back in order", () => {
    fc.assert(
      fc.property(fc.array(payload, { maxLength: 20 }), (payloads) => {
        const buf = Buffer.concat(payloads.map((p) => encodeFrame(p)));
        let off = 0;
        for (const p of payloads) {
          const f = readFrame(buf, off);
          if (typeof f === "string") return false;
          expect(new Uint8Array(f.payload)).toEqual(p);
          off = f.end;
        }
        return off === buf.length;
      }),
    );
  });

  it("property: findIntactFrame finds the next frame after damage, and none in random bytes", () => {
    fc.assert(
      fc.property(fc.array(payload, { minLength: 2, maxLength: 10 }), fc.nat(), fc.uint8Array({ maxLength: 256 }), (payloads, pick, noise) => {
        const frames = payloads.map((p) => encodeFrame(p));
        const buf = Buffer.concat(frames);
        const k = pick % (frames.length - 1);
        const at = frames.slice(0, k).reduce((n, f) => n + f.length, 0);
        // Damage frame k's length field: the scan from just after it finds frame k+1 (or,
        // with negligible probability, a CRC collision earlier, which is still "intact after").
        buf.writeUInt32LE(0xfffffff0, at);
        const next = at + frames[k]!.length;
        const found = findIntactFrame(buf, at + 1);
        expect(found).toBeGreaterThan(at);
        expect(found).toBeLessThanOrEqual(next);
        // Random bytes hold no intact frame unless a 32-bit CRC agrees by chance.
        expect(findIntactFrame(noise, 0)).toBe(-1);
      }),
    );
  });

  it("looks no further than maxScan and skips implausible payload starts", () => {
    const buf = Buffer.concat([Buffer.alloc(100, 0xee), encodeFrame(new Uint8Array([0x91, 1]))]);
    expect(findIntactFrame(buf, 0)).toBe(100);
    expect(findIntactFrame(buf, 0, 100)).toBe(-1);
    expect(findIntactFrame(buf, 0, 101)).toBe(100);
    expect(findIntactFrame(buf, 0, undefined, (b) => b !== 0x91)).toBe(-1);
  });
});
