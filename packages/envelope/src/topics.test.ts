import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "./errors.js";
import {
  INTERNAL_TOPIC_PREFIXES,
  MAX_TOPIC_LENGTH,
  MAX_TOPIC_SEGMENTS,
  internalTopic,
  isReservedTopic,
  validateTopic,
} from "./topics.js";

describe("validateTopic", () => {
  it.each(["a", "a.b", "user.123.login", "mpreg.queue.orders", "ü.日本", "a-b_c.d:e"])("accepts %s", (t) => {
    expect(validateTopic(t)).toBeNull();
  });

  it.each([
    ["", "empty"],
    [".", "empty segment"],
    ["a.", "empty segment"],
    [".a", "empty segment"],
    ["a..b", "empty segment"],
    ["a.*", "wildcards"],
    ["a.#", "wildcards"],
    ["a*b", "wildcards"],
    ["#", "wildcards"],
  ])("refuses %j (%s) with 1002", (t, why) => {
    const err = validateTopic(t);
    expect(err?.code).toBe(ErrorCode.INVALID_REQUEST);
    expect(String(err?.details.reason)).toContain(why);
  });

  it("refuses non-strings and over-long topics", () => {
    for (const v of [1, null, undefined, ["a"], {}]) expect(validateTopic(v)?.code).toBe(ErrorCode.INVALID_REQUEST);
    expect(validateTopic("a".repeat(MAX_TOPIC_LENGTH))).toBeNull();
    expect(validateTopic("a".repeat(MAX_TOPIC_LENGTH + 1))?.code).toBe(ErrorCode.INVALID_REQUEST);
    expect(validateTopic(Array(MAX_TOPIC_SEGMENTS).fill("a").join("."))).toBeNull();
    expect(validateTopic(Array(MAX_TOPIC_SEGMENTS + 1).fill("a").join("."))?.code).toBe(ErrorCode.INVALID_REQUEST);
  });

  it("agrees with the definition: non-empty segments without wildcards", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 20, unit: fc.constantFrom("a", "b", ".", "*", "#", "x") }), (t) => {
        const segments = t.split(".");
        const valid = t.length > 0 && segments.every((s) => s.length > 0 && !s.includes("*") && !s.includes("#"));
        expect(validateTopic(t) === null).toBe(valid);
      }),
    );
  });
});

describe("reserved topics", () => {
  it("recognises the mpreg namespace only at a segment boundary", () => {
    expect(isReservedTopic("mpreg")).toBe(true);
    expect(isReservedTopic("mpreg.rpc.x")).toBe(true);
    expect(isReservedTopic("mpregs.x")).toBe(false);
    expect(isReservedTopic("app.mpreg")).toBe(false);
    for (const p of Object.values(INTERNAL_TOPIC_PREFIXES)) expect(isReservedTopic(`${p}x`)).toBe(true);
  });

  it("builds internal topics and refuses bad segments", () => {
    expect(internalTopic("queue", "orders", "sent")).toBe("mpreg.queue.orders.sent");
    expect(internalTopic("cache", "ns")).toBe("mpreg.cache.ns");
    expect(() => internalTopic("cache", "")).toThrow();
    expect(() => internalTopic("rpc", "a*")).toThrow();
  });
});
