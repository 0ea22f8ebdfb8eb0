import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_RATE_POINTS, RateTracker, browserClientUrl, gauge, parseMetrics, sumMetric } from "./dashboard-model.js";

const SCRAPE = (requests: number, frames: number, durCount: number, durSum: number, fun: Record<string, number> = {}) =>
  [
    "# HELP mpreg_rpc_requests_total rpc requests received",
    "# TYPE mpreg_rpc_requests_total counter",
    `mpreg_rpc_requests_total ${requests}`,
    `mpreg_frames_received_total ${frames}`,
    `mpreg_connections 3`,
    `mpreg_errors_total{code="1001",name="NOT_FOUND"} 2`,
    `mpreg_request_duration_seconds_sum ${durSum}`,
    `mpreg_request_duration_seconds_count ${durCount}`,
    ...Object.entries(fun).map(([f, n]) => `mpreg_function_requests_total{fun="${f}",outcome="ok"} ${n}`),
  ].join("\n");

describe("parseMetrics", () => {
  it("reads names, labels (escapes undone) and values; skips comments and bad lines", () => {
    const s = parseMetrics('# TYPE x gauge\nx 1\ny{a="b",c="q\\"uote\\\\"} 2.5\n\nnot a metric line\nz{a="1"} NaNx\nw 1e3\n');
    expect(s).toEqual([
      { name: "x", labels: {}, value: 1 },
      { name: "y", labels: { a: "b", c: 'q"uote\\' }, value: 2.5 },
      { name: "w", labels: {}, value: 1000 },
    ]);
  });

  it("sums a metric over its labels; a gauge is its one unlabelled value or null", () => {
    const s = parseMetrics(SCRAPE(1, 2, 3, 0.5, { add: 4, mul: 5 }));
    expect(sumMetric(s, "mpreg_function_requests_total")).toBe(9);
    expect(sumMetric(s, "absent")).toBe(0);
    expect(gauge(s, "mpreg_connections")).toBe(3);
    expect(gauge(s, "absent")).toBeNull();
  });

  it("never throws on any text", () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (t) => Array.isArray(parseMetrics(t))));
  });
});

describe("RateTracker", () => {
  it("gives per-second rates and the mean latency between two scrapes", () => {
    const t = new RateTracker();
    expect(t.push(parseMetrics(SCRAPE(10, 20, 10, 0.1, { add: 4 })), 1000)).toBeUndefined();
    const p = t.push(parseMetrics(SCRAPE(30, 60, 30, 0.5, { add: 8, mul: 2 })), 3000)!;
    expect(p.rates.requests).toBe(10);
    expect(p.rates.frames).toBe(20);
    expect(p.rates.errors).toBe(0);
    expect(p.meanLatencyMs).toBeCloseTo(20);
    expect(p.functions).toEqual({ add: 2, mul: 1 });
    // No request finished in between: no latency rather than 0 ms.
    expect(t.push(parseMetrics(SCRAPE(30, 60, 30, 0.5)), 4000)!.meanLatencyMs).toBeNull();
  });

  it("a counter that went down (restart) counts from zero; a stale scrape is ignored", () => {
    const t = new RateTracker();
    t.push(parseMetrics(SCRAPE(100, 100, 0, 0)), 0);
    expect(t.push(parseMetrics(SCRAPE(5, 5, 0, 0)), 1000)!.rates.requests).toBe(5);
    expect(t.push(parseMetrics(SCRAPE(6, 6, 0, 0)), 1000)).toBeUndefined();
  });

  it("rates are never negative and the history stays bounded", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(1000), fc.integer({ min: 1, max: 5000 })), { minLength: 1, maxLength: MAX_RATE_POINTS + 30 }), (steps) => {
        const t = new RateTracker();
        let at = 0;
        for (const [n, dt] of steps) {
          at += dt;
          const p = t.push(parseMetrics(SCRAPE(n, n, 0, 0)), at);
          if (p) for (const v of Object.values(p.rates)) expect(v).toBeGreaterThanOrEqual(0);
        }
        expect(t.history().length).toBe(Math.min(steps.length - 1, MAX_RATE_POINTS));
      }),
    );
  });
});

describe("browserClientUrl", () => {
  it("replaces an unspecified listen address with the page's host, leaves others alone", () => {
    expect(browserClientUrl("ws://0.0.0.0:6666", "example.org")).toBe("ws://example.org:6666");
    expect(browserClientUrl("ws://[::]:6666", "10.0.0.2")).toBe("ws://10.0.0.2:6666");
    expect(browserClientUrl("ws://[::]:6666", "fe80::1")).toBe("ws://[fe80::1]:6666");
    expect(browserClientUrl("ws://127.0.0.1:6666", "example.org")).toBe("ws://127.0.0.1:6666");
    expect(browserClientUrl("not a url", "h")).toBe("not a url");
  });
});
