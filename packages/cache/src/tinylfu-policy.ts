import type { CacheEntry } from "./cache-entry.js";
import type { EvictionPolicy, PolicyLimits } from "./eviction-policy.js";
import { FrequencySketch } from "./frequency-sketch.js";
import { LinkedList } from "./linked-list.js";
import { over, shareOf, type Share } from "./segment-share.js";

/** Share of the limits given to the admission window (Caffeine's default, 1 %). */
export const WINDOW_FRACTION = 0.01;
/** Share of the main space given to its protected segment (the rest is probation). */
export const PROTECTED_FRACTION = 0.8;
/**
 * A candidate at least this frequent that loses the comparison is still admitted with
 * probability 1/128, so an attacker cannot pin the cache by flooding a victim's sketch counters.
 */
export const ADMIT_HASHDOS_THRESHOLD = 6;

const WINDOW = 0;
const PROBATION = 1;
const PROTECTED = 2;

/**
 * W-TinyLFU (Einziger, Friedman & Manes; Caffeine's design). New entries enter a small LRU
 * admission window (1 % of the limits). What overflows the window becomes a candidate at the
 * head of the main space's probation segment. When the cache must evict, the candidate is
 * compared with probation's LRU victim by their estimated frequency ({@link FrequencySketch},
 * which counts hits and misses): the more frequent one stays, the other is evicted. A hit in
 * probation promotes to the protected segment (80 % of the main space), whose overflow is
 * demoted back to probation. Recency (the window) absorbs bursts, frequency (the sketch)
 * keeps the popular entries against scans and loops. O(1) per operation.
 */
export class TinyLfuPolicy<V> implements EvictionPolicy<V> {
  readonly name = "tinylfu" as const;
  readonly usesKeyHash = true;
  readonly sketch: FrequencySketch;
  private readonly lists = [new LinkedList<V>(WINDOW), new LinkedList<V>(PROBATION), new LinkedList<V>(PROTECTED)] as const;
  private readonly windowShare: Share;
  private readonly protectedShare: Share;
  private readonly random: () => number;
  /**
   * Hash of the last key counted by `onMiss`: the usual read-miss-then-put of one key is one
   * access, so the insert that follows the miss does not count it again.
   */
  private lastMiss = -1;
  /** The entry most recently moved from the window to probation, compared at the next eviction. */
  private candidate: CacheEntry<V> | undefined = undefined;

  constructor(limits: PolicyLimits) {
    this.sketch = new FrequencySketch(limits.maxEntries);
    this.windowShare = shareOf(limits.maxEntries, limits.maxBytes, WINDOW_FRACTION);
    const mainFraction = (1 - WINDOW_FRACTION) * PROTECTED_FRACTION;
    this.protectedShare = shareOf(limits.maxEntries, limits.maxBytes, mainFraction);
    this.random = limits.random;
  }

  /** Which segment holds `e`: "window", "probation", "protected" or undefined (for tests). */
  segmentOf(e: CacheEntry<V>): "window" | "probation" | "protected" | undefined {
    return e.list === WINDOW ? "window" : e.list === PROBATION ? "probation" : e.list === PROTECTED ? "protected" : undefined;
  }

  onInsert(e: CacheEntry<V>): void {
    if (e.hash !== this.lastMiss) this.sketch.increment(e.hash);
    this.lastMiss = -1;
    const window = this.lists[WINDOW];
    window.pushHead(e);
    let first: CacheEntry<V> | undefined;
    while (window.count > 0 && over(window, this.windowShare)) {
      const t = window.tail as CacheEntry<V>;
      window.remove(t);
      this.lists[PROBATION].pushHead(t);
      first ??= t;
    }
    if (first !== undefined) this.candidate = first;
  }

  onHit(e: CacheEntry<V>): void {
    this.sketch.increment(e.hash);
    this.lastMiss = -1;
    this.touch(e);
  }

  private touch(e: CacheEntry<V>): void {
    if (e.list === PROBATION) {
      this.lists[PROBATION].remove(e);
      if (this.candidate === e) this.candidate = undefined;
      const prot = this.lists[PROTECTED];
      prot.pushHead(e);
      while (prot.count > 1 && over(prot, this.protectedShare)) {
        const t = prot.tail as CacheEntry<V>;
        prot.remove(t);
        this.lists[PROBATION].pushHead(t);
      }
    } else {
      (this.lists[e.list] as LinkedList<V>).moveToHead(e);
    }
  }

  onMiss(hash: number): void {
    this.sketch.increment(hash);
    this.lastMiss = hash;
  }

  onUpdate(e: CacheEntry<V>, oldSize: number): void {
    (this.lists[e.list] as LinkedList<V>).resize(oldSize, e.size);
    this.sketch.increment(e.hash);
    this.touch(e);
  }

  onRemove(e: CacheEntry<V>): void {
    (this.lists[e.list] as LinkedList<V>).remove(e);
    if (this.candidate === e) this.candidate = undefined;
  }

  /** TinyLFU's admission test: does the candidate deserve the victim's place? */
  private admit(candidate: CacheEntry<V>, victim: CacheEntry<V>): boolean {
    const c = this.sketch.frequency(candidate.hash);
    const v = this.sketch.frequency(victim.hash);
    if (c > v) return true;
    return c >= ADMIT_HASHDOS_THRESHOLD && this.random() < 1 / 128;
  }

  evict(): CacheEntry<V> | undefined {
    const probation = this.lists[PROBATION];
    const cand = this.candidate;
    this.candidate = undefined;
    let victim = probation.tail;
    if (victim === cand) victim = undefined;
    victim ??= this.lists[PROTECTED].tail;
    let out: CacheEntry<V> | undefined;
    if (cand !== undefined && victim !== undefined) out = this.admit(cand, victim) ? victim : cand;
    else out = victim ?? cand ?? this.lists[WINDOW].tail;
    if (out !== undefined) (this.lists[out.list] as LinkedList<V>).remove(out);
    return out;
  }

  clear(): void {
    for (const l of this.lists) l.clear();
    this.candidate = undefined;
  }
}
