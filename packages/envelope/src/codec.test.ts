import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CLIENT_ROLES,
  MAX_NESTING_DEPTH,
  PEER_ROLES,
  decodeFrame,
  encodeCallRequest,
  encodeFrame,
  encodeRpcResult,
  isClientRole,
  isPeerRole,
  pubsubErrorAck,
  rpcErrorReply,
  validateFrame,
  type DecodeResult,
  type Encoding,
} from "./codec.js";
import { ErrorCode, MpregError, isMpregError } from "./errors.js";
import { ROLES, type Frame } from "./schemas.js";
import { TYPED_FIELDS, anyFrame, frameArbitraries, wireValue, wrongValueFor } from "./frame-arbitraries.js";

const ENCODINGS: Encoding[] = ["msgpack", "json"];

/** What a frame looks like after any wire trip: JSON-normal (-0 → 0, undefined dropped). */
function normal<T>(x: T): T {
  return JSON.parse(JSON.stringify(x)) as T;
}

function roundTrip(frame: object, encoding: Encoding): DecodeResult {
  return decodeFrame(encodeFrame(frame, encoding), encoding);
}

function expect1002(res: DecodeResult, u: string | null): MpregError {
  expect(res.ok).toBe(false);
  if (res.ok) throw new Error("unreachable");
  expect(res.error).toBeInstanceOf(MpregError);
  expect(res.error.code).toBe(ErrorCode.INVALID_REQUEST);
  expect(typeof res.error.details.reason).toBe("string");
  expect(res.u).toBe(u);
  return res.error;
}

/** Builds `0x91` (array of one) n times then nil: n nested arrays in MessagePack. */
function deepMsgpackArray(n: number): Uint8Array {
  const bytes = new Uint8Array(n + 1).fill(0x91);
  bytes[n] = 0xc0;
  return bytes;
}

/** Replaces the MessagePack string `marker` inside `encoded` by `replacement` bytes. */
function spliceMsgpack(encoded: Uint8Array, marker: string, replacement: Uint8Array): Uint8Array {
  const needle = [0xa0 + marker.length, ...new TextEncoder().encode(marker)];
  for (let i = 0; i + needle.length <= encoded.length; i++) {
    if (needle.every((b, j) => encoded[i + j] === b)) {
      const out = new Uint8Array(encoded.length - needle.length + replacement.length);
      out.set(encoded.subarray(0, i));
      out.set(replacement, i);
      out.set(encoded.subarray(i + needle.length), i + replacement.length);
      return out;
    }
  }
  throw new Error("marker not found");
}

describe("encodeFrame", () => {
  it("gives bytes for msgpack and text for json", () => {
    const frame = { role: "peer-goodbye" };
    expect(encodeFrame(frame, "msgpack")).toBeInstanceOf(Uint8Array);
    expect(typeof encodeFrame(frame, "json")).toBe("string");
  });

  it.each(ENCODINGS)("omits undefined fields (%s)", (enc) => {
    const res = roundTrip({ role: "rpc", u: "a", timeout_ms: undefined, cmds: [{ name: "x", fun: "f", args: undefined }] }, enc);
    expect(res.ok).toBe(true);
    if (res.ok) {
      expect("timeout_ms" in res.frame).toBe(false);
      expect(res.frame).toEqual({ role: "rpc", u: "a", cmds: [{ name: "x", fun: "f" }] });
    }
  });

  it("returns a fresh buffer each call (safe to hand to a socket)", () => {
    const a = encodeFrame({ role: "peer-goodbye", reason: "a" }, "msgpack");
    const copy = a.slice();
    encodeFrame({ role: "peer-goodbye", reason: "b" }, "msgpack");
    expect(a).toEqual(copy);
  });

  it.each(ENCODINGS)("throws MpregError 1002 for a BigInt or a cycle (%s)", (enc) => {
    const cyclic: Record<string, unknown> = { role: "fabric-gossip" };
    cyclic.payload = cyclic;
    for (const bad of [{ role: "fabric-gossip", payload: 10n }, cyclic]) {
      let thrown: unknown;
      try {
        encodeFrame(bad, enc);
      } catch (e) {
        thrown = e;
      }
      expect(isMpregError(thrown)).toBe(true);
      expect((thrown as MpregError).code).toBe(ErrorCode.INVALID_REQUEST);
      expect(String((thrown as MpregError).details.reason)).toContain(enc);
    }
  });

  it("still encodes after a failed encode (the shared encoder recovers)", () => {
    expect(() => encodeFrame({ role: "fabric-gossip", payload: 1n }, "msgpack")).toThrow();
    expect(roundTrip({ role: "peer-goodbye" }, "msgpack")).toEqual({ ok: true, frame: { role: "peer-goodbye" } });
  });

  it("carries binary data in msgpack", () => {
    const res = roundTrip({ role: "fabric-gossip", payload: new Uint8Array([1, 2, 3]) }, "msgpack");
    expect(res.ok && (res.frame as { payload: unknown }).payload).toEqual(new Uint8Array([1, 2, 3]));
  });
});

