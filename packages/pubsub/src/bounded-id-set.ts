/**
 * A set of ids that remembers at most `capacity` of them: adding one more forgets the oldest
 * added. Used for the dedup windows (message ids already seen). O(1) per operation: a ring of
 * ids in insertion order beside a `Set` for lookups.
 */
export class BoundedIdSet {
  private readonly ids = new Set<string>();
  private readonly ring: (string | undefined)[] = [];
  private head = 0;

  /** @param capacity most ids remembered (>= 1). */
  constructor(readonly capacity: number) {}

  /** Ids remembered now. */
  get size(): number {
    return this.ids.size;
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  /**
   * Remembers `id`; returns false (and changes nothing) when it is already remembered. When
   * full, the oldest id is forgotten to make room.
   */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    if (this.ring.length < this.capacity) {
      // Grows lazily: a window that never fills costs only what it holds.
      this.ring.push(id);
    } else {
      const old = this.ring[this.head];
      if (old !== undefined) this.ids.delete(old);
      this.ring[this.head] = id;
      this.head = (this.head + 1) % this.capacity;
    }
    this.ids.add(id);
    return true;
  }
}
