import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Heap } from "./heap.js";

describe("Heap", () => {
  it("pops in comparator order under any mix of pushes, pops and filters", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 0, max: 50 }).map((v) => ({ op: "push" as const, v })), fc.constant({ op: "pop" as const }), fc.constant({ op: "filter" as const }))),
        (ops) => {
          const h = new Heap<number>((a, b) => a < b);
          let model: number[] = [];
          for (const o of ops) {
            if (o.op === "push") {
              h.push(o.v);
              model.push(o.v);
            } else if (o.op === "pop") {
              model.sort((a, b) => a - b);
              expect(h.pop()).toBe(model.shift());
            } else {
              // Drop odd values, as the core drops stale entries.
              h.filter((x) => x % 2 === 0);
              model = model.filter((x) => x % 2 === 0);
            }
            expect(h.size).toBe(model.length);
            expect(h.peek()).toBe(model.length ? Math.min(...model) : undefined);
          }
        },
      ),
    );
  });
});
