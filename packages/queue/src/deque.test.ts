import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Deque } from "./deque.js";

describe("Deque", () => {
  it("behaves like an array under push, shift and remove (also across compaction)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.integer({ min: 1, max: 3000 }).map((n) => ({ op: "pushMany" as const, n })),
            fc.integer({ min: 1, max: 3000 }).map((n) => ({ op: "shiftMany" as const, n })),
            fc.integer({ min: 0, max: 5000 }).map((v) => ({ op: "remove" as const, v })),
          ),
          { maxLength: 20 },
        ),
        (ops) => {
          const d = new Deque<number>();
          const model: number[] = [];
          let next = 0;
          for (const o of ops) {
            if (o.op === "pushMany") {
              for (let i = 0; i < o.n; i++) {
                d.push(next);
                model.push(next++);
              }
            } else if (o.op === "shiftMany") {
              for (let i = 0; i < o.n; i++) expect(d.shift()).toBe(model.shift());
            } else {
              const i = model.indexOf(o.v);
              expect(d.remove(o.v)).toBe(i >= 0);
              if (i >= 0) model.splice(i, 1);
            }
            expect(d.size).toBe(model.length);
            expect(d.peek()).toBe(model[0]);
          }
          expect([...d]).toEqual(model);
        },
      ),
      { numRuns: 50 },
    );
  });
});
