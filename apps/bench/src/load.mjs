// Closed-loop load generation and summary statistics.
import { performance } from "node:perf_hooks";

/**
 * Keep `inFlight` operations outstanding on one connection until `durationMs` has passed or
 * `count` operations have completed (whichever is given), timing each one.
 * `op` performs one round trip and throws if the reply is wrong.
 * @param {{ inFlight: number, op: () => Promise<void>, durationMs?: number, count?: number }} o
 * @returns {Promise<{ completed: number, elapsedMs: number, latenciesUs: Float64Array }>}
 */
export async function closedLoop({ inFlight, op, durationMs, count }) {
  if (!(inFlight >= 1)) throw new Error(`inFlight must be >= 1, got ${inFlight}`);
  const byCount = count !== undefined;
  // Bounded sample buffer: by count it is exact; by time it grows by doubling (a 3 s run at
  // 100k/s is 300k doubles = 2.4 MB), capped so a runaway case cannot exhaust memory.
  const MAX_SAMPLES = 20_000_000;
  let samples = new Float64Array(byCount ? count : 65_536);
  let completed = 0;
  let issued = 0;
  const start = performance.now();
  const deadline = byCount ? Infinity : start + durationMs;
  let last = start;

  async function worker() {
    while (byCount ? issued < count : performance.now() < deadline) {
      issued++;
      const t0 = performance.now();
      await op();
      const t1 = performance.now();
      last = t1;
      if (completed === samples.length) {
        if (samples.length >= MAX_SAMPLES) throw new Error("sample buffer limit reached");
        const bigger = new Float64Array(Math.min(samples.length * 2, MAX_SAMPLES));
        bigger.set(samples);
        samples = bigger;
      }
      samples[completed++] = (t1 - t0) * 1000;
    }
  }

  const workers = [];
  for (let i = 0; i < inFlight; i++) workers.push(worker());
  await Promise.all(workers);
  return { completed, elapsedMs: last - start, latenciesUs: samples.subarray(0, completed) };
}

/** Value at quantile q (0..1) of an ascending-sorted array, nearest-rank. */
export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** Summary of one measured run. */
export function summarize({ completed, elapsedMs, latenciesUs }) {
  const sorted = Float64Array.from(latenciesUs).sort();
  return {
    completed,
    rps: elapsedMs > 0 ? (completed * 1000) / elapsedMs : NaN,
    p50Us: quantile(sorted, 0.5),
    p99Us: quantile(sorted, 0.99),
  };
}

/** Median of a list of numbers (mean of the two middle values for an even count). */
export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Poll `pred` every `everyMs` until it returns a truthy value, and return that value; a
 * rejection counts as "not yet". Throws after `timeoutMs`, naming `what`.
 * @template T
 * @param {() => Promise<T>} pred
 */
export async function until(pred, timeoutMs, what, everyMs = 10) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * One measured case: a warm-up, then `reps` runs of `durationMs` (one short run of 200
 * operations in smoke mode). Returns the median rate and the p50/p99 of the median run.
 * @param {() => Promise<void>} op
 * @param {number} inFlight
 * @param {{ smoke: boolean, durationMs: number, reps?: number }} o
 */
export async function measureCase(op, inFlight, { smoke, durationMs, reps = 3 }) {
  const n = smoke ? 1 : reps;
  const runs = [];
  await closedLoop({ inFlight, op, count: smoke ? 50 : Math.max(200, inFlight * 20) });
  for (let i = 0; i < n; i++) {
    const r = smoke ? await closedLoop({ inFlight, op, count: 200 }) : await closedLoop({ inFlight, op, durationMs });
    runs.push(summarize(r));
  }
  const mid = runs.slice().sort((a, b) => a.rps - b.rps)[runs.length >> 1];
  return { rps: median(runs.map((r) => r.rps)), p50Us: mid.p50Us, p99Us: mid.p99Us };
}
