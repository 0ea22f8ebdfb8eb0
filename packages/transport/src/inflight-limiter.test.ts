import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_INFLIGHT_LIMIT, InflightLimiter } from "./inflight-limiter.js";

describe("InflightLimiter", () => {
  it("matches a counter model under any sequence of acquire/release", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.array(fc.boolean(), { maxLength: 300 }), (limit, ops) => {
        const l = new InflightLimiter(limit);
        let model = 0;
        for (const acquire of ops) {
          if (acquire) {
            const ok = l.tryAcquire();
            expect(ok).toBe(model < limit);
            if (ok) model++;
          } else if (model > 0) {
            l.release();
            model--;
          } else {
            expect(() => l.release()).toThrow(/without acquire/);
          }
          expect(l.inflight).toBe(model);
          expect(l.inflight).toBeLessThanOrEqual(limit);
        }
      }),
    );
  });

  it("defaults to 1024 and refuses a bad limit", () => {
    expect(new InflightLimiter().limit).toBe(DEFAULT_INFLIGHT_LIMIT);
    expect(DEFAULT_INFLIGHT_LIMIT).toBe(1024);
    expect(() => new InflightLimiter(0)).toThrow(/positive integer/);
    expect(() => new InflightLimiter(1.5)).toThrow(/positive integer/);
  });
});
