import { encode } from "@msgpack/msgpack";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_NESTING_DEPTH, decodeFrame } from "./codec.js";
import { scanJsonDepth, scanMsgpackDepth } from "./depth-scan.js";
import { wireValue } from "./frame-arbitraries.js";

/** Reference: nesting depth of arrays/objects (binary and dates are leaves), root level 1. */
function depthOf(v: unknown): number {
  if (typeof v !== "object" || v === null || ArrayBuffer.isView(v) || v instanceof Date) return 0;
  const children = Array.isArray(v) ? v : Object.values(v);
  let max = 0;
  for (const c of children) max = Math.max(max, depthOf(c));
  return 1 + max;
}

/** Wire values nested deeper than wireValue goes, with binary, dates and wide numbers mixed in. */
const deepValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "medium", maxDepth: 9 },
    wireValue,
    fc.uint8Array({ maxLength: 300 }),
    fc.date({ noInvalidDate: true }),
    fc.constantFrom(2 ** 40, -(2 ** 40), 0.1, 255, 65_536, -129, "x".repeat(40), "y".repeat(300), "[{\"\\"),
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 4 }).filter((k) => k !== "__proto__"), tie("value"), { maxKeys: 3 }),
  ),
})).value;

describe("scanMsgpackDepth", () => {
  it("agrees with the reference depth for every limit", () => {
    fc.assert(
      fc.property(deepValue, fc.integer({ min: 0, max: 10 }), (v, max) => {
        expect(scanMsgpackDepth(encode(v), max).tooDeep).toBe(depthOf(v) > max);
      }),
      { numRuns: 1000 },
    );
  });

  it("handles 16- and 32-bit container headers", () => {
    const wide = Array.from({ length: 70_000 }, (_, i) => (i % 1000 === 0 ? [[i]] : i));
    expect(scanMsgpackDepth(encode(wide), 3).tooDeep).toBe(false);
    expect(scanMsgpackDepth(encode(wide), 2).tooDeep).toBe(true);
    const wideMap = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i === 19 ? { a: [1] } : i]));
    expect(scanMsgpackDepth(encode(wideMap), 3).tooDeep).toBe(false);
    expect(scanMsgpackDepth(encode(wideMap), 2).tooDeep).toBe(true);
  });

  it("recovers a top-level string u seen before the deep part", () => {
    const deep = (n: number) => {
      let v: unknown = 1;
      for (let i = 0; i < n; i++) v = [v];
      return v;
    };
    expect(scanMsgpackDepth(encode({ role: "rpc", u: "abc", x: deep(10) }), 5)).toEqual({ tooDeep: true, u: "abc" });
    expect(scanMsgpackDepth(encode({ role: "rpc", u: "é".repeat(40), x: deep(10) }), 5)).toEqual({ tooDeep: true, u: "é".repeat(40) });
    expect(scanMsgpackDepth(encode({ role: "rpc", u: 5, x: deep(10) }), 5)).toEqual({ tooDeep: true, u: null });
    // A nested "u" is not the frame's.
    expect(scanMsgpackDepth(encode({ role: "rpc", y: { u: "inner" }, x: deep(10) }), 5)).toEqual({ tooDeep: true, u: null });
    // A "u" value is not a key.
    expect(scanMsgpackDepth(encode({ role: "u", a: "b", x: deep(10) }), 5)).toEqual({ tooDeep: true, u: null });
  });

  it("never throws on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.nat({ max: 70 }), (bytes, max) => {
        scanMsgpackDepth(bytes, max);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("scanJsonDepth", () => {
  it("agrees with the reference depth for every limit (brackets and quotes inside strings too)", () => {
    fc.assert(
      fc.property(deepValue, fc.integer({ min: 0, max: 10 }), fc.boolean(), (v, max, pretty) => {
        const text = JSON.stringify(v, null, pretty ? 2 : undefined);
        expect(scanJsonDepth(text, max).tooDeep).toBe(depthOf(JSON.parse(text)) > max);
      }),
      { numRuns: 1000 },
    );
  });

  it("recovers a top-level string u, escapes included", () => {
    const deep = "[".repeat(20) + "]".repeat(20);
    expect(scanJsonDepth(`{"role":"rpc","u":"a\\"b\\u00e9","x":${deep}}`, 5)).toEqual({ tooDeep: true, u: 'a"bé' });
    expect(scanJsonDepth(`{ "u" : "k" , "x" : ${deep} }`, 5)).toEqual({ tooDeep: true, u: "k" });
    expect(scanJsonDepth(`{"y":{"u":"inner"},"x":${deep}}`, 5)).toEqual({ tooDeep: true, u: null });
    expect(scanJsonDepth(`{"role":"u","x":${deep}}`, 5)).toEqual({ tooDeep: true, u: null });
    expect(scanJsonDepth(`{"u":7,"x":${deep}}`, 5)).toEqual({ tooDeep: true, u: null });
  });

  it("never throws on arbitrary text", () => {
    fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 100 }), fc.nat({ max: 70 }), (t, max) => {
      scanJsonDepth(t, max);
    }), { numRuns: 500 });
  });
});

describe("decodeFrame refuses hostile depth before parsing", () => {
  it("a 2-million-deep MessagePack frame, keeping u", () => {
    const n = 2_000_000;
    const prefix = encode({ role: "rpc", u: "big", cmds: [{ name: "a", fun: "f", args: [] }] });
    // Replace the trailing empty array (0x90) of args by n nested one-element arrays.
    expect(prefix[prefix.length - 1]).toBe(0x90);
    const bytes = new Uint8Array(prefix.length + n);
    bytes.set(prefix.subarray(0, prefix.length - 1));
    bytes.fill(0x91, prefix.length - 1, prefix.length - 1 + n);
    bytes[bytes.length - 1] = 0xc0;
    const res = decodeFrame(bytes, "msgpack");
    expect(res.ok).toBe(false);
    if (!res.ok) {
      expect(res.error.code).toBe(1002);
      expect(res.u).toBe("big");
    }
  });

  it("a 2-million-deep JSON frame, keeping u", () => {
    const n = 2_000_000;
    const text = `{"role":"rpc","u":"big","cmds":[{"name":"a","fun":"f","args":${"[".repeat(n)}${"]".repeat(n)}}]}`;
    const res = decodeFrame(text, "json");
    expect(res.ok).toBe(false);
    if (!res.ok) expect([res.error.details.reason, res.u]).toEqual([`frame nesting deeper than ${MAX_NESTING_DEPTH} levels`, "big"]);
  });

  it("a large but shallow JSON frame still decodes", () => {
    const payload = Array.from({ length: 2000 }, (_, i) => ({ i, s: "[{".repeat(3) }));
    const res = decodeFrame(JSON.stringify({ role: "fabric-gossip", payload }), "json");
    expect(res.ok).toBe(true);
  });
});