describe("decodeFrame: round trips", () => {
  for (const role of ROLES) {
    it.each(ENCODINGS)(`round-trips any valid ${role} frame (%s)`, (enc) => {
      fc.assert(
        fc.property(frameArbitraries[role], (frame) => {
          const res = roundTrip(frame, enc);
          if (!res.ok) throw new Error(`rejected: ${res.error.message}`);
          expect(res.frame).toEqual(normal(frame));
        }),
        { numRuns: 60 },
      );
    });
  }

  it("decodes JSON given as UTF-8 bytes", () => {
    const bytes = new TextEncoder().encode('{"role":"peer-goodbye","reason":"ünïcode"}');
    expect(decodeFrame(bytes, "json")).toEqual({ ok: true, frame: { role: "peer-goodbye", reason: "ünïcode" } });
  });

  it("gives msgpack maps as plain objects", () => {
    const res = roundTrip({ role: "fabric-gossip", payload: { a: { b: 1 } } }, "msgpack");
    expect(res.ok).toBe(true);
    if (res.ok) {
      expect(Object.getPrototypeOf(res.frame)).toBe(Object.prototype);
      const payload = (res.frame as { payload: { a: object } }).payload;
      expect(Object.getPrototypeOf(payload.a)).toBe(Object.prototype);
    }
  });

  it("ignores unknown fields (kept, not rejected)", () => {
    const res = decodeFrame('{"role":"pubsub-unsubscribe","u":"1","subscription_id":"s","future":true}', "json");
    expect(res.ok).toBe(true);
  });
});

