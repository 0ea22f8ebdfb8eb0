import type { CacheEntry } from "./cache-entry.js";
import type { EvictionPolicy } from "./eviction-policy.js";
import { entryHeap } from "./heap-policy.js";

/**
 * Least frequently used with dynamic aging (LFU-DA, Arlitt et al.): an entry's priority is its
 * access count plus the cache's age `L`, and `L` becomes the priority of each evicted entry. An
 * entry that was popular long ago therefore ages out once newer entries have been accessed as
 * often since, instead of staying forever as in plain LFU. Ties leave least recently used
 * first. O(log n) per operation.
 */
export class LfuPolicy<V> implements EvictionPolicy<V> {
  readonly name = "lfu" as const;
  readonly usesKeyHash = false;
  private readonly heap = entryHeap<V>();
  private age = 0;
  private seq = 0;

  onInsert(e: CacheEntry<V>): void {
    e.freq = 1;
    e.priority = this.age + 1;
    e.seq = ++this.seq;
    this.heap.push(e);
  }
  onHit(e: CacheEntry<V>): void {
    e.freq++;
    e.priority = this.age + e.freq;
    e.seq = ++this.seq;
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
    if (e !== undefined) this.age = e.priority;
    return e;
  }
  clear(): void {
    this.heap.clear();
    this.age = 0;
  }
}
