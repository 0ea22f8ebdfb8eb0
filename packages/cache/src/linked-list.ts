import type { CacheEntry } from "./cache-entry.js";

/**
 * An intrusive doubly linked list of cache entries (head = most recent), with the count and
 * byte total of what it holds. Every operation is O(1). An entry sits in at most one list.
 */
export class LinkedList<V> {
  head: CacheEntry<V> | undefined = undefined;
  tail: CacheEntry<V> | undefined = undefined;
  count = 0;
  bytes = 0;

  /** `id` is written to `entry.list` so a policy knows which of its lists holds an entry. */
  constructor(readonly id: number) {}

  pushHead(e: CacheEntry<V>): void {
    e.list = this.id;
    e.prev = undefined;
    e.next = this.head;
    if (this.head !== undefined) this.head.prev = e;
    else this.tail = e;
    this.head = e;
    this.count++;
    this.bytes += e.size;
  }

  remove(e: CacheEntry<V>): void {
    if (e.prev !== undefined) e.prev.next = e.next;
    else this.head = e.next;
    if (e.next !== undefined) e.next.prev = e.prev;
    else this.tail = e.prev;
    e.prev = undefined;
    e.next = undefined;
    e.list = -1;
    this.count--;
    this.bytes -= e.size;
  }

  /** Moves an entry of this list to its head (relinks only: count and bytes do not change). */
  moveToHead(e: CacheEntry<V>): void {
    const head = this.head;
    if (head === e) return;
    const prev = e.prev as CacheEntry<V>; // not the head, so it has a previous entry
    const next = e.next;
    prev.next = next;
    if (next !== undefined) next.prev = prev;
    else this.tail = prev;
    e.prev = undefined;
    e.next = head;
    (head as CacheEntry<V>).prev = e;
    this.head = e;
  }

  /** Adjusts the byte total when an entry in this list changed size. */
  resize(oldSize: number, newSize: number): void {
    this.bytes += newSize - oldSize;
  }

  clear(): void {
    this.head = undefined;
    this.tail = undefined;
    this.count = 0;
    this.bytes = 0;
  }
}