describe("decodeFrame: rejections", () => {
  it("refuses undecodable input with u null", () => {
    expect1002(decodeFrame("{not json", "json"), null);
    expect1002(decodeFrame(new Uint8Array([0xc1]), "msgpack"), null); // 0xc1 is never used
    expect1002(decodeFrame(new Uint8Array([0x92, 0x01]), "msgpack"), null); // truncated
    expect1002(decodeFrame(new Uint8Array([0x01, 0x02]), "msgpack"), null); // extra bytes
    expect1002(decodeFrame(new Uint8Array([0xff, 0xfe, 0xfd]), "json"), null); // not UTF-8
    expect1002(decodeFrame("{}", "msgpack"), null); // text on the binary codec
  });

  it("recovers u from undecodable frames when it can be read, never a truncated one", () => {
    expect1002(decodeFrame('{"role":"rpc","u":"abc", broken', "json"), "abc");
    expect1002(decodeFrame('{"role":"rpc","u":"a\\u00e9c",', "json"), "aéc");
    expect1002(decodeFrame('{"role":"rpc","u":"ab', "json"), null);
    expect1002(decodeFrame('{"x":{"u":"inner"},', "json"), null);
    const bin = encodeFrame({ u: "abc", role: "rpc", x: "MARK" }, "msgpack");
    expect1002(decodeFrame(spliceMsgpack(bin, "MARK", new Uint8Array([0xc1])), "msgpack"), "abc");
    const proto = spliceMsgpack(encodeFrame({ u: "p1", role: "fabric-gossip", payload: { xxxxxxxxx: 1 } }, "msgpack"), "xxxxxxxxx", new Uint8Array([0xa9, ...new TextEncoder().encode("__proto__")]));
    expect1002(decodeFrame(proto, "msgpack"), "p1");
    expect1002(decodeFrame(bin.subarray(0, 4), "msgpack"), null); // cut inside u
  });

  it.each(ENCODINGS)("refuses non-objects and a missing role (%s)", (enc) => {
    for (const v of [null, 1, "s", [], [1], true]) expect1002(roundTrip(v as object, enc), null);
    const err = expect1002(roundTrip({ u: "abc" }, enc), "abc");
    expect(err.details).toEqual({ reason: "missing role", path: "/role" });
    expect1002(roundTrip({ u: "abc", role: 7 }, enc), "abc");
  });

  it.each(ENCODINGS)("refuses an unknown role with reason 'unknown role' (%s)", (enc) => {
    const err = expect1002(roundTrip({ role: "rpc-request", u: "k" }, enc), "k");
    expect(err.details.reason).toBe("unknown role");
    expect(err.message).toContain("rpc-request");
    // Inherited property names are not roles.
    expect(expect1002(roundTrip({ role: "toString", u: "k" }, enc), "k").details.reason).toBe("unknown role");
  });

  it.each(ENCODINGS)("refuses empty cmds with 1002 at /cmds (%s)", (enc) => {
    const err = expect1002(roundTrip({ role: "rpc", u: "q", cmds: [] }, enc), "q");
    expect(err.details).toEqual({ reason: "cmds must not be empty", path: "/cmds" });
  });

  const invalidRpc: Array<[string, Record<string, unknown>, string]> = [
    ["missing cmds", { role: "rpc", u: "q" }, "/cmds"],
    ["cmds not an array", { role: "rpc", u: "q", cmds: {} }, "/cmds"],
    ["missing fun", { role: "rpc", u: "q", cmds: [{ name: "a" }] }, "/cmds/0/fun"],
    ["empty fun", { role: "rpc", u: "q", cmds: [{ name: "a", fun: "" }] }, "/cmds/0/fun"],
    ["empty name", { role: "rpc", u: "q", cmds: [{ name: "", fun: "f" }] }, "/cmds/0/name"],
    ["args not an array", { role: "rpc", u: "q", cmds: [{ name: "a", fun: "f", args: {} }] }, "/cmds/0/args"],
    ["kwargs an array", { role: "rpc", u: "q", cmds: [{ name: "a", fun: "f", kwargs: [] }] }, "/cmds/0/kwargs"],
    ["locs of numbers", { role: "rpc", u: "q", cmds: [{ name: "a", fun: "f", locs: [1] }] }, "/cmds/0/locs/0"],
    ["function_id null", { role: "rpc", u: "q", cmds: [{ name: "a", fun: "f", function_id: null }] }, "/cmds/0/function_id"],
    ["timeout 0", { role: "rpc", u: "q", cmds: [{ name: "a", fun: "f" }], timeout_ms: 0 }, "/timeout_ms"],
    ["timeout fractional", { role: "rpc", u: "q", cmds: [{ name: "a", fun: "f" }], timeout_ms: 1.5 }, "/timeout_ms"],
    ["timeout too large", { role: "rpc", u: "q", cmds: [{ name: "a", fun: "f" }], timeout_ms: 3_600_001 }, "/timeout_ms"],
    ["return_all a string", { role: "rpc", u: "q", cmds: [{ name: "a", fun: "f" }], return_all: "yes" }, "/return_all"],
  ];
  for (const [what, frame, path] of invalidRpc) {
    it.each(ENCODINGS)(`refuses rpc with ${what} at ${path} (%s)`, (enc) => {
      const err = expect1002(roundTrip(frame, enc), "q");
      expect(err.details.path).toBe(path);
    });
  }

  const invalidOthers: Array<[string, Record<string, unknown>, string, string | null]> = [
    ["publish without topic", { role: "pubsub-publish", u: "p", message: { payload: 1 } }, "/message/topic", "p"],
    ["publish without payload", { role: "pubsub-publish", u: "p", message: { topic: "a" } }, "/message/payload", "p"],
    ["subscribe with no patterns", { role: "pubsub-subscribe", u: "p", subscription: { patterns: [] } }, "/subscription/patterns", "p"],
    ["subscribe with negative backlog", { role: "pubsub-subscribe", u: "p", subscription: { patterns: ["a"], backlog: { max: -1 } } }, "/subscription/backlog/max", "p"],
    ["unsubscribe without id", { role: "pubsub-unsubscribe", u: "p" }, "/subscription_id", "p"],
    ["ack without success", { role: "pubsub-ack", u: "p" }, "/success", "p"],
    ["response without r", { role: "rpc-response", u: "p", error: null }, "/r", "p"],
    ["response with malformed error", { role: "rpc-response", u: "p", r: null, error: { code: "x", message: "m", details: {} } }, "/error", "p"],
    ["progress without result", { role: "rpc-progress", u: "p" }, "/intermediate_result", "p"],
    ["hello without nonce", { role: "peer-hello", node_id: "n", cluster_id: "c", region: "r", urls: [], protocol_version: 1 }, "/nonce", null],
    ["hello with version 0", { role: "peer-welcome", node_id: "n", cluster_id: "c", region: "r", urls: [], protocol_version: 0, nonce: "x" }, "/protocol_version", null],
    ["fabric-message with a bad message type", { role: "fabric-message", payload: { message_id: "m", topic: "t", message_type: "nope", delivery: "broadcast", payload: null, timestamp: 1, headers: { correlation_id: "c", trace_id: "t", source_node: "n", source_cluster: "c", routing_path: ["n"], federation_path: ["c"], hops_remaining: 8, priority: 0 } } }, "/payload/message_type", null],
    ["fabric-message with negative hops", { role: "fabric-message", payload: { message_id: "m", topic: "t", message_type: "rpc", delivery: "broadcast", payload: null, timestamp: 1, headers: { correlation_id: "c", trace_id: "t", source_node: "n", source_cluster: "c", routing_path: ["n"], federation_path: ["c"], hops_remaining: -1, priority: 0 } } }, "/payload/headers/hops_remaining", null],
    ["queue-delivery without receipt", { role: "queue-delivery", subscription_id: "s", message: { message_id: "m", body: 1, receive_count: 1, sent_at: 1 } }, "/message/receipt", null],
    ["notification without publisher", { role: "pubsub-notification", subscription_id: "s", message: { topic: "t", payload: 1, headers: {}, message_id: "m", timestamp: 1 } }, "/message/publisher", null],
  ];
  for (const [what, frame, path, u] of invalidOthers) {
    it.each(ENCODINGS)(`refuses ${what} at ${path} (%s)`, (enc) => {
      const err = expect1002(roundTrip(frame, enc), u);
      expect(String(err.details.path)).toContain(path);
    });
  }

  it("refuses a JSON __proto__ key anywhere and keeps u", () => {
    const text = '{"role":"rpc","u":"z","cmds":[{"name":"a","fun":"f","kwargs":{"__proto__":{"polluted":1}}}]}';
    const err = expect1002(decodeFrame(text, "json"), "z");
    expect(err.details.reason).toContain("__proto__");
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // Escaped spelling of the same key.
    expect1002(decodeFrame('{"role":"fabric-gossip","payload":{"\\u005f_proto__":{}}}', "json"), null);
  });

  it("refuses a msgpack __proto__ key without polluting anything", () => {
    const bytes = spliceMsgpack(encodeFrame({ role: "fabric-gossip", payload: { xxxxxxxxx: { polluted: 1 } } }, "msgpack"), "xxxxxxxxx", new Uint8Array([0xa9, ...new TextEncoder().encode("__proto__")]));
    expect1002(decodeFrame(bytes, "msgpack"), null);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it.each(ENCODINGS)("accepts nesting up to MAX_NESTING_DEPTH and refuses deeper (%s)", (enc) => {
    // Frame (1) → payload: nested arrays. depth(frame) = 1 + number of arrays.
    const nest = (n: number): unknown => {
      let v: unknown = 0;
      for (let i = 0; i < n; i++) v = [v];
      return v;
    };
    expect(roundTrip({ role: "fabric-gossip", payload: nest(MAX_NESTING_DEPTH - 1) }, enc).ok).toBe(true);
    expect1002(decodeFrame(JSON.stringify({ role: "fabric-gossip", u: "d", payload: nest(MAX_NESTING_DEPTH) }), "json"), "d");
  });

  it("checks wide frames and keeps working after one (shared work stack)", () => {
    const wide = Array.from({ length: 10_000 }, (_, i) => ({ i, inner: [{ i }] }));
    for (const enc of ENCODINGS) {
      expect(roundTrip({ role: "fabric-gossip", payload: wide }, enc).ok).toBe(true);
      let deep: unknown = 1;
      for (let i = 0; i < MAX_NESTING_DEPTH; i++) deep = [deep];
      const deepInWide = [...wide, deep];
      expect1002(decodeFrame(JSON.stringify({ role: "fabric-gossip", u: "w", payload: deepInWide }), "json"), "w");
      expect(roundTrip({ role: "fabric-gossip", payload: { a: [{ b: 1 }] } }, enc).ok).toBe(true);
    }
  });

  it("refuses 100k-deep JSON and msgpack without crashing, keeping u", () => {
    const n = 100_000;
    const deepJson = "[".repeat(n) + "]".repeat(n);
    expect1002(decodeFrame(deepJson, "json"), null);
    expect1002(decodeFrame(`{"role":"rpc","u":"deep","cmds":[{"name":"a","fun":"f","args":[${deepJson}]}]}`, "json"), "deep");
    expect1002(decodeFrame(`{"role":"rpc","u":"deep","cmds":[{"name":"a","fun":"f","kwargs":${'{"a":'.repeat(n)}1${"}".repeat(n)}}]}`, "json"), "deep");
    expect1002(decodeFrame(deepMsgpackArray(n), "msgpack"), null);
    const framed = spliceMsgpack(
      encodeFrame({ role: "rpc", u: "deep", cmds: [{ name: "a", fun: "f", args: ["__DEEP__"] }] }, "msgpack"),
      "__DEEP__",
      deepMsgpackArray(n),
    );
    expect1002(decodeFrame(framed, "msgpack"), "deep");
  });
});

describe("decodeFrame never throws (properties)", () => {
  const check = (res: DecodeResult) => {
    if (!res.ok) {
      expect(res.error.code).toBe(ErrorCode.INVALID_REQUEST);
      expect(typeof res.error.details.reason).toBe("string");
    }
  };

  it("on arbitrary bytes, in both encodings", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        check(decodeFrame(bytes, "msgpack"));
        check(decodeFrame(bytes, "json"));
      }),
      { numRuns: 1000 },
    );
  });

  it("on arbitrary strings", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 64 }), (s) => {
        check(decodeFrame(s, "json"));
        check(decodeFrame(s, "msgpack"));
      }),
      { numRuns: 500 },
    );
  });

  it("on arbitrary JSON values and their msgpack encodings", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        check(decodeFrame(JSON.stringify(v), "json"));
        check(decodeFrame(encodeFrame(v as object, "msgpack"), "msgpack"));
      }),
      { numRuns: 500 },
    );
  });

  it("on valid frames with bytes flipped or cut", () => {
    fc.assert(
      fc.property(anyFrame, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean(), (frame, at, byte, cut) => {
        const bytes = encodeFrame(frame, "msgpack");
        const i = at % bytes.length;
        const mutated = cut ? bytes.subarray(0, i) : bytes.slice();
        if (!cut) mutated[i] = byte;
        check(decodeFrame(mutated, "msgpack"));
        const text = encodeFrame(frame, "json");
        check(decodeFrame(cut ? text.slice(0, at % text.length) : text.slice(0, i) + String.fromCharCode(byte) + text.slice(i + 1), "json"));
      }),
      { numRuns: 500 },
    );
  });

  it("on valid frames with a required field of the wrong type: 1002 at that path, u kept", () => {
    const cases = fc.constantFrom(...ROLES).chain((role) => {
      const fields = TYPED_FIELDS[role];
      if (fields.length === 0) return fc.constant(null);
      return fc.tuple(frameArbitraries[role], fc.constantFrom(...fields)).chain(([frame, [path, kind]]) =>
        wrongValueFor(kind).map((wrong) => ({ frame, path, wrong })),
      );
    });
    fc.assert(
      fc.property(cases, fc.constantFrom(...ENCODINGS), (c, enc) => {
        if (c === null) return;
        const frame = structuredClone(c.frame) as unknown as Record<string | number, unknown>;
        let target = frame;
        for (const k of c.path.slice(0, -1)) target = target[k] as Record<string | number, unknown>;
        target[c.path[c.path.length - 1] as string | number] = c.wrong;
        const u = c.path[0] !== "u" && typeof frame.u === "string" ? frame.u : null;
        const err = expect1002(roundTrip(frame, enc), u);
        expect(err.details.path).toBe(`/${c.path.join("/")}`);
      }),
      { numRuns: 500 },
    );
  });

  it("recovers u from a frame that fails to parse (trailing garbage)", () => {
    fc.assert(
      fc.property(anyFrame, (frame) => {
        const u = typeof (frame as { u?: unknown }).u === "string" ? (frame as { u: string }).u : null;
        const bin = encodeFrame(frame, "msgpack");
        const corrupt = new Uint8Array(bin.length + 1);
        corrupt.set(bin);
        corrupt[bin.length] = 0xc0;
        expect1002(decodeFrame(corrupt, "msgpack"), u);
        expect1002(decodeFrame(`${encodeFrame(frame, "json")} x`, "json"), u);
      }),
      { numRuns: 300 },
    );
  });

  it("validateFrame never throws on exotic objects", () => {
    const throwing = { role: "rpc", get u(): string { throw new Error("boom"); } };
    expect1002(validateFrame(throwing), null);
    fc.assert(fc.property(fc.anything(), (v) => check(validateFrame(v))), { numRuns: 300 });
  });
});

