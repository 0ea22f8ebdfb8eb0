import type { CacheEntry } from "./cache-entry.js";
import type { EvictionPolicy } from "./eviction-policy.js";
import { entryHeap } from "./heap-policy.js";

/**
 * Soonest expiry first: the entry whose TTL ends first leaves first; entries without a TTL
 * leave last. Among equal expiries (all the TTL-less ones, say) the least recently used
 * leaves first. O(log n) per operation.
 */
export class TtlPolicy<V> implements EvictionPolicy<V> {
  readonly name = "ttl" as const;
  readonly usesKeyHash = false;
  private readonly heap = entryHeap<V>();
  private seq = 0;

  onInsert(e: CacheEntry<V>): void {
    e.priority = e.expiresAt;
    e.seq = ++this.seq;
    this.heap.push(e);
  }
  onHit(e: CacheEntry<V>): void {
    e.seq = ++this.seq;
    this.heap.update(e);
  }
  onMiss(): void {}
  onUpdate(e: CacheEntry<V>): void {
    e.priority = e.expiresAt;
    this.onHit(e);
  }
  onRemove(e: CacheEntry<V>): void {
    this.heap.remove(e);
  }
  evict(): CacheEntry<V> | undefined {
    return this.heap.pop();
  }
  clear(): void {
    this.heap.clear();
  }
}
