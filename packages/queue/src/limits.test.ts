import { describe, expect, it } from "vitest";
import { MpregError } from "@mpreg/envelope";
import { DEFAULT_LIMITS, resolveLimits } from "./limits.js";

function pathOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MpregError);
    return (e as MpregError).details["path"];
  }
  throw new Error("expected an error");
}

describe("resolveLimits", () => {
  it("fills defaults and keeps given values", () => {
    expect(resolveLimits(undefined)).toEqual(DEFAULT_LIMITS);
    expect(resolveLimits({ maxQueues: 5 }).maxQueues).toBe(5);
  });

  it("refuses unknown, non-integer, non-positive and inconsistent limits naming them", () => {
    expect(pathOf(() => resolveLimits({ maxQueue: 5 } as never))).toBe("limits.maxQueue");
    expect(pathOf(() => resolveLimits({ maxQueues: 0 }))).toBe("limits.maxQueues");
    expect(pathOf(() => resolveLimits({ maxBodyBytes: 1.5 }))).toBe("limits.maxBodyBytes");
    expect(pathOf(() => resolveLimits({ defaultMaxMessages: 10, maxMessagesPerQueue: 5 }))).toBe("limits.defaultMaxMessages");
  });
});
