import fc from "fast-check";
import { isMpregError } from "@mpreg/envelope";
import { describe, expect, it } from "vitest";
import { checkPublishedMessage, checkRemoteMessage } from "./message-check.js";
import { estimateBytes } from "./message-size.js";

const limits = { maxPayloadBytes: 1 << 20, maxHeaderBytes: 1 << 16 };
const remote = (topic: unknown) => ({ topic, payload: 1, headers: {}, message_id: "m1", publisher: "n", timestamp: 1 });

function code(f: () => unknown): number | "ok" {
  try {
    f();
    return "ok";
  } catch (e) {
    if (!isMpregError(e)) throw e;
    return e.code;
  }
}

describe("message checks", () => {
  // First in this file on purpose: the topic cache starts empty (undefined).
  it("refuses a missing topic even before any topic was seen", () => {
    expect(code(() => checkRemoteMessage(remote(undefined), limits))).toBe(1002);
    expect(code(() => checkPublishedMessage({ payload: 1 }, limits))).toBe(1002);
  });

  it("reuses the segments of the last topic, and still checks every other topic", () => {
    const a = checkRemoteMessage(remote("a.b"), limits);
    const b = checkPublishedMessage({ topic: "a.b", payload: 2 }, limits);
    expect(a.segments).toEqual(["a", "b"]);
    expect(b.segments).toBe(a.segments);
    expect(Object.isFrozen(b.segments)).toBe(true);
    for (const bad of [undefined, "", "a..b", "a.*", "a.#", 7, null]) {
      expect(code(() => checkRemoteMessage(remote(bad), limits))).toBe(1002);
      expect(code(() => checkPublishedMessage({ topic: bad, payload: 1 }, limits))).toBe(1002);
      // The good topic is still accepted afterwards.
      expect(checkPublishedMessage({ topic: "a.b", payload: 1 }, limits).segments).toEqual(["a", "b"]);
    }
    expect(checkRemoteMessage(remote("c"), limits).segments).toEqual(["c"]);
  });

  it("estimates a scalar or binary payload as the walk does (an array of it costs 5 more)", () => {
    const scalar = fc.oneof(fc.constant(null), fc.constant(undefined), fc.boolean(), fc.double(), fc.integer(), fc.bigInt(), fc.string(), fc.uint8Array({ maxLength: 64 }), fc.constant(new DataView(new ArrayBuffer(12))), fc.constant(() => 1));
    fc.assert(fc.property(scalar, (v) => {
      expect(estimateBytes([v])).toBe(5 + estimateBytes(v));
    }), { numRuns: 300 });
  });
});
