/** Bad input never crashes: any argument values give an answer or an MpregError with a wire code. */

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { ErrorCode, isMpregError } from "@mpreg/envelope";
import { QueueCore } from "./queue-core.js";
import { parseQueueName } from "./validate.js";

const CODES = new Set<number>([ErrorCode.NOT_FOUND, ErrorCode.INVALID_REQUEST, ErrorCode.OVERLOADED, ErrorCode.UNREACHABLE]);

describe("argument checks", () => {
  it("every operation answers or throws an MpregError for arbitrary arguments", () => {
    const core = new QueueCore({ limits: { maxBodyBytes: 4096 } });
    core.create("q");
    core.create("f", { type: "fifo" });
    const value = fc.oneof(fc.anything(), fc.constantFrom("q", "f", "", null, undefined, {}, { max: 5 }, { delivery: "broadcast" }));
    const ops: ((a: unknown, b: unknown, c: unknown) => unknown)[] = [
      (a, b) => core.create(a, b),
      (a, b, c) => core.send(a, b, c),
      (a, b) => core.receive(a, b, "o"),
      (a, b) => core.ack(a, b),
      (a, b, c) => core.nack(a, b, c),
      (a, b, c) => core.extend(a, b, c),
      (a, b) => core.subscribe(a, b, "o"),
      (a) => core.unsubscribe(a),
      (a) => core.stats(a),
      (a) => core.purge(a),
    ];
    fc.assert(
      fc.property(fc.nat(ops.length - 1), value, value, value, (i, a, b, c) => {
        try {
          ops[i]!(a, b, c);
        } catch (e) {
          expect(isMpregError(e), String(e)).toBe(true);
          expect(CODES.has((e as { code: number }).code)).toBe(true);
        }
        core.takeReady();
      }),
      { numRuns: 2000 },
    );
  });

  it("queue names: the allowed characters and length", () => {
    expect(parseQueueName("orders.eu-1:high_prio")).toBe("orders.eu-1:high_prio");
    for (const bad of ["", ".x", "-x", "a/b", "a b", "ü", "x".repeat(256), 5, null]) expect(() => parseQueueName(bad)).toThrow();
    expect(parseQueueName("x".repeat(255))).toHaveLength(255);
  });
});
