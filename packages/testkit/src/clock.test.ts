import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SimClock } from "./clock.js";

describe("SimClock", () => {
  it("fires timers in time order, ties in scheduling order", () => {
    const c = new SimClock();
    const log: string[] = [];
    c.setTimeout(() => log.push("b@10"), 10);
    c.setTimeout(() => log.push("a@5"), 5);
    c.setTimeout(() => log.push("c@10"), 10);
    c.advance(9);
    expect(log).toEqual(["a@5"]);
    expect(c.now()).toBe(9);
    c.advance(1);
    expect(log).toEqual(["a@5", "b@10", "c@10"]);
  });

  it("runs timers scheduled by timers and honours clearTimeout", () => {
    const c = new SimClock();
    const log: number[] = [];
    c.setTimeout(() => {
      log.push(c.now());
      c.setTimeout(() => log.push(c.now()), 3);
    }, 2);
    const id = c.setTimeout(() => log.push(-1), 4);
    c.clearTimeout(id);
    c.runUntil(100);
    expect(log).toEqual([2, 5]);
    expect(c.now()).toBe(100);
    expect(c.step()).toBe(false);
  });

  it("property: every timer fires once, in nondecreasing time", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 200 }), (delays) => {
        const c = new SimClock();
        const fired: number[] = [];
        delays.forEach((d) => c.setTimeout(() => fired.push(c.now()), d));
        c.runUntil(2000);
        expect(fired.length).toBe(delays.length);
        expect(fired).toEqual(delays.slice().sort((a, b) => a - b));
      }),
    );
  });

  it("runUntilTrue returns the time a predicate became true", () => {
    const c = new SimClock();
    let flag = false;
    c.setTimeout(() => (flag = true), 123);
    expect(c.runUntilTrue(() => flag, { maxMs: 1000, stepMs: 10 })).toBe(130);
    expect(c.runUntilTrue(() => false, { maxMs: 50 })).toBeUndefined();
    expect(() => c.advance(-1)).toThrowError(/ms >= 0/);
  });
});
