import type { CacheEntry } from "./cache-entry.js";
import type { EvictionPolicy, PolicyLimits } from "./eviction-policy.js";
import { LinkedList } from "./linked-list.js";
import { over, shareOf, type Share } from "./segment-share.js";

/** Number of segments of S4LRU. */
export const S4LRU_SEGMENTS = 4;

/**
 * Segmented LRU with four segments (Huang et al., SOSP'13). A new entry enters the head of
 * segment 0; a hit moves an entry to the head of the next segment up (segment 3 keeps it at
 * its head). Segments 1..3 each hold at most a quarter of the limits (by count and by bytes);
 * when one overflows, its tail is demoted to the head of the segment below, cascading down.
 * Eviction takes the tail of the lowest non-empty segment. Segment 0 is not capped on its own:
 * while the upper segments are not full it may use their room, so a cold cache fills
 * completely. O(1) per operation (a cascade moves at most one entry per segment).
 */
export class S4lruPolicy<V> implements EvictionPolicy<V> {
  readonly name = "s4lru" as const;
  readonly usesKeyHash = false;
  private readonly segs: LinkedList<V>[];
  private readonly share: Share;

  constructor(limits: PolicyLimits) {
    this.segs = Array.from({ length: S4LRU_SEGMENTS }, (_, i) => new LinkedList<V>(i));
    this.share = shareOf(limits.maxEntries, limits.maxBytes, 1 / S4LRU_SEGMENTS);
  }

  /** Number of entries in each segment, lowest first (for tests and stats). */
  segmentCounts(): number[] {
    return this.segs.map((s) => s.count);
  }

  /** The segment holding `e` (0..3), or -1. */
  segmentOf(e: CacheEntry<V>): number {
    return e.list;
  }

  private seg(i: number): LinkedList<V> {
    return this.segs[i] as LinkedList<V>;
  }

  onInsert(e: CacheEntry<V>): void {
    this.seg(0).pushHead(e);
  }

  onHit(e: CacheEntry<V>): void {
    const from = e.list;
    const to = Math.min(from + 1, S4LRU_SEGMENTS - 1);
    if (to === from) {
      this.seg(from).moveToHead(e);
      return;
    }
    this.seg(from).remove(e);
    this.seg(to).pushHead(e);
    // Demote overflow down the segments; only segment 0's tail ever leaves (by evict()).
    for (let i = to; i > 0; i--) {
      const s = this.seg(i);
      while (s.count > 1 && over(s, this.share)) {
        const t = s.tail as CacheEntry<V>;
        s.remove(t);
        this.seg(i - 1).pushHead(t);
      }
    }
  }

  onMiss(): void {}

  onUpdate(e: CacheEntry<V>, oldSize: number): void {
    this.seg(e.list).resize(oldSize, e.size);
    this.onHit(e);
  }

  onRemove(e: CacheEntry<V>): void {
    this.seg(e.list).remove(e);
  }

  evict(): CacheEntry<V> | undefined {
    for (const s of this.segs) {
      const t = s.tail;
      if (t !== undefined) {
        s.remove(t);
        return t;
      }
    }
    return undefined;
  }

  clear(): void {
    for (const s of this.segs) s.clear();
  }
}
