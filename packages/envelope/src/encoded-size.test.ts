import { encode } from "@msgpack/msgpack";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { scanMsgpackFrame } from "./depth-scan.js";
import { estimateEncodedSize, tallyEncodedSize, type SizeTally } from "./encoded-size.js";

const ascii = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 });
const asciiValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: "small" },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
    fc.integer({ min: -300, max: 300 }),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    ascii,
    fc.uint8Array({ maxLength: 300 }),
    fc.array(tie("v"), { maxLength: 5 }),
    fc.dictionary(ascii.filter((k) => k !== "__proto__"), tie("v"), { maxKeys: 5 }),
  ),
})).v;

/** Strings, containers and keys: the items whose header the estimate may overcount (by 4 at most). */
function headers(v: unknown): number {
  if (typeof v === "string") return 1;
  if (typeof v !== "object" || v === null) return 0;
  if (ArrayBuffer.isView(v)) return 1;
  if (Array.isArray(v)) return v.reduce((n: number, c) => n + headers(c), 1);
  return Object.entries(v).reduce((n: number, [, c]) => n + 1 + headers(c), 1);
}

describe("estimateEncodedSize", () => {
  it("property: never below the MessagePack size of ASCII data, and at most 4 bytes over per header", () => {
    fc.assert(
      fc.property(asciiValue, (v) => {
        const actual = encode(v).byteLength;
        const est = estimateEncodedSize(v);
        expect(est).toBeGreaterThanOrEqual(actual);
        expect(est).toBeLessThanOrEqual(actual + 4 * headers(v));
      }),
      { numRuns: 500 },
    );
  });

  it("counts a string by its length and binary by its byte length, in O(1)", () => {
    const mib = "x".repeat(1 << 20);
    expect(estimateEncodedSize(mib)).toBe((1 << 20) + 5);
    expect(estimateEncodedSize(new Uint8Array(1000))).toBe(1005);
    // Non-ASCII text may encode up to 3x its length: the estimate is low by that factor at most.
    const text = "é".repeat(1000);
    expect(encode(text).byteLength / estimateEncodedSize(text)).toBeLessThanOrEqual(3);
  });

  it("stops at the cap: the work is bounded by the cap, not by the value", () => {
    // A million-item array whose item reads are counted.
    let reads = 0;
    const items = new Array<string>(1_000_000).fill("a");
    const counted = new Proxy(items, {
      get(t, k, r) {
        if (typeof k === "string" && /^\d+$/.test(k)) reads++;
        return Reflect.get(t, k, r) as unknown;
      },
    });
    const partial = estimateEncodedSize(counted, 100);
    expect(partial).toBeGreaterThan(100);
    expect(reads).toBeLessThan(200);
    // One million references to one 1 MiB string: the capped walk stops after 65 of them.
    const shared = "y".repeat(1 << 20);
    const fanOut = new Array(1_000_000).fill(shared);
    const capped = estimateEncodedSize(fanOut, 64 << 20);
    expect(capped).toBeGreaterThan(64 << 20);
    expect(capped).toBeLessThan((64 << 20) + (3 << 20));
    // A partial walk is not remembered; a full one is.
    expect(estimateEncodedSize(counted, 100)).toBe(partial);
    const small = new Array(1000).fill("zz");
    const full = estimateEncodedSize(small);
    expect(full).toBe(5 + 1000 * 7);
    small.push("more"); // (values are treated as immutable: the cached size stays)
    expect(estimateEncodedSize(small)).toBe(full);
  });

  it("property: counts values exactly as the frame scan does", () => {
    fc.assert(
      fc.property(asciiValue, fc.integer({ min: 1, max: 60 }), (v, max) => {
        const t: SizeTally = { bytes: 0, values: 0 };
        const within = tallyEncodedSize(v, t, Number.POSITIVE_INFINITY, max);
        const scan = scanMsgpackFrame(encode(v), { maxDepth: 1000, maxElements: max, maxCommands: Number.POSITIVE_INFINITY });
        expect(within).toBe(scan.ok);
        if (within) {
          const full: SizeTally = { bytes: 0, values: 0 };
          tallyEncodedSize(v, full);
          expect(t.values).toBe(full.values);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("adds to a running tally across values (a reply of several results)", () => {
    const t: SizeTally = { bytes: 0, values: 0 };
    expect(tallyEncodedSize(["a", "b"], t, 100, 10)).toBe(true);
    expect(t).toEqual({ bytes: 5 + 6 + 6, values: 3 });
    expect(tallyEncodedSize({ k: [1, 2, 3] }, t, 100, 10)).toBe(true); // map, key, array, 3 items
    expect(t.values).toBe(3 + 6);
    expect(tallyEncodedSize([1, 2], t, 100, 10)).toBe(false); // 12 values > 10
  });

  it("walks any depth without recursion", () => {
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(estimateEncodedSize(deep)).toBe(200_000 * 5 + 1);
  });
});
