/** Seeded access traces for the hit-ratio benchmark, and the optimal (Belady) hit ratio on a trace. */

/** xorshift32 in [0, 1). */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

/** `length` draws from a Zipf(alpha) distribution over `universe` items (rank 0 most popular), as item ids. */
export function zipfTrace(universe: number, alpha: number, length: number, seed: number): Int32Array {
  const cdf = new Float64Array(universe);
  let sum = 0;
  for (let i = 0; i < universe; i++) {
    sum += 1 / Math.pow(i + 1, alpha);
    cdf[i] = sum;
  }
  const r = rng(seed);
  // Popularity rank -> id through a permutation, so popular items are not the low ids.
  const perm = Int32Array.from({ length: universe }, (_, i) => i);
  for (let i = universe - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  }
  const out = new Int32Array(length);
  for (let n = 0; n < length; n++) {
    const u = r() * sum;
    let lo = 0;
    let hi = universe - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    out[n] = perm[lo] as number;
  }
  return out;
}

/** A loop over `loopLength` items, repeated to `length` accesses. */
export function loopTrace(loopLength: number, length: number): Int32Array {
  return Int32Array.from({ length }, (_, i) => i % loopLength);
}

/**
 * A Zipf(alpha) load over `universe` items into which scans of one-time items are mixed:
 * every `period` accesses, a burst of `scanLength` never-repeated ids.
 */
export function scanMixTrace(universe: number, alpha: number, length: number, period: number, scanLength: number, seed: number): Int32Array {
  const z = zipfTrace(universe, alpha, length, seed);
  const out = new Int32Array(length);
  let next = universe;
  let zi = 0;
  for (let i = 0; i < length; i++) {
    out[i] = i % period < scanLength ? next++ : (z[zi++] as number);
  }
  return out;
}

/**
 * Belady's optimal hit ratio for a cache of `size` items: on a miss, keep the items used
 * soonest again (the new item may be bypassed when it is reused last). O(n log size).
 */
export function beladyHitRatio(trace: Int32Array, size: number): number {
  const n = trace.length;
  const nextUse = new Int32Array(n);
  const last = new Map<number, number>();
  for (let i = n - 1; i >= 0; i--) {
    const k = trace[i] as number;
    nextUse[i] = last.get(k) ?? n + i; // never again: beyond the end, distinct per access
    last.set(k, i);
  }
  // Max-heap of [nextUse, key] with lazy deletion: an item's current next use is in `cached`.
  const heapNext: number[] = [];
  const heapKey: number[] = [];
  const push = (nu: number, k: number) => {
    let i = heapNext.length;
    heapNext.push(nu);
    heapKey.push(k);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((heapNext[p] as number) >= nu) break;
      heapNext[i] = heapNext[p] as number;
      heapKey[i] = heapKey[p] as number;
      i = p;
    }
    heapNext[i] = nu;
    heapKey[i] = k;
  };
  const pop = () => {
    const lastN = heapNext.pop() as number;
    const lastK = heapKey.pop() as number;
    if (heapNext.length === 0) return;
    let i = 0;
    const len = heapNext.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= len) break;
      const r = l + 1;
      const c = r < len && (heapNext[r] as number) > (heapNext[l] as number) ? r : l;
      if ((heapNext[c] as number) <= lastN) break;
      heapNext[i] = heapNext[c] as number;
      heapKey[i] = heapKey[c] as number;
      i = c;
    }
    heapNext[i] = lastN;
    heapKey[i] = lastK;
  };
  const cached = new Map<number, number>();
  let hits = 0;
  for (let i = 0; i < n; i++) {
    const k = trace[i] as number;
    const nu = nextUse[i] as number;
    if (cached.has(k)) {
      hits++;
      cached.set(k, nu);
      push(nu, k);
      continue;
    }
    if (cached.size < size) {
      cached.set(k, nu);
      push(nu, k);
      continue;
    }
    // Find the cached item used farthest in the future (skipping stale heap entries).
    for (;;) {
      const topK = heapKey[0] as number;
      const topN = heapNext[0] as number;
      if (cached.get(topK) === topN) break;
      pop();
    }
    if ((heapNext[0] as number) > nu) {
      cached.delete(heapKey[0] as number);
      pop();
      cached.set(k, nu);
      push(nu, k);
    } // else: bypass the new item, it is reused last
  }
  return hits / n;
}