describe("roles and replies", () => {
  it("classifies client and peer roles", () => {
    for (const r of CLIENT_ROLES) expect([isClientRole(r), isPeerRole(r)]).toEqual([true, false]);
    for (const r of PEER_ROLES) expect([isClientRole(r), isPeerRole(r)]).toEqual([false, true]);
    for (const r of ["rpc-response", "pubsub-ack", "x", 1, null]) expect([isClientRole(r), isPeerRole(r)]).toEqual([false, false]);
    expect([...CLIENT_ROLES, ...PEER_ROLES].every((r) => (ROLES as readonly string[]).includes(r))).toBe(true);
  });

  it("builds error replies that validate", () => {
    const err = MpregError.invalid("bad", "/x");
    const reply = rpcErrorReply(null, err);
    expect(reply).toEqual({ role: "rpc-response", u: null, r: null, error: { code: 1002, message: "bad", details: { reason: "bad", path: "/x" } } });
    expect(validateFrame(reply).ok).toBe(true);
    const ack = pubsubErrorAck("u1", MpregError.notFound("no such subscription"));
    expect(ack).toMatchObject({ role: "pubsub-ack", u: "u1", success: false, error: { code: 1001 } });
    for (const enc of ENCODINGS) {
      expect(roundTrip(reply, enc)).toEqual({ ok: true, frame: reply });
      expect(roundTrip(ack, enc)).toEqual({ ok: true, frame: ack });
    }
  });

  it("round-trips any wire value as a gossip payload in both encodings", () => {
    fc.assert(
      fc.property(wireValue, fc.constantFrom(...ENCODINGS), (payload, enc) => {
        const frame = { role: "fabric-gossip", payload } as Frame;
        expect(roundTrip(frame, enc)).toEqual({ ok: true, frame: normal(frame) });
      }),
      { numRuns: 300 },
    );
  });
});

