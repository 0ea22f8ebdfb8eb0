import type { CacheEntry } from "./cache-entry.js";
import type { EvictionPolicy } from "./eviction-policy.js";
import { entryHeap } from "./heap-policy.js";

/**
 * GreedyDual-Size (Cao & Irani): an entry's priority is `L + cost / size`, set on insert and on
 * every hit; the lowest priority leaves and `L` becomes its priority. Cheap-to-recompute and
 * large entries go first; expensive small ones stay; `L` ages entries not touched since.
 * `cost` is the caller's (e.g. the milliseconds the value took to compute; default 1).
 * O(log n) per operation.
 */
export class CostPolicy<V> implements EvictionPolicy<V> {
  readonly name = "cost" as const;
  readonly usesKeyHash = false;
  private readonly heap = entryHeap<V>();
  private inflation = 0;
  private seq = 0;

  private rank(e: CacheEntry<V>): void {
    e.priority = this.inflation + e.cost / Math.max(1, e.size);
    e.seq = ++this.seq;
  }
  onInsert(e: CacheEntry<V>): void {
    this.rank(e);
    this.heap.push(e);
  }
  onHit(e: CacheEntry<V>): void {
    this.rank(e);
    this.heap.update(e);
  }
  onMiss(): void {}
  onUpdate(e: CacheEntry<V>): void {
    this.onHit(e);
  }
  onRemove(e: CacheEntry<V>): void {
    this.heap.remove(e);
  }
  evict(): CacheEntry<V> | undefined {
    const e = this.heap.pop();
    if (e !== undefined) this.inflation = e.priority;
    return e;
  }
  clear(): void {
    this.heap.clear();
    this.inflation = 0;
  }
}
