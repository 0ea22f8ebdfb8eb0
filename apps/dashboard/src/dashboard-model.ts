/**
 * What the dashboard computes from two scrapes of `/metrics`: per-second rates of the node's
 * counters and the mean request latency between them. Pure and browser-safe (no Node imports):
 * the dashboard bundle runs it in the page, the unit tests run it in Node.
 */

/** One sample of the Prometheus text format: `name{labels} value`. */
export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The rates the dashboard shows, in display order: key, label, and the metric they count. */
export const DASHBOARD_RATES = [
  { key: "requests", label: "requests/s", metric: "mpreg_rpc_requests_total" },
  { key: "frames", label: "messages in/s", metric: "mpreg_frames_received_total" },
  { key: "published", label: "published/s", metric: "mpreg_pubsub_published" },
  { key: "delivered", label: "delivered/s", metric: "mpreg_pubsub_delivered" },
  { key: "relayed", label: "relayed/s", metric: "mpreg_relay_forwarded_total" },
  { key: "errors", label: "errors/s", metric: "mpreg_errors_total" },
] as const;

/** A key of {@link DASHBOARD_RATES}. */
export type RateKey = (typeof DASHBOARD_RATES)[number]["key"];

/** One point of the rate history. */
export interface RatePoint {
  at: number;
  rates: Record<RateKey, number>;
  /** Mean request latency in milliseconds over the interval; null when no request finished. */
  meanLatencyMs: number | null;
  /** Requests per second by function (`mpreg_function_requests_total`, every outcome). */
  functions: Record<string, number>;
}

/** Longest history kept: the sparkline's width. Older points are dropped. */
export const MAX_RATE_POINTS = 120;

/** Largest text parsed; a bigger scrape is cut there (a node's own metrics stay far below). */
const MAX_METRICS_CHARS = 4 * 1024 * 1024;

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses the Prometheus text exposition format (comments skipped, bad lines ignored). */
export function parseMetrics(text: string): MetricSample[] {
  const out: MetricSample[] = [];
  for (const raw of text.slice(0, MAX_METRICS_CHARS).split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = SAMPLE.exec(line);
    if (m === null) continue;
    const value = Number(m[4]);
    if (Number.isNaN(value)) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? "").matchAll(LABEL)) {
      labels[l[1]!] = l[2]!.replace(/\\n/g, "\n").replace(/\\(["\\])/g, "$1");
    }
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

/** Sum of every sample named `name` (all label sets). */
export function sumMetric(samples: readonly MetricSample[], name: string): number {
  let total = 0;
  for (const s of samples) if (s.name === name) total += s.value;
  return total;
}

/** The first sample named `name`, or null. */
export function gauge(samples: readonly MetricSample[], name: string): number | null {
  return samples.find((s) => s.name === name)?.value ?? null;
}

function byFunction(samples: readonly MetricSample[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const s of samples) {
    if (s.name !== "mpreg_function_requests_total") continue;
    const fun = s.labels["fun"] ?? "";
    m.set(fun, (m.get(fun) ?? 0) + s.value);
  }
  return m;
}

/**
 * Turns successive scrapes into rates. The first scrape only sets the baseline. A counter that
 * went down (the node restarted) counts from zero instead of giving a negative rate.
 */
export class RateTracker {
  private prev: { at: number; samples: readonly MetricSample[] } | undefined;
  private readonly points: RatePoint[] = [];

  /** Adds the scrape taken at `at` (ms); returns the new point, or undefined for the first. */
  push(samples: readonly MetricSample[], at: number): RatePoint | undefined {
    const prev = this.prev;
    this.prev = { at, samples };
    if (prev === undefined || at <= prev.at) return undefined;
    const seconds = (at - prev.at) / 1000;
    const delta = (now: number, before: number) => (now >= before ? now - before : now) / seconds;
    const rates = {} as Record<RateKey, number>;
    for (const r of DASHBOARD_RATES) rates[r.key] = delta(sumMetric(samples, r.metric), sumMetric(prev.samples, r.metric));
    const count = sumMetric(samples, "mpreg_request_duration_seconds_count") - sumMetric(prev.samples, "mpreg_request_duration_seconds_count");
    const sum = sumMetric(samples, "mpreg_request_duration_seconds_sum") - sumMetric(prev.samples, "mpreg_request_duration_seconds_sum");
    const before = byFunction(prev.samples);
    const functions: Record<string, number> = {};
    for (const [fun, n] of byFunction(samples)) functions[fun] = delta(n, before.get(fun) ?? 0);
    const point: RatePoint = { at, rates, meanLatencyMs: count > 0 && sum >= 0 ? (sum / count) * 1000 : null, functions };
    this.points.push(point);
    if (this.points.length > MAX_RATE_POINTS) this.points.shift();
    return point;
  }

  /** The history, oldest first (at most {@link MAX_RATE_POINTS}). */
  history(): readonly RatePoint[] {
    return this.points;
  }
}

/**
 * The WebSocket URL the page should dial: the node's client URL, with an unspecified listen
 * address (0.0.0.0, ::) replaced by the host the page was loaded from.
 */
export function browserClientUrl(nodeUrl: string, pageHostname: string): string {
  let u: URL;
  try {
    u = new URL(nodeUrl);
  } catch {
    return nodeUrl;
  }
  if (u.hostname === "0.0.0.0" || u.hostname === "[::]" || u.hostname === "::") {
    u.hostname = pageHostname.includes(":") && !pageHostname.startsWith("[") ? `[${pageHostname}]` : pageHostname;
  }
  // URL keeps a trailing slash on an empty path; the node's own URLs have none.
  return u.pathname === "/" && !nodeUrl.endsWith("/") ? u.href.slice(0, -1) : u.href;
}
