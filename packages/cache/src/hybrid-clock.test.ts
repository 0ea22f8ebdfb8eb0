import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HybridClock, compareStamps, type Stamp } from "./hybrid-clock.js";

type Ev = { t: "advance"; ms: number } | { t: "tick" } | { t: "recv"; offset: number; counter: number; node: string };

const ev: fc.Arbitrary<Ev> = fc.oneof(
  fc.record({ t: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 50 }) }),
  fc.record({ t: fc.constant("tick" as const) }),
  fc.record({
    t: fc.constant("recv" as const),
    offset: fc.integer({ min: -2000, max: 1500 }),
    counter: fc.nat(20),
    node: fc.constantFrom("a", "b", "z"),
  }),
);

describe("HybridClock", () => {
  it("stamps strictly increase, exceed every stamp received, and stay within the drift bound", () => {
    fc.assert(
      fc.property(fc.array(ev, { maxLength: 300 }), (events) => {
        let pt = 10_000;
        const c = new HybridClock({ node: "m", now: () => pt, maxDriftMs: 1000 });
        let last: Stamp | undefined;
        for (const e of events) {
          if (e.t === "advance") {
            pt += e.ms;
            continue;
          }
          let s: Stamp;
          if (e.t === "tick") s = c.tick();
          else {
            const remote = { wall: Math.max(0, pt + e.offset), counter: e.counter, node: e.node };
            if (remote.wall - pt > 1000) {
              const before = c.last;
              expect(() => c.receive(remote)).toThrow(/ahead/);
              expect(c.last).toEqual(before);
              continue;
            }
            s = c.receive(remote);
            expect(compareStamps(s, remote)).toBe(1);
          }
          if (last !== undefined) expect(compareStamps(s, last)).toBe(1);
          expect(s.wall).toBeGreaterThanOrEqual(pt);
          expect(s.wall - pt).toBeLessThanOrEqual(1000);
          last = s;
        }
      }),
      { numRuns: 300 },
    );
  });

  it("follows physical time and counts within one millisecond", () => {
    let pt = 5;
    const c = new HybridClock({ node: "n", now: () => pt });
    expect(c.tick()).toEqual({ wall: 5, counter: 0, node: "n" });
    expect(c.tick()).toEqual({ wall: 5, counter: 1, node: "n" });
    pt = 9;
    expect(c.tick()).toEqual({ wall: 9, counter: 0, node: "n" });
    expect(c.receive({ wall: 20, counter: 3, node: "x" })).toEqual({ wall: 20, counter: 4, node: "n" });
    expect(c.tick()).toEqual({ wall: 20, counter: 5, node: "n" });
  });

  it("orders by wall, counter, then node", () => {
    expect(compareStamps({ wall: 1, counter: 9, node: "z" }, { wall: 2, counter: 0, node: "a" })).toBe(-1);
    expect(compareStamps({ wall: 2, counter: 1, node: "a" }, { wall: 2, counter: 0, node: "z" })).toBe(1);
    expect(compareStamps({ wall: 2, counter: 1, node: "a" }, { wall: 2, counter: 1, node: "b" })).toBe(-1);
    expect(compareStamps({ wall: 2, counter: 1, node: "a" }, { wall: 2, counter: 1, node: "a" })).toBe(0);
  });
});
