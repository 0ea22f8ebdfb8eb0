import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { OutboundBudget, type BudgetMember } from "./outbound-budget.js";

class Member implements BudgetMember {
  cut = false;
  constructor(readonly name: string) {}
  cutOff(): void {
    this.cut = true;
  }
}

describe("OutboundBudget", () => {
  it("refuses a limit that is not a positive integer, naming the option", () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Infinity]) {
      expect(() => new OutboundBudget(bad)).toThrowError(expect.objectContaining({ code: 1002, details: expect.objectContaining({ path: "maxTotalBufferedBytes" }) }));
    }
  });

  it("over the limit, cuts off the largest holders first, just enough to fit", () => {
    const b = new OutboundBudget(100);
    const [small, mid, big, newcomer] = ["small", "mid", "big", "new"].map((n) => new Member(n)) as [Member, Member, Member, Member];
    b.update(small, 10);
    b.update(mid, 30);
    b.update(big, 50);
    expect(b.usedBytes).toBe(90);
    b.update(newcomer, 40); // 130 > 100: big (50) goes, 80 fits
    expect([small.cut, mid.cut, big.cut, newcomer.cut]).toEqual([false, false, true, false]);
    expect(b.usedBytes).toBe(80);
    expect(b.cutOffs).toBe(1);
    b.release(big); // a cut member closing later changes nothing
    expect(b.usedBytes).toBe(80);
    b.update(mid, 0);
    expect(b.usedBytes).toBe(50);
    expect(b.holders).toBe(2);
  });

  it("property: after every update the sum is within the limit and equals what the uncut members hold", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.array(fc.tuple(fc.nat(7), fc.nat(600)), { maxLength: 60 }), (limit, ops) => {
        const b = new OutboundBudget(limit);
        const members = Array.from({ length: 8 }, (_, i) => new Member(`m${i}`));
        const held = new Map<Member, number>();
        for (const [i, bytes] of ops) {
          const m = members[i]!;
          if (m.cut) continue; // a cut connection is closed: it reports nothing more
          b.update(m, bytes);
          held.set(m, bytes);
          for (const x of members) if (x.cut) held.delete(x);
          expect(b.usedBytes).toBeLessThanOrEqual(limit);
          expect(b.usedBytes).toBe([...held.values()].reduce((s, v) => s + v, 0));
        }
      }),
    );
  });
});
