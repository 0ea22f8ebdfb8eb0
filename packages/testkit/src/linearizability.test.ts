import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkLinearizable, registerModel, type Model, type Operation, type RegisterInput } from "./linearizability.js";

type Op = Operation<RegisterInput, unknown>;
const w = (client: number, value: unknown, call: number, ret?: number): Op => ({ client, input: { op: "write", value }, call, ...(ret === undefined ? {} : { ret }) });
const r = (client: number, value: unknown, call: number, ret: number): Op => ({ client, input: { op: "read" }, output: value, call, ret });
const cas = (client: number, from: unknown, to: unknown, ok: boolean, call: number, ret: number): Op => ({ client, input: { op: "cas", from, to }, output: ok, call, ret });

describe("checkLinearizable (register)", () => {
  it("accepts sequential and overlapping histories that have a linearization", () => {
    expect(checkLinearizable(registerModel, []).result).toBe("ok");
    expect(checkLinearizable(registerModel, [w(1, 1, 0, 1), r(2, 1, 2, 3)]).result).toBe("ok");
    // A read concurrent with a write may see the old or the new value.
    expect(checkLinearizable(registerModel, [w(1, 1, 0, 10), r(2, null, 1, 2), r(3, 1, 3, 4)]).result).toBe("ok");
    // Two concurrent writes, reads agree on an order.
    expect(
      checkLinearizable(registerModel, [w(1, "a", 0, 10), w(2, "b", 0, 10), r(3, "a", 11, 12), r(3, "a", 13, 14)]).result,
    ).toBe("ok");
  });

  it("rejects a stale read after a completed write", () => {
    const res = checkLinearizable(registerModel, [w(1, 1, 0, 1), r(2, null, 2, 3)]);
    expect(res.result).toBe("illegal");
    expect(res.counterexample?.length).toBe(2);
  });

  it("rejects reads that observe two concurrent writes in opposite orders", () => {
    const h = [w(1, "a", 0, 10), w(2, "b", 0, 10), r(3, "a", 11, 12), r(4, "b", 13, 14), r(3, "a", 15, 16)];
    expect(checkLinearizable(registerModel, h).result).toBe("illegal");
  });

  it("rejects a value that was never written, and a read going back in time", () => {
    expect(checkLinearizable(registerModel, [w(1, 1, 0, 1), r(2, 7, 2, 3)]).result).toBe("illegal");
    const h = [w(1, 1, 0, 1), w(1, 2, 2, 10), r(2, 2, 3, 4), r(3, 1, 5, 6)];
    expect(checkLinearizable(registerModel, h).result).toBe("illegal");
  });

  it("rejects two successful compare-and-sets from the same value", () => {
    const h = [w(1, 0, 0, 1), cas(2, 0, 1, true, 2, 10), cas(3, 0, 2, true, 2, 10)];
    expect(checkLinearizable(registerModel, h).result).toBe("illegal");
    const ok = [w(1, 0, 0, 1), cas(2, 0, 1, true, 2, 10), cas(3, 0, 2, false, 2, 10)];
    expect(checkLinearizable(registerModel, ok).result).toBe("ok");
  });

  it("an operation with unknown outcome may or may not have happened", () => {
    // The pending write explains the read of 5...
    expect(checkLinearizable(registerModel, [w(1, 5, 0), r(2, 5, 3, 4)]).result).toBe("ok");
    // ...and need not have happened at all.
    expect(checkLinearizable(registerModel, [w(1, 5, 0), r(2, null, 3, 4)]).result).toBe("ok");
    // But it cannot take effect before it was called.
    expect(checkLinearizable(registerModel, [r(2, 5, 0, 1), w(1, 5, 2)]).result).toBe("illegal");
  });

  it("checks partitions independently (P-compositionality) and reports an exhausted budget as unknown", () => {
    type KInput = { key: string; inner: RegisterInput };
    const kv: Model<unknown, KInput, unknown> = {
      init: registerModel.init,
      step: (s, i, o) => registerModel.step(s, i.inner, o),
      hash: registerModel.hash,
      partition(ops) {
        const by = new Map<string, Operation<KInput, unknown>[]>();
        for (const op of ops) by.set(op.input.key, [...(by.get(op.input.key) ?? []), op]);
        return [...by.values()];
      },
    };
    const mk = (key: string, op: Op): Operation<KInput, unknown> => ({ ...op, input: { key, inner: op.input } });
    const good = [mk("x", w(1, 1, 0, 1)), mk("y", r(2, null, 2, 3)), mk("x", r(2, 1, 4, 5))];
    expect(checkLinearizable(kv, good).result).toBe("ok");
    const bad = [mk("x", w(1, 1, 0, 1)), mk("y", w(2, 2, 0, 1)), mk("x", r(2, 2, 4, 5))];
    expect(checkLinearizable(kv, bad).result).toBe("illegal");
    const many = Array.from({ length: 30 }, (_, i) => w(i, i, 0, 100));
    expect(checkLinearizable(registerModel, [...many, r(99, 3, 101, 102)], { maxSteps: 10 }).result).toBe("unknown");
  });

  it("rejects malformed histories with a clear error", () => {
    expect(() => checkLinearizable(registerModel, [w(1, 1, 5, 2)])).toThrow(/invalid call\/return/);
  });

  it("property: histories produced by a real atomic register are always linearizable; corrupting a read makes them illegal", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ client: fc.integer({ min: 0, max: 3 }), write: fc.boolean(), v: fc.integer({ min: 0, max: 3 }), lag: fc.integer({ min: 0, max: 3 }) }), { minLength: 1, maxLength: 25 }),
        (spec) => {
          // Each op takes effect at time 10*k; its interval is stretched around that point.
          let reg: unknown = null;
          const h: Op[] = spec.map((s, k) => {
            const at = 10 * k + 5;
            const call = at - 1 - s.lag * 7;
            const ret = at + 1 + s.lag * 7;
            if (s.write) {
              reg = s.v;
              return w(s.client, s.v, call, ret);
            }
            return r(s.client, reg, call, ret);
          });
          expect(checkLinearizable(registerModel, h).result).toBe("ok");
          // A read that returns a value never written anywhere is always illegal.
          const readAt = h.findIndex((o) => o.input.op === "read");
          if (readAt >= 0) {
            const bad = h.slice();
            bad[readAt] = { ...bad[readAt]!, output: "never-written" };
            expect(checkLinearizable(registerModel, bad).result).toBe("illegal");
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
