import type { GossipItem } from "./types.js";

/** Result of offering an item to the store. */
export type ApplyResult = "applied" | "stale" | "full";

/**
 * Versioned items by key: newer version wins, equal keeps the existing one (idempotent replays).
 * Bounded: once `maxItems` keys are held, items with NEW keys are refused ("full") while
 * existing keys still update; the owner sees the count in `GossipNode.stats.itemsRefused`.
 */
export class ItemStore {
  private readonly items = new Map<string, GossipItem>();
  private sorted: string[] | null = [];

  constructor(readonly maxItems: number) {}

  get size(): number {
    return this.items.size;
  }

  get(key: string): GossipItem | undefined {
    return this.items.get(key);
  }

  values(): IterableIterator<GossipItem> {
    return this.items.values();
  }

  apply(item: GossipItem): ApplyResult {
    const cur = this.items.get(item.key);
    if (cur !== undefined) {
      if (item.version <= cur.version) return "stale";
      this.items.set(item.key, item);
      return "applied";
    }
    if (this.items.size >= this.maxItems) return "full";
    this.items.set(item.key, item);
    this.sorted = null;
    return "applied";
  }

  /** Keys in ascending order (cached until a new key arrives). */
  sortedKeys(): string[] {
    if (this.sorted === null) this.sorted = [...this.items.keys()].sort();
    return this.sorted;
  }

  /** Index of the first key >= `key` in {@link sortedKeys}. */
  lowerBound(key: string): number {
    const keys = this.sortedKeys();
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((keys[mid] as string) < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Keys in [start, end) (end null = to the last key), in order. */
  keysInRange(start: string, end: string | null): string[] {
    const keys = this.sortedKeys();
    const from = this.lowerBound(start);
    const to = end === null ? keys.length : this.lowerBound(end);
    return keys.slice(from, to);
  }
}
