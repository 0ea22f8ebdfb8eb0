import type { CacheEntry } from "./cache-entry.js";
import { IndexedHeap } from "./indexed-heap.js";

/** A heap of entries ordered by (priority, seq): the lowest priority leaves first, older first among equals. */
export function entryHeap<V>(): IndexedHeap<CacheEntry<V>> {
  return new IndexedHeap<CacheEntry<V>>(
    (a, b) => a.priority < b.priority || (a.priority === b.priority && a.seq < b.seq),
    (e) => e.heapIndex,
    (e, i) => {
      e.heapIndex = i;
    },
  );
}
