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
  it("remembers exactly the last `capacity` distinct ids (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 }), fc.array(fc.nat(20), { maxLength: 100 }), (cap, ids) => {
        const s = new BoundedIdSet(cap);
        const model: string[] = [];
        for (const n of ids) {
          const id = `i${n}`;
          expect(s.add(id)).toBe(!model.includes(id));
          if (!model.includes(id)) {
            model.push(id);
            if (model.length > cap) model.shift();
          }
          expect(s.size).toBe(model.length);
          for (let k = 0; k <= 20; k++) expect(s.has(`i${k}`)).toBe(model.includes(`i${k}`));
        }
      }),
    );
  });
});

describe("NotificationQueue", () => {
  it("FIFO, never above its limits, dropping the oldest (property)", () => {
    const op = fc.oneof(fc.record({ push: fc.integer({ min: 1, max: 50 }) }), fc.constant({ shift: true as const }));
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 120 }), fc.array(op, { maxLength: 200 }), (maxCount, maxBytes, ops) => {
        const q = new NotificationQueue(maxCount, maxBytes);
        let model: Array<{ n: number; size: number }> = [];
        let n = 0;
        let droppedModel = 0;
        let dropped = 0;
        for (const o of ops) {
          if ("push" in o) {
            dropped += q.push(frame(n), o.push);
            model.push({ n, size: o.push });
            while (model.length > 1 && (model.length > maxCount || model.reduce((a, m) => a + m.size, 0) > maxBytes)) {
              model.shift();
              droppedModel++;
            }
            n++;
          } else {
            expect(q.shift()?.message.payload).toBe(model.shift()?.n);
          }
          expect(q.length).toBe(model.length);
          expect(q.length).toBeLessThanOrEqual(maxCount);
          expect(q.bytes).toBe(model.reduce((a, m) => a + m.size, 0));
          expect(dropped).toBe(droppedModel);
        }
      }),
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
