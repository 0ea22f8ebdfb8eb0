import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from "node:perf_hooks";
import { errorCodeName } from "@mpreg/envelope";
import type { FabricStats } from "@mpreg/fabric";

/**
 * Period of the event-loop delay sampler (ms; the samples include it, so it is subtracted).
 * Each sample wakes an idle node: at 20 ms that was 50 wakes a second, most of an idle node's
 * CPU (docs/benchmarks.md, idle cost). At 250 ms a 15-second scrape still holds 60 samples;
 * `mpreg_event_loop_utilization` (no timer) shows how busy the loop was in between.
 */
const LOOP_RESOLUTION_MS = 250;

/**
 * The sampler runs only while `/metrics` is scraped: it starts at a scrape and stops this long
 * after the last one, so a node nobody watches is not woken 4 times a second for a histogram
 * nobody reads.
 */
export const LOOP_SAMPLER_IDLE_MS = 300_000;

/** Upper bounds (seconds) of the request latency histogram's buckets. */
export const LATENCY_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

/**
 * Most distinct function labels counted one by one; later names are counted under
 * `fun="(other)"`, so a client inventing names cannot grow the metrics without bound.
 */
export const MAX_FUNCTION_LABELS = 256;

/**
 * Counters of one node, rendered in Prometheus text format by the monitoring API
 * (docs/operations.md lists every metric).
 *
 * What the node calls:
 * - `countError(code)` for each error reply (any role);
 * - `observeRequest(fun, ms, code)` once per finished `rpc` request;
 * - `close()` on shutdown (stops the event-loop delay sampler).
 */
export class NodeMetrics {
  connectionsOpened = 0;
  framesIn = 0;
  requests = 0;
  private readonly errors = new Map<number, number>();
  /** Cumulative bucket counts, one per bound of LATENCY_BUCKETS_S, then +Inf. */
  private readonly buckets = new Array<number>(LATENCY_BUCKETS_S.length + 1).fill(0);
  private latencySumS = 0;
  private latencyCount = 0;
  /** `fun` → code → count (code 0: success). */
  private readonly calls = new Map<string, Map<number, number>>();
  private readonly loopDelay: IntervalHistogram;
  private lastElu: EventLoopUtilization = performance.eventLoopUtilization();
  private readonly samplerIdleMs: number;
  private samplerStop: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  /** @param opts.samplerIdleMs how long after the last scrape the loop-delay sampler stops (default {@link LOOP_SAMPLER_IDLE_MS}) */
  constructor(opts: { samplerIdleMs?: number } = {}) {
    // Sampled by a libuv timer that does not keep the process alive; started by the first scrape.
    this.loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    this.samplerIdleMs = opts.samplerIdleMs ?? LOOP_SAMPLER_IDLE_MS;
  }

  /** Whether the event-loop delay sampler is running (from a scrape until `samplerIdleMs` after the last). */
  get sampling(): boolean {
    return this.samplerStop !== undefined;
  }

  /** A scrape: (re)starts the sampler and pushes its stop `samplerIdleMs` later. */
  private keepSampling(): void {
    if (this.closed) return;
    if (this.samplerStop !== undefined) {
      this.samplerStop.refresh();
      return;
    }
    this.loopDelay.reset();
    this.loopDelay.enable();
    this.samplerStop = setTimeout(() => {
      this.samplerStop = undefined;
      this.loopDelay.disable();
    }, this.samplerIdleMs);
    this.samplerStop.unref();
  }

  countError(code: number): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  /**
   * Records one finished `rpc` request: its latency (ingress to reply) in the latency histogram
   * and a count under its function and outcome.
   *
   * @param fun the function of a single-command request; for a multi-command request, pass
   *   `"(multi)"` (or the first command's function, if that reads better for you)
   * @param ms time from receiving the request to sending the reply, in milliseconds
   * @param code the reply's error code, or 0 for success. Does not count into
   *   `mpreg_errors_total` (call `countError` for that, as today).
   */
  observeRequest(fun: string, ms: number, code: number): void {
    const s = Math.max(0, ms) / 1000;
    this.latencySumS += s;
    this.latencyCount++;
    let i = 0;
    while (i < LATENCY_BUCKETS_S.length && s > LATENCY_BUCKETS_S[i]!) i++;
    this.buckets[i]!++;
    const label = this.calls.has(fun) || this.calls.size < MAX_FUNCTION_LABELS ? fun : "(other)";
    let byCode = this.calls.get(label);
    if (byCode === undefined) {
      byCode = new Map();
      this.calls.set(label, byCode);
    }
    byCode.set(code, (byCode.get(code) ?? 0) + 1);
  }

  /** Stops the event-loop delay sampler. */
  close(): void {
    this.closed = true;
    if (this.samplerStop !== undefined) clearTimeout(this.samplerStop);
    this.samplerStop = undefined;
    this.loopDelay.disable();
  }

