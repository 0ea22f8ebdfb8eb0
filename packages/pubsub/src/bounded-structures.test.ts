import type { PubsubNotification } from "@mpreg/envelope";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BoundedIdSet, NotificationQueue, estimateBytes } from "./index.js";

const frame = (n: number): PubsubNotification => ({
  role: "pubsub-notification",
  subscription_id: "s",
  message: { topic: "t", payload: n, headers: {}, message_id: `m${n}`, publisher: "p", timestamp: 0 },
});

describe("BoundedIdSet", () => {
  it("remembers at least the last `capacity` distinct ids, never more than twice that (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 }), fc.array(fc.nat(30), { maxLength: 200 }), (cap, ids) => {
        const s = new BoundedIdSet(cap);
        // Distinct ids in the order they were (last) accepted.
        const accepted: string[] = [];
        for (const n of ids) {
          const id = `i${n}`;
          const recent = accepted.slice(-cap).includes(id);
          const had = s.has(id);
          const fresh = s.add(id);
          expect(fresh).toBe(!had);
          expect(s.has(id)).toBe(true);
          if (recent) expect(fresh).toBe(false);
          if (fresh) {
            const at = accepted.indexOf(id);
            if (at >= 0) accepted.splice(at, 1);
            accepted.push(id);
          }
          // The last `cap` accepted ids are remembered (a duplicate among them is refused).
          for (const recent of accepted.slice(-cap)) expect(s.has(recent)).toBe(true);
          expect(s.size).toBeLessThanOrEqual(2 * cap);
        }
      }),
    );
  });

  it("a remembered id is refused; a forgotten one is accepted again", () => {
    const s = new BoundedIdSet(2);
    expect(s.add("a")).toBe(true);
    expect(s.add("a")).toBe(false);
    for (const id of ["b", "c", "d", "e"]) s.add(id);
    expect(s.has("a")).toBe(false);
    expect(s.add("a")).toBe(true);
  });
});

describe("NotificationQueue", () => {
  it("FIFO, never above its limits or the shared budget, dropping the oldest (property)", () => {
    const op = fc.oneof(
      fc.record({ queue: fc.nat(1), push: fc.integer({ min: 1, max: 50 }) }),
      fc.record({ queue: fc.nat(1), shift: fc.constant(true) }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 120 }),
        fc.integer({ min: 1, max: 200 }),
        fc.array(op, { maxLength: 200 }),
        (maxCount, maxBytes, budgetMax, ops) => {
          const budget = { bytes: 0, max: budgetMax };
          const queues = [new NotificationQueue(maxCount, maxBytes, budget), new NotificationQueue(maxCount, maxBytes, budget)];
          const models: Array<Array<{ n: number; size: number }>> = [[], []];
          const sum = (m: Array<{ size: number }>) => m.reduce((a, x) => a + x.size, 0);
          let n = 0;
          for (const o of ops) {
            const q = queues[o.queue]!;
            const model = models[o.queue]!;
            if ("push" in o) {
              const other = sum(models[1 - o.queue]!);
              let dropped = 0;
              while (model.length > 0 && (model.length >= maxCount || sum(model) + o.push > maxBytes || other + sum(model) + o.push > budgetMax)) {
                model.shift();
                dropped++;
              }
              if (other + sum(model) + o.push > budgetMax) dropped++;
              else model.push({ n, size: o.push });
              expect(q.push(frame(n), o.push)).toBe(dropped);
              n++;
            } else {
              expect(q.shift()?.message.payload).toBe(model.shift()?.n);
            }
            for (const k of [0, 1]) {
              expect(queues[k]!.length).toBe(models[k]!.length);
              expect(queues[k]!.bytes).toBe(sum(models[k]!));
            }
            expect(budget.bytes).toBe(sum(models[0]!) + sum(models[1]!));
            expect(budget.bytes).toBeLessThanOrEqual(budgetMax);
            expect(q.length).toBeLessThanOrEqual(maxCount);
          }
          queues[0]!.clear();
          queues[1]!.clear();
          expect(budget.bytes).toBe(0);
        },
      ),
    );
  });

  it("keeps order through many pushes, drops and shifts", () => {
    const q = new NotificationQueue(10_000, 1e12);
    let dropped = 0;
    for (let i = 0; i < 50_000; i++) dropped += q.push(frame(i), 1);
    expect(dropped).toBe(40_000);
    expect(q.length).toBe(10_000);
    for (let i = 40_000; i < 45_000; i++) expect(q.shift()?.message.payload).toBe(i);
    for (let i = 50_000; i < 52_000; i++) q.push(frame(i), 1);
    const rest: unknown[] = [];
    for (let f = q.shift(); f !== undefined; f = q.shift()) rest.push(f.message.payload);
    expect(rest).toEqual([...Array.from({ length: 5000 }, (_, k) => 45_000 + k), ...Array.from({ length: 2000 }, (_, k) => 50_000 + k)]);
    expect(q.length).toBe(0);
    expect(q.bytes).toBe(0);
  });
});

describe("estimateBytes", () => {
  it("counts strings, numbers, binary and containers", () => {
    expect(estimateBytes("abc")).toBe(4);
    expect(estimateBytes(1)).toBe(9);
    expect(estimateBytes(new Uint8Array(100))).toBe(105);
    expect(estimateBytes({ ab: [1, "x"] })).toBe(5 + 3 + 5 + 9 + 2);
    expect(estimateBytes(null)).toBe(1);
  });

  it("stops early past the limit (huge arrays, cycles)", () => {
    expect(estimateBytes(new Array(1e6).fill(0), 1000)).toBeGreaterThan(1000);
    const cyclic: Record<string, unknown> = { a: "x" };
    cyclic.self = cyclic;
    expect(estimateBytes(cyclic, 10_000)).toBeGreaterThan(10_000);
  });
});
