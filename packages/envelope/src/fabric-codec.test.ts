import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_NESTING_DEPTH, decodeFrame, encodeFrame } from "./codec.js";
import { isMpregError, type MpregError } from "./errors.js";
import { encodeFabricMessage } from "./fabric-codec.js";
import { unifiedMessage, wireValue } from "./frame-arbitraries.js";
import { createUnifiedMessage, forwardStep } from "./headers.js";
import type { UnifiedMessage } from "./schemas.js";

const generic = (m: UnifiedMessage) => encodeFrame({ role: "fabric-message", payload: m }, "msgpack");
const decoded = (b: Uint8Array) => {
  const r = decodeFrame(b, "msgpack");
  if (!r.ok) throw r.error;
  return r.frame;
};
const ascii = fc.stringMatching(/^[\x20-\x7e]{0,40}$/);
const anyString = fc.oneof(ascii, fc.string({ maxLength: 40 }), fc.string({ unit: "grapheme", maxLength: 12 }), fc.stringMatching(/^[a-z]{250,300}$/));

/** A message in the key order createUnifiedMessage gives (what nodes send). */
const canonical = fc
  .record({
    topic: anyString,
    type: fc.constantFrom("rpc", "pubsub", "queue", "cache", "control", "data" as const),
    payload: wireValue,
    ids: fc.record({ source_node: ascii.filter((s) => s.length > 0), source_cluster: anyString.filter((s) => s.length > 0) }),
    correlation: fc.option(anyString, { nil: undefined }),
    trace: fc.option(anyString, { nil: undefined }),
    targetNode: fc.option(anyString, { nil: undefined }),
    targetCluster: fc.option(anyString, { nil: undefined }),
    hops: fc.integer({ min: 0, max: 255 }),
    priority: fc.oneof(fc.integer({ min: -40, max: 40 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 })),
    timestamp: fc.oneof(fc.integer({ min: 0, max: 4_102_444_800_000 }), fc.double({ noNaN: true }), fc.integer({ min: -(2 ** 40), max: 0 })),
    relays: fc.array(anyString.filter((s) => s.length > 0), { maxLength: 20 }),
  })
  .map((r) => {
    let m = createUnifiedMessage({
      topic: r.topic,
      message_type: r.type,
      payload: r.payload,
      timestamp: r.timestamp,
      maxHops: r.hops,
      headers: {
        ...r.ids,
        correlation_id: r.correlation,
        trace_id: r.trace,
        target_node: r.targetNode,
        target_cluster: r.targetCluster,
        priority: r.priority,
      },
    });
    for (const relay of r.relays) {
      const step = forwardStep(m, relay, relay);
      if (step.action === "forward") m = step.message;
    }
    return m;
  });

describe("encodeFabricMessage", () => {
  it("writes exactly the bytes encodeFrame writes for messages as nodes create and relay them", () => {
    fc.assert(
      fc.property(canonical, (m) => {
        expect(Array.from(encodeFabricMessage(m))).toEqual(Array.from(generic(m)));
      }),
      { numRuns: 500 },
    );
  });

  it("decodes to the same frame as encodeFrame for any valid message, in any key order", () => {
    fc.assert(
      fc.property(unifiedMessage, (m) => {
        expect(decoded(encodeFabricMessage(m))).toEqual(decoded(generic(m)));
      }),
      { numRuns: 500 },
    );
  });

  it("leaves messages with other keys, or undefined-valued ones, to the generic encoder", () => {
    const m = createUnifiedMessage({ topic: "t", message_type: "data", payload: 1, headers: { source_node: "a", source_cluster: "c" } });
    const extra = { ...m, extra: [1, 2] } as UnifiedMessage;
    expect(Array.from(encodeFabricMessage(extra))).toEqual(Array.from(generic(extra)));
    const undef = { ...m, headers: { ...m.headers, target_node: undefined } } as UnifiedMessage;
    expect(Array.from(encodeFabricMessage(undef))).toEqual(Array.from(generic(undef)));
    const noPayload = { ...m, payload: undefined } as UnifiedMessage;
    expect(Array.from(encodeFabricMessage(noPayload))).toEqual(Array.from(generic(noPayload)));
  });

  it("refuses what encodeFrame refuses, with the same error, and accepts the same depths", () => {
    const outcome = (f: () => unknown) => {
      try {
        f();
        return "ok";
      } catch (e) {
        return isMpregError(e) ? (e as MpregError).message : "other";
      }
    };
    const base = createUnifiedMessage({ topic: "t", message_type: "data", payload: null, headers: { source_node: "a", source_cluster: "c" } });
    for (let d = MAX_NESTING_DEPTH - 6; d <= MAX_NESTING_DEPTH + 2; d++) {
      let v: unknown = 1;
      for (let i = 0; i < d; i++) v = [v];
      const m = { ...base, payload: v };
      expect(outcome(() => encodeFabricMessage(m))).toBe(outcome(() => generic(m)));
    }
    const big = { ...base, payload: 10n };
    expect(outcome(() => encodeFabricMessage(big))).not.toBe("ok");
    expect(outcome(() => encodeFabricMessage(big))).toBe(outcome(() => generic(big)));
  });
  it("writes exactly the bytes encodeFrame writes for pub/sub delivery batches", () => {
    const note = fc.record({
      topic: anyString,
      payload: fc.oneof(wireValue, fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 20 }).map((b) => Buffer.from(b))),
      headers: fc.oneof(fc.constant({}), fc.dictionary(ascii, wireValue, { maxKeys: 2 }), fc.constant(Object.create(null) as Record<string, unknown>)),
      message_id: anyString,
      publisher: anyString,
      timestamp: fc.oneof(fc.integer({ min: 0, max: 4_102_444_800_000 }), fc.double({ noNaN: true })),
    });
    const batch = fc
      .record({ notes: fc.array(note, { minLength: 1, maxLength: 20 }), node: ascii.filter((s) => s.length > 0) })
      .map((r) => createUnifiedMessage({ topic: "mpreg.pubsub.deliver", message_type: "pubsub", payload: r.notes, headers: { source_node: r.node, source_cluster: "c" } }));
    fc.assert(
      fc.property(batch, (m) => {
        expect(Array.from(encodeFabricMessage(m))).toEqual(Array.from(generic(m)));
        expect(decoded(encodeFabricMessage(m))).toEqual(decoded(generic(m)));
      }),
      { numRuns: 400 },
    );
    // The common case of the benchmark: 100-byte binary payloads, empty headers.
    const plain = createUnifiedMessage({
      topic: "mpreg.pubsub.deliver",
      message_type: "pubsub",
      payload: [1, 2].map((i) => ({ topic: "bench.data", payload: new Uint8Array(100).fill(i), headers: {}, message_id: `m${i}`, publisher: "n", timestamp: 1_700_000_000_000 + i })),
      headers: { source_node: "a", source_cluster: "c" },
    });
    expect(Array.from(encodeFabricMessage(plain))).toEqual(Array.from(generic(plain)));
  });
});