  /**
   * @param gauges current values
   * @param relay the fabric's counters (multi-hop forwarding, handshakes)
   */
  render(gauges: { connections: number; functions: number; peerLinks: number }, relay: FabricStats, services: string[] = []): string {
    const lines = [
      "# TYPE mpreg_connections gauge",
      `mpreg_connections ${gauges.connections}`,
      "# TYPE mpreg_functions gauge",
      `mpreg_functions ${gauges.functions}`,
      "# TYPE mpreg_peer_links gauge",
      `mpreg_peer_links ${gauges.peerLinks}`,
      "# TYPE mpreg_relay_forwarded_total counter",
      `mpreg_relay_forwarded_total ${relay.relayed}`,
      "# TYPE mpreg_relay_gossip_sent_total counter",
      `mpreg_relay_gossip_sent_total ${relay.gossipRelayed}`,
      "# TYPE mpreg_relay_dropped_total counter",
      `mpreg_relay_dropped_total{reason="loop"} ${relay.droppedLoop}`,
      `mpreg_relay_dropped_total{reason="hops_exhausted"} ${relay.droppedHops}`,
      `mpreg_relay_dropped_total{reason="no_route"} ${relay.droppedNoRoute}`,
      `mpreg_relay_dropped_total{reason="too_large"} ${relay.droppedTooLarge}`,
      `mpreg_relay_dropped_total{reason="forged_path"} ${relay.droppedForged}`,
      `mpreg_relay_dropped_total{reason="foreign"} ${relay.droppedForeign}`,
      "# TYPE mpreg_fabric_unhandled_total counter",
      `mpreg_fabric_unhandled_total ${relay.unhandled}`,
      "# TYPE mpreg_peer_handshakes_refused_total counter",
      `mpreg_peer_handshakes_refused_total ${relay.handshakesRefused}`,
      "# TYPE mpreg_connections_opened_total counter",
      `mpreg_connections_opened_total ${this.connectionsOpened}`,
      "# TYPE mpreg_frames_received_total counter",
      `mpreg_frames_received_total ${this.framesIn}`,
      "# TYPE mpreg_rpc_requests_total counter",
      `mpreg_rpc_requests_total ${this.requests}`,
      "# TYPE mpreg_errors_total counter",
    ];
    for (const [code, n] of [...this.errors].sort((a, b) => a[0] - b[0])) {
      lines.push(`mpreg_errors_total{code="${code}",name="${errorCodeName(code)}"} ${n}`);
    }
    lines.push("# HELP mpreg_request_duration_seconds Time from an rpc request's arrival to its reply.");
    lines.push("# TYPE mpreg_request_duration_seconds histogram");
    let cumulative = 0;
    for (let i = 0; i < LATENCY_BUCKETS_S.length; i++) {
      cumulative += this.buckets[i]!;
      lines.push(`mpreg_request_duration_seconds_bucket{le="${LATENCY_BUCKETS_S[i]}"} ${cumulative}`);
    }
    lines.push(`mpreg_request_duration_seconds_bucket{le="+Inf"} ${this.latencyCount}`);
    lines.push(`mpreg_request_duration_seconds_sum ${this.latencySumS}`);
    lines.push(`mpreg_request_duration_seconds_count ${this.latencyCount}`);
    lines.push("# TYPE mpreg_function_requests_total counter");
    for (const [fun, byCode] of [...this.calls].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      for (const [code, n] of [...byCode].sort((a, b) => a[0] - b[0])) {
        const outcome = code === 0 ? "ok" : errorCodeName(code);
        lines.push(`mpreg_function_requests_total{fun="${escapeLabel(fun)}",outcome="${outcome}"} ${n}`);
      }
    }
    // Event-loop delay since the previous scrape (then reset), as prom-client reports it; the
    // first scrape (or the first after `samplerIdleMs` without one) has no sample yet: 0.
    const h = this.loopDelay;
    // Microsecond precision: finer digits are noise of the subtraction.
    const seconds = (ns: number) => (Number.isFinite(ns) ? Math.max(0, Math.round((ns / 1e3 - LOOP_RESOLUTION_MS * 1e3)) / 1e6) : 0);
    lines.push("# HELP mpreg_event_loop_delay_seconds Event-loop delay since the previous scrape.");
    lines.push("# TYPE mpreg_event_loop_delay_seconds gauge");
    for (const q of [50, 90, 99]) lines.push(`mpreg_event_loop_delay_seconds{quantile="${q / 100}"} ${seconds(h.percentile(q))}`);
    lines.push(`mpreg_event_loop_delay_seconds{quantile="1"} ${seconds(h.max)}`);
    h.reset();
    this.keepSampling();
    const elu = performance.eventLoopUtilization();
    lines.push("# HELP mpreg_event_loop_utilization Share of time the event loop was busy since the previous scrape (0..1).");
    lines.push("# TYPE mpreg_event_loop_utilization gauge");
    lines.push(`mpreg_event_loop_utilization ${Math.round(performance.eventLoopUtilization(elu, this.lastElu).utilization * 1e4) / 1e4}`);
    this.lastElu = elu;
    lines.push("# TYPE mpreg_process_resident_memory_bytes gauge");
    lines.push(`mpreg_process_resident_memory_bytes ${process.memoryUsage.rss()}`);
    lines.push(...services);
    return `${lines.join("\n")}\n`;
  }
}

/**
 * A service's numeric statistics as Prometheus gauges named `mpreg_<service>_<stat>` (camelCase
 * turned to snake_case); non-numeric fields are skipped. `stats` is one object, or one object per
 * label value (e.g. per cache namespace, labelled `{namespace="..."}`).
 */
export function statsLines(service: string, stats: object | { label: string; value: string; stats: object }[]): string[] {
  const sets = Array.isArray(stats) ? stats : [{ label: "", value: "", stats }];
  const byName = new Map<string, string[]>();
  for (const set of sets) {
    for (const [key, value] of Object.entries(set.stats)) {
      if (typeof value !== "number" || !Number.isFinite(value)) continue;
      const name = `mpreg_${service}_${key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`;
      const labels = set.label ? `{${set.label}="${escapeLabel(set.value)}"}` : "";
      const lines = byName.get(name) ?? [];
      lines.push(`${name}${labels} ${value}`);
      byName.set(name, lines);
    }
  }
  return [...byName].flatMap(([name, lines]) => [`# TYPE ${name} gauge`, ...lines]);
}

/** A Prometheus label value: backslash, double quote and newline escaped. */
function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}
