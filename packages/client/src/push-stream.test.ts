import { MpregError } from "@mpreg/envelope";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PushStream, type OverflowPolicy } from "./push-stream.js";

type Op = { t: "push"; v: number } | { t: "next" } | { t: "end"; err: boolean } | { t: "return" };
type Outcome = { k: "value"; v: number } | { k: "done" } | { k: "error"; code: number };

/** The reference behaviour, written as plainly as possible. */
class Model {
  buf: number[] = [];
  waiters: number[] = [];
  ended: { err: boolean } | null = null;
  errorThrown = false;
  returned = false;
  dropped = 0;
  returns = 0;
  outcomes = new Map<number, Outcome>();
  constructor(
    readonly max: number,
    readonly overflow: OverflowPolicy,
  ) {}
  get closed(): boolean {
    return this.ended !== null || this.returned;
  }
  settleEnd(id: number): void {
    if (this.ended!.err && !this.errorThrown) {
      this.errorThrown = true;
      this.outcomes.set(id, { k: "error", code: 1007 });
    } else {
      this.outcomes.set(id, { k: "done" });
    }
  }
  push(v: number): boolean {
    if (this.closed) return false;
    const w = this.waiters.shift();
    if (w !== undefined) {
      this.outcomes.set(w, { k: "value", v });
      return true;
    }
    if (this.buf.length >= this.max) {
      if (this.overflow === "fail") {
        this.end(true);
        return false;
      }
      this.buf.shift();
      this.dropped++;
    }
    this.buf.push(v);
    return true;
  }
  end(err: boolean): void {
    if (this.closed) return;
    this.ended = { err };
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) this.settleEnd(w);
  }
  next(id: number): void {
    if (this.buf.length > 0) this.outcomes.set(id, { k: "value", v: this.buf.shift()! });
    else if (this.returned) this.outcomes.set(id, { k: "done" });
    else if (this.ended !== null) this.settleEnd(id);
    else this.waiters.push(id);
  }
  ret(): void {
    if (!this.closed) this.returns++;
    this.returned = true;
    this.buf = [];
    for (const w of this.waiters) this.outcomes.set(w, { k: "done" });
    this.waiters = [];
  }
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 0, max: 999 }).map((v) => ({ t: "push" as const, v })) },
  { weight: 4, arbitrary: fc.constant({ t: "next" as const }) },
  { weight: 1, arbitrary: fc.boolean().map((err) => ({ t: "end" as const, err })) },
  { weight: 1, arbitrary: fc.constant({ t: "return" as const }) },
);

async function flush(): Promise<void> {
  for (let i = 0; i < 4; i++) await Promise.resolve();
}

describe("PushStream", () => {
  it("behaves like the model for any sequence of pushes, reads, ends and returns", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.constantFrom<OverflowPolicy>("drop-oldest", "fail"),
        fc.array(opArb, { maxLength: 40 }),
        async (max, overflow, ops) => {
          let returns = 0;
          const s = new PushStream<number>({
            maxBuffered: max,
            overflow,
            overflowError: () => MpregError.overloaded("full"),
            onReturn: () => returns++,
          });
          const m = new Model(max, overflow);
          const outcomes = new Map<number, Outcome>();
          let id = 0;
          for (const op of ops) {
            if (op.t === "push") expect(s.push(op.v)).toBe(m.push(op.v));
            else if (op.t === "end") {
              s.end(op.err ? MpregError.overloaded("full") : undefined);
              m.end(op.err);
            } else if (op.t === "return") {
              await s.return();
              m.ret();
            } else {
              const n = ++id;
              s.next().then(
                (r) => outcomes.set(n, r.done ? { k: "done" } : { k: "value", v: r.value }),
                (e: MpregError) => outcomes.set(n, { k: "error", code: e.code }),
              );
              m.next(n);
            }
            await flush();
            expect(outcomes).toEqual(m.outcomes);
            expect(s.size).toBe(m.buf.length);
            expect(s.dropped).toBe(m.dropped);
            expect(s.closed).toBe(m.closed);
            expect(returns).toBe(m.returns);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("ends a for-await loop cleanly on end(), and a break calls onReturn once", async () => {
    let returns = 0;
    const s = new PushStream<number>({ maxBuffered: 10, overflow: "drop-oldest", onReturn: () => returns++ });
    s.push(1);
    s.push(2);
    s.end();
    const seen: number[] = [];
    for await (const v of s) seen.push(v);
    expect(seen).toEqual([1, 2]);
    expect(returns).toBe(0);

    const t = new PushStream<number>({ maxBuffered: 10, overflow: "drop-oldest", onReturn: () => returns++ });
    t.push(1);
    t.push(2);
    for await (const v of t) if (v === 1) break;
    expect(returns).toBe(1);
    expect(t.push(3)).toBe(false);
  });

  it("keeps order and bounds memory over many items (compaction)", async () => {
    const s = new PushStream<number>({ maxBuffered: 100, overflow: "drop-oldest" });
    const out: number[] = [];
    for (let i = 0; i < 10_000; i++) {
      s.push(i);
      if (i % 3 === 0) out.push((await s.next()).value as number);
    }
    while (s.size > 0) out.push((await s.next()).value as number);
    expect(out.length + s.dropped).toBe(10_000);
    for (let i = 1; i < out.length; i++) expect(out[i]!).toBeGreaterThan(out[i - 1]!);
    expect(out.at(-1)).toBe(9999);
  });
});
