import type { PubsubNotificationMessage } from "@mpreg/envelope";
import { compilePattern } from "@mpreg/router";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RetentionStore } from "./index.js";

const msg = (id: string, topic = "t"): PubsubNotificationMessage => ({ topic, payload: id, headers: {}, message_id: id, publisher: "n", timestamp: 0 });
const ALL = [compilePattern("#")];

describe("RetentionStore", () => {
  it("limits by count, bytes and age; evicting the oldest", () => {
    const s = new RetentionStore({ maxAgeMs: 1000, maxMessages: 3, maxBytes: 250 });
    for (let i = 0; i < 5; i++) s.add(msg(`m${i}`), 50, 0);
    expect(s.query(ALL, -Infinity, 100, 0).map((r) => r.message.message_id)).toEqual(["m2", "m3", "m4"]);
    s.add(msg("big"), 200, 0);
    expect(s.query(ALL, -Infinity, 100, 0).map((r) => r.message.message_id)).toEqual(["m4", "big"]);
    expect(s.bytes).toBe(250);
    s.add(msg("huge"), 251, 0);
    expect(s.count).toBe(2);
    s.add(msg("late"), 10, 900); // 260 bytes would be too many: m4 goes
    expect(s.query(ALL, -Infinity, 100, 900).map((r) => r.message.message_id)).toEqual(["big", "late"]);
    expect(s.evictExpired(1500)).toBe(1);
    expect(s.query(ALL, -Infinity, 100, 1500).map((r) => r.message.message_id)).toEqual(["late"]);
    expect(s.query(ALL, -Infinity, 100, 1901)).toEqual([]);
    // m0, m1 (count), m2, m3 (count, bytes), huge (too large), m4 (bytes), big and late (age).
    expect(s.stats()).toEqual({ count: 0, bytes: 0, evicted: 8 });
  });

  it("maxMessages 0 retains nothing", () => {
    const s = new RetentionStore({ maxAgeMs: 1000, maxMessages: 0, maxBytes: 1000 });
    s.add(msg("a"), 1, 0);
    expect(s.count).toBe(0);
  });

  it("a clock stepping back does not break age order", () => {
    const s = new RetentionStore({ maxAgeMs: 100, maxMessages: 10, maxBytes: 1000 });
    s.add(msg("a"), 1, 1000);
    s.add(msg("b"), 1, 500); // held at 1000
    expect(s.query(ALL, 1000, 10, 1000).map((r) => r.message.message_id)).toEqual(["a", "b"]);
    expect(s.evictExpired(1101)).toBe(2);
  });

  it("query: only matching topics, at or after `since`, the newest `max`, oldest first", () => {
    const s = new RetentionStore({ maxAgeMs: 1e9, maxMessages: 100, maxBytes: 1e9 });
    const topics = ["a.x", "b.x", "a.y", "a.x.z", "a.x"];
    topics.forEach((t, i) => s.add(msg(`m${i}`, t), 1, i * 10));
    const q = (p: string[], since: number, max: number) => s.query(p.map((x) => compilePattern(x)), since, max, 100).map((r) => r.message.message_id);
    expect(q(["a.*"], -Infinity, 10)).toEqual(["m0", "m2", "m4"]);
    expect(q(["a.*"], 15, 10)).toEqual(["m2", "m4"]);
    expect(q(["a.*", "a.#"], -Infinity, 2)).toEqual(["m3", "m4"]);
    expect(q(["c"], -Infinity, 10)).toEqual([]);
  });

  it("always within its limits and equal to a naive model (property)", () => {
    const op = fc.record({ size: fc.integer({ min: 1, max: 120 }), dt: fc.constantFrom(0, 10, 50, 400) });
    fc.assert(
      fc.property(
        fc.record({ maxAgeMs: fc.integer({ min: 0, max: 1000 }), maxMessages: fc.integer({ min: 0, max: 8 }), maxBytes: fc.integer({ min: 0, max: 400 }) }),
        fc.array(op, { maxLength: 60 }),
        (limits, ops) => {
          const s = new RetentionStore(limits);
          let model: Array<{ id: string; size: number; at: number }> = [];
          let now = 0;
          ops.forEach((o, i) => {
            now += o.dt;
            s.add(msg(`m${i}`), o.size, now);
            if (limits.maxMessages > 0 && o.size <= limits.maxBytes) model.push({ id: `m${i}`, size: o.size, at: now });
            model = model.filter((m) => m.at >= now - limits.maxAgeMs);
            while (model.length > limits.maxMessages || model.reduce((a, m) => a + m.size, 0) > limits.maxBytes) model.shift();
            expect(s.count).toBeLessThanOrEqual(limits.maxMessages);
            expect(s.bytes).toBeLessThanOrEqual(limits.maxBytes);
            expect(s.query(ALL, -Infinity, 1000, now).map((r) => r.message.message_id)).toEqual(model.map((m) => m.id));
          });
        },
      ),
      { numRuns: 300 },
    );
  });
});
