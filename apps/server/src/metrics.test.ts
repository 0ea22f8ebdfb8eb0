import { waitFor } from "@mpreg/testkit";
import { describe, expect, it } from "vitest";
import { parsePrometheus, sampleValue } from "../test/prometheus-text.js";
import { gauge, parseMetrics, sumMetric } from "@mpreg/dashboard";
import { LATENCY_BUCKETS_S, MAX_FUNCTION_LABELS, NodeMetrics } from "./metrics.js";

const relay = {
  relayed: 0,
  gossipRelayed: 0,
  droppedLoop: 0,
  droppedHops: 0,
  droppedNoRoute: 0,
  droppedTooLarge: 0,
  droppedForged: 0,
  unhandled: 0,
  handshakesRefused: 0,
  droppedForeign: 0,
};
const render = (m: NodeMetrics) => m.render({ connections: 1, functions: 2, peerLinks: 0 }, relay as never);

describe("NodeMetrics", () => {
  it("renders what the dashboard page reads", () => {
    const m = new NodeMetrics();
    m.observeRequest("add", 3, 0);
    m.observeRequest("add", 5, 1001);
    const s = parseMetrics(m.render({ connections: 2, functions: 7, peerLinks: 1 }, { ...relay, relayed: 4 } as never));
    m.close();
    expect(gauge(s, "mpreg_connections")).toBe(2);
    expect(sumMetric(s, "mpreg_function_requests_total")).toBe(2);
    expect(sumMetric(s, "mpreg_request_duration_seconds_count")).toBe(2);
    expect(sumMetric(s, "mpreg_relay_forwarded_total")).toBe(4);
  });

  it("renders valid Prometheus text with every family typed", () => {
    const m = new NodeMetrics();
    const { types, samples } = parsePrometheus(render(m));
    expect(types.get("mpreg_request_duration_seconds")).toBe("histogram");
    expect(types.get("mpreg_function_requests_total")).toBe("counter");
    expect(types.get("mpreg_event_loop_delay_seconds")).toBe("gauge");
    expect(sampleValue(samples, "mpreg_request_duration_seconds_count")).toBe(0);
    expect(sampleValue(samples, "mpreg_event_loop_delay_seconds", { quantile: "0.99" })).toBeGreaterThanOrEqual(0);
    expect(types.get("mpreg_event_loop_utilization")).toBe("gauge");
    const elu = sampleValue(samples, "mpreg_event_loop_utilization");
    expect(elu).toBeGreaterThanOrEqual(0);
    expect(elu).toBeLessThanOrEqual(1);
    m.close();
  });

  it("samples the event-loop delay only while scraped: from a scrape until samplerIdleMs after the last", async () => {
    const m = new NodeMetrics({ samplerIdleMs: 300 });
    expect(m.sampling).toBe(false);
    render(m);
    expect(m.sampling).toBe(true);
    await waitFor(() => !m.sampling, { timeoutMs: 5000 });
    render(m);
    expect(m.sampling).toBe(true);
    m.close();
    expect(m.sampling).toBe(false);
    render(m);
    expect(m.sampling).toBe(false);
  });

  it("observeRequest fills cumulative latency buckets and per-function counts", () => {
    const m = new NodeMetrics();
    m.observeRequest("echo", 0.2, 0); // 0.0002 s: first bucket
    m.observeRequest("echo", 3, 0); // 0.003 s: le=0.005
    m.observeRequest("add", 20_000, 1004); // beyond every bound: only +Inf
    m.observeRequest('we"ird\nname', 1, 1001);
    const { samples } = parsePrometheus(render(m));
    const bucket = (le: string) => sampleValue(samples, "mpreg_request_duration_seconds_bucket", { le });
    expect(bucket("0.0005")).toBe(1);
    expect(bucket("0.0025")).toBe(2);
    expect(bucket("0.005")).toBe(3);
    expect(bucket("10")).toBe(3);
    expect(bucket("+Inf")).toBe(4);
    expect(sampleValue(samples, "mpreg_request_duration_seconds_count")).toBe(4);
    expect(sampleValue(samples, "mpreg_request_duration_seconds_sum")).toBeCloseTo(20.0042, 6);
    // Buckets never decrease.
    const values = LATENCY_BUCKETS_S.map((b) => bucket(String(b))!);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    expect(sampleValue(samples, "mpreg_function_requests_total", { fun: "echo", outcome: "ok" })).toBe(2);
    expect(sampleValue(samples, "mpreg_function_requests_total", { fun: "add", outcome: "TIMEOUT" })).toBe(1);
    expect(sampleValue(samples, "mpreg_function_requests_total", { fun: 'we\\"ird\\nname', outcome: "NOT_FOUND" })).toBe(1);
    m.close();
  });

  it("bounds the function labels: later names count under (other)", () => {
    const m = new NodeMetrics();
    for (let i = 0; i < MAX_FUNCTION_LABELS + 10; i++) m.observeRequest(`f${i}`, 1, 0);
    m.observeRequest("f0", 1, 0); // known names keep their own label
    const { samples } = parsePrometheus(render(m));
    const perFun = samples.filter((s) => s.name === "mpreg_function_requests_total");
    expect(perFun).toHaveLength(MAX_FUNCTION_LABELS + 1);
    expect(sampleValue(samples, "mpreg_function_requests_total", { fun: "(other)" })).toBe(10);
    expect(sampleValue(samples, "mpreg_function_requests_total", { fun: "f0" })).toBe(2);
    m.close();
  });

  it("the parser refuses malformed text (it can fail)", () => {
    expect(() => parsePrometheus("a 1")).toThrow(/newline/);
    expect(() => parsePrometheus("# TYPE a counter\nb 1\n")).toThrow(/outside its family/);
    expect(() => parsePrometheus("# TYPE a counter\na{x=1} 1\n")).toThrow(/bad/);
    expect(() => parsePrometheus("# TYPE a counter\n# TYPE a counter\n")).toThrow(/twice/);
  });
});
