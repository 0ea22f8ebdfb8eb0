/** Latency statistics of `mpreg bench`: percentiles by nearest rank over every sample. */

/** The bench summary's latency part, in milliseconds. */
export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/**
 * The `p`-th percentile (0 < p ≤ 100) of ascending `sorted` by nearest rank: the smallest
 * sample with at least p% of the samples at or below it. NaN for no samples.
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

/** Summarises samples (any order; the array is sorted in place). */
export function summarize(samples: Float64Array): LatencySummary {
  samples.sort();
  let sum = 0;
  for (const s of samples) sum += s;
  const n = samples.length;
  return {
    count: n,
    mean: n === 0 ? Number.NaN : sum / n,
    p50: percentile(samples, 50),
    p90: percentile(samples, 90),
    p99: percentile(samples, 99),
    max: n === 0 ? Number.NaN : samples[n - 1]!,
  };
}

/** A progress bar line: `[#####-----] 512/1000  3,200/s`. */
export function progressBar(done: number, total: number, ratePerS: number, width = 30): string {
  const filled = total === 0 ? width : Math.min(width, Math.floor((done / total) * width));
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total}  ${Math.round(ratePerS).toLocaleString("en-US")}/s`;
}
