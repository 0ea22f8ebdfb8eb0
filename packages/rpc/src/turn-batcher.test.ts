/** TurnBatcher: every item reaches its node once, in order, in batches within the bounds. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TurnBatcher } from "./turn-batcher.js";

describe("TurnBatcher", () => {
  it("sends each node's items once, in order, in batches of at most maxItems, by the end of the turn", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 50 }), fc.array(fc.tuple(fc.constantFrom("a", "b", "c"), fc.integer({ min: 0, max: 20 })), { maxLength: 40 }), async (maxItems, maxBytes, adds) => {
        const sent: [string, number[]][] = [];
        const b = new TurnBatcher<number>(maxItems, maxBytes, (n, items) => sent.push([n, items]));
        adds.forEach(([n, bytes], i) => b.add(n, i, bytes));
        await Promise.resolve();
        for (const [, items] of sent) expect(items.length).toBeLessThanOrEqual(maxItems);
        for (const n of ["a", "b", "c"]) {
          const got = sent.filter(([m]) => m === n).flatMap(([, items]) => items);
          expect(got).toEqual(adds.flatMap(([m], i) => (m === n ? [i] : [])));
        }
      }),
    );
  });

  it("sends a full batch at once and drops what is queued on clear", () => {
    const sent: number[][] = [];
    const b = new TurnBatcher<number>(2, 1000, (_n, items) => sent.push(items));
    b.add("a", 1, 1);
    expect(sent).toEqual([]);
    b.add("a", 2, 1);
    expect(sent).toEqual([[1, 2]]);
    b.add("a", 3, 1);
    b.clear();
    b.flush();
    expect(sent).toEqual([[1, 2]]);
  });
});
