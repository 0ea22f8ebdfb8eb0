import { encode } from "@msgpack/msgpack";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_FRAME_ELEMENTS, MAX_NESTING_DEPTH, decodeFrame } from "./codec.js";
import { scanJsonDepth, scanJsonFrame, scanMsgpackDepth, scanMsgpackFrame } from "./depth-scan.js";
import { MAX_COMMANDS_PER_REQUEST } from "./schemas.js";
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

/** Reference: values in a frame as the scans count them (containers, scalars, map keys and values). */
function countOf(v: unknown): number {
  if (typeof v !== "object" || v === null || ArrayBuffer.isView(v) || v instanceof Date) return 1;
  if (Array.isArray(v)) return v.reduce((n: number, c) => n + countOf(c), 1);
  return Object.values(v).reduce((n: number, c) => n + 1 + countOf(c), 1);
}

const NO_DEPTH = { maxDepth: 1000, maxCommands: Number.POSITIVE_INFINITY };

describe("content limits (values in a frame, commands in a request)", () => {
  it("property: the MessagePack scan counts exactly the values of the frame", () => {
    fc.assert(
      fc.property(deepValue, fc.integer({ min: 1, max: 40 }), (v, max) => {
        const r = scanMsgpackFrame(encode(v), { ...NO_DEPTH, maxElements: max });
        expect(r.ok).toBe(countOf(v) <= max);
        if (!r.ok) expect(r.limit).toBe("elements");
      }),
      { numRuns: 1000 },
    );
  });

  it("property: the JSON scan counts exactly the values of the text (whitespace, brackets in strings)", () => {
    fc.assert(
      fc.property(deepValue, fc.integer({ min: 1, max: 40 }), fc.boolean(), (v, max, pretty) => {
        const text = JSON.stringify(v, null, pretty ? 2 : undefined);
        const r = scanJsonFrame(text, { ...NO_DEPTH, maxElements: max });
        expect(r.ok).toBe(countOf(JSON.parse(text)) <= max);
      }),
      { numRuns: 1000 },
    );
  });

  it("never throws on arbitrary input", () => {
    const limits = { maxDepth: 8, maxElements: 10, maxCommands: 2 };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.string({ unit: "binary", maxLength: 100 }), (b, t) => {
        scanMsgpackFrame(b, limits);
        scanJsonFrame(t, limits);
      }),
      { numRuns: 1000 },
    );
  });

  const cmds = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `c${i}`, fun: "echo", args: [i] }));

  it("a 3 MB frame of 100 000 commands is refused in milliseconds with 1002 naming the limit, keeping u", () => {
    const frame = { role: "rpc", u: "flood", cmds: cmds(100_000) };
    const bytes = encode(frame);
    const text = JSON.stringify(frame);
    expect(bytes.length).toBeGreaterThan(2_500_000);
    decodeFrame(bytes, "msgpack"); // warm-up
    decodeFrame(text, "json");
    for (const [data, enc] of [[bytes, "msgpack"], [text, "json"]] as const) {
      const t0 = performance.now();
      const res = decodeFrame(data, enc);
      const ms = performance.now() - t0;
      expect(res).toMatchObject({
        ok: false,
        u: "flood",
        error: { code: 1002, details: { path: "/cmds", reason: `/cmds must not have more than ${MAX_COMMANDS_PER_REQUEST} items (limit MAX_COMMANDS_PER_REQUEST)` } },
      });
      // Decoding and checking the schema took seconds before the scan refused it.
      expect(ms, enc).toBeLessThan(250);
    }
    // The limit itself still holds exactly.
    expect(decodeFrame(encode({ role: "rpc", u: "ok", cmds: cmds(MAX_COMMANDS_PER_REQUEST) }), "msgpack").ok).toBe(true);
    expect(decodeFrame(JSON.stringify({ role: "rpc", u: "ok", cmds: cmds(MAX_COMMANDS_PER_REQUEST) }), "json").ok).toBe(true);
  });

  it("a `cmds` key written as str 8 does not slip past the command limit", () => {
    const bytes = encode({ role: "rpc", u: "x", zzzz: cmds(MAX_COMMANDS_PER_REQUEST + 1) });
    // Rewrite the fixstr key "zzzz" (a4 7a 7a 7a 7a) as str 8 "cmds" (d9 04 63 6d 64 73).
    const at = bytes.findIndex((b, i) => b === 0xa4 && bytes[i + 1] === 0x7a && bytes[i + 2] === 0x7a);
    const patched = new Uint8Array(bytes.length + 1);
    patched.set(bytes.subarray(0, at));
    patched.set([0xd9, 0x04, 0x63, 0x6d, 0x64, 0x73], at);
    patched.set(bytes.subarray(at + 5), at + 6);
    expect(scanMsgpackFrame(patched, { maxDepth: 64, maxElements: 1e9, maxCommands: MAX_COMMANDS_PER_REQUEST })).toEqual({ ok: false, limit: "commands", u: "x" });
  });

  it("a frame of more than MAX_FRAME_ELEMENTS values is refused before decoding; the limit can be set per call", () => {
    const args = new Array<number>(MAX_FRAME_ELEMENTS).fill(1);
    const frame = { role: "rpc", u: "wide", cmds: [{ name: "a", fun: "echo", args }] };
    const res = decodeFrame(encode(frame), "msgpack");
    expect(res).toMatchObject({ ok: false, u: "wide", error: { code: 1002, details: { reason: `frame holds more than ${MAX_FRAME_ELEMENTS} values (limit maxElements, default MAX_FRAME_ELEMENTS)` } } });
    const json = decodeFrame(JSON.stringify(frame), "json");
    expect(json).toMatchObject({ ok: false, u: "wide", error: { code: 1002 } });
    // role, "rpc", u, "wide", cmds, [..] , {..}, name, "a", fun, "echo", args, [..] = 14 values around the args.
    const small = { role: "rpc", u: "s", cmds: [{ name: "a", fun: "echo", args: [1, 2, 3] }] };
    expect(countOf(small)).toBe(17);
    for (const enc of ["msgpack", "json"] as const) {
      const data = enc === "msgpack" ? encode(small) : JSON.stringify(small);
      expect(decodeFrame(data, enc, { maxElements: 17 }).ok, enc).toBe(true);
      expect(decodeFrame(data, enc, { maxElements: 16 }), enc).toMatchObject({ ok: false, u: "s", error: { code: 1002 } });
    }
    expect(decodeFrame(encode(small), "msgpack", { maxElements: 0 })).toMatchObject({ ok: false, error: { code: 1002, details: { path: "maxElements" } } });
  });
});
