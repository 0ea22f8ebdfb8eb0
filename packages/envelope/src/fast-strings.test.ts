import { Decoder, Encoder } from "@msgpack/msgpack";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeFrame, encodeFrame, fastEncoderStringsActive, fastStringsActive } from "./codec.js";

const stock = new Decoder();
const encoder = new Encoder();
const stockEncoder = new Encoder({ ignoreUndefined: true });
const str = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.stringMatching(/^[0-9A-Z]{26}$/),
  fc.constantFrom("mpreg.rpc.result", "fire_and_forget", "pubsub", "a", ""),
);
const value = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: "small", maxDepth: 3 }, str, fc.integer(), fc.constant(null), fc.array(tie("v"), { maxLength: 5 }), fc.dictionary(str.filter((k) => k !== "__proto__"), tie("v"), { maxKeys: 5 })),
})).v;

describe("the codec's decoder (short strings on a fast path)", () => {
  it("is active with the installed @msgpack/msgpack", () => {
    expect(fastStringsActive).toBe(true);
  });

  it("decodes every frame exactly as the stock decoder (property)", () => {
    fc.assert(
      fc.property(fc.array(value, { maxLength: 4 }), (args) => {
        const frame = { role: "rpc", u: "u", cmds: [{ name: "n", fun: "f", args }] };
        const bytes = encodeFrame(frame, "msgpack");
        const res = decodeFrame(bytes, "msgpack");
        expect(res.ok).toBe(true);
        expect(res.ok && res.frame).toEqual(stock.decode(bytes));
        // Decoded again (the key cache now holds its strings): the same.
        const again = decodeFrame(encoder.encode(frame), "msgpack");
        expect(again.ok && again.frame).toEqual(frame);
      }),
      { numRuns: 400 },
    );
  });

  it("encodes every frame to exactly the bytes of the stock encoder (property)", () => {
    expect(fastEncoderStringsActive).toBe(true);
    fc.assert(
      fc.property(fc.array(value, { maxLength: 4 }), (args) => {
        const frame = { role: "rpc", u: "u", cmds: [{ name: "n", fun: "f", args }] };
        expect(Array.from(encodeFrame(frame, "msgpack"))).toEqual(Array.from(stockEncoder.encode(frame)));
      }),
      { numRuns: 400 },
    );
  });
});
