import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { newTraceId, traceIdFromTraceparent } from "./trace-context.js";

describe("trace context", () => {
  it("takes the trace id of a valid traceparent", () => {
    expect(traceIdFromTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    // A later version may append fields.
    expect(traceIdFromTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra")).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
  });

  it("refuses malformed or invalid ones", () => {
    for (const bad of [
      undefined,
      42,
      "",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
    ]) {
      expect(traceIdFromTraceparent(bad)).toBeUndefined();
    }
  });

  it("any string gives a 32-hex id or undefined, never a throw", () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const id = traceIdFromTraceparent(s);
        expect(id === undefined || /^[0-9a-f]{32}$/.test(id)).toBe(true);
      }),
    );
  });

  it("new trace ids are 32 hex digits and distinct", () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newTraceId()));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/);
  });
});
