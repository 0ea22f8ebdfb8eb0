import type { CacheEntry } from "./cache-entry.js";
import type { EvictionPolicy } from "./eviction-policy.js";
import { LinkedList } from "./linked-list.js";

/** Least recently used: one list, hits move to the head, the tail leaves. O(1). */
export class LruPolicy<V> implements EvictionPolicy<V> {
  readonly name = "lru" as const;
  readonly usesKeyHash = false;
  private readonly list = new LinkedList<V>(0);

  onInsert(e: CacheEntry<V>): void {
    this.list.pushHead(e);
  }
  onHit(e: CacheEntry<V>): void {
    this.list.moveToHead(e);
  }
  onMiss(): void {}
  onUpdate(e: CacheEntry<V>, oldSize: number): void {
    this.list.resize(oldSize, e.size);
    this.list.moveToHead(e);
  }
  onRemove(e: CacheEntry<V>): void {
    this.list.remove(e);
  }
  evict(): CacheEntry<V> | undefined {
    const e = this.list.tail;
    if (e !== undefined) this.list.remove(e);
    return e;
  }
  clear(): void {
    this.list.clear();
  }
}