describe("encodeCallRequest", () => {
  const generic = (u: string, name: string, fun: string, args: unknown[], t: number) =>
    encodeFrame({ role: "rpc", u, cmds: [{ name, fun, args }], timeout_ms: t }, "msgpack");

  it("writes exactly the bytes encodeFrame writes, for any strings, args and timeout", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: "grapheme", maxLength: 20 })),
        fc.string({ maxLength: 40 }),
        fc.oneof(fc.string({ maxLength: 40 }), fc.constant("echo")),
        fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 4 }),
        fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 70_000 }), fc.integer({ min: 0, max: 2 ** 32 - 1 })),
        (u, name, fun, args, t) => {
          expect(Array.from(encodeCallRequest(u, name, fun, args, t))).toEqual(Array.from(generic(u, name, fun, args, t)));
        },
      ),
    );
  });

  it("decodes to a valid rpc frame", () => {
    const res = decodeFrame(encodeCallRequest("01ABCDEFGH1", "echo@01ABCDEFGH", "echo", [1, "x", { a: [null] }], 30_000), "msgpack");
    expect(res.ok && res.frame).toEqual({
      role: "rpc",
      u: "01ABCDEFGH1",
      cmds: [{ name: "echo@01ABCDEFGH", fun: "echo", args: [1, "x", { a: [null] }] }],
      timeout_ms: 30_000,
    });
  });

  it("refuses what encodeFrame refuses, with the same error", () => {
    let deep: unknown = 1;
    for (let i = 0; i < MAX_NESTING_DEPTH; i++) deep = [deep];
    for (const args of [[10n], [deep]] as unknown[][]) {
      const fast = (() => { try { encodeCallRequest("u", "n", "f", args, 1); } catch (e) { return e; } })();
      const slow = (() => { try { generic("u", "n", "f", args, 1); } catch (e) { return e; } })();
      expect(isMpregError(fast) && isMpregError(slow)).toBe(true);
      expect((fast as MpregError).message).toBe((slow as MpregError).message);
    }
  });
});

describe("encodeRpcResult", () => {
  const generic = (u: string, r: Record<string, unknown>) => encodeFrame({ role: "rpc-response", u, r, error: null }, "msgpack");

  it("writes exactly the bytes encodeFrame writes, for any u and results", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: "grapheme", maxLength: 20 })),
        fc.dictionary(fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }),
        (u, r) => {
          expect(Array.from(encodeRpcResult(u, r))).toEqual(Array.from(generic(u, r)));
        },
      ),
    );
  });

  it("refuses what encodeFrame refuses, with the same error", () => {
    let deep: unknown = 1;
    for (let i = 0; i < MAX_NESTING_DEPTH; i++) deep = [deep];
    for (const r of [{ a: 10n }, { a: deep }] as Record<string, unknown>[]) {
      const fast = (() => { try { encodeRpcResult("u", r); } catch (e) { return e; } })();
      const slow = (() => { try { generic("u", r); } catch (e) { return e; } })();
      expect(isMpregError(fast) && isMpregError(slow)).toBe(true);
      expect((fast as MpregError).message).toBe((slow as MpregError).message);
    }
  });
});

describe("template encoders at the nesting limit", () => {
  it("accept and refuse exactly the depths encodeFrame accepts and refuses", () => {
    const outcome = (f: () => unknown) => { try { f(); return "ok"; } catch { return "refused"; } };
    for (let d = MAX_NESTING_DEPTH - 6; d <= MAX_NESTING_DEPTH + 2; d++) {
      let v: unknown = 1;
      for (let i = 0; i < d; i++) v = [v];
      expect(outcome(() => encodeCallRequest("u", "n", "f", [v], 5))).toBe(
        outcome(() => encodeFrame({ role: "rpc", u: "u", cmds: [{ name: "n", fun: "f", args: [v] }], timeout_ms: 5 }, "msgpack")),
      );
      expect(outcome(() => encodeRpcResult("u", { n: v }))).toBe(
        outcome(() => encodeFrame({ role: "rpc-response", u: "u", r: { n: v }, error: null }, "msgpack")),
      );
    }
  });
});
