/**
 * A set of ids with bounded memory, for the dedup windows (message ids already seen). It
 * remembers at least the `capacity` most recently added ids and at most `2 * capacity`: ids
 * go into a current generation; when it holds `capacity`, it becomes the previous generation
 * and the one before is forgotten whole. No per-id deletion, so no hash-table tombstones or
 * rehashing on the hot path (a ring with one delete per add cost ~10% of a publish).
 */
export class BoundedIdSet {
  private current = new Set<string>();
  private previous = new Set<string>();

  /** @param capacity ids guaranteed to be remembered (>= 1); at most twice as many are held. */
  constructor(readonly capacity: number) {}

  /** Ids remembered now (between the last `capacity` and `2 * capacity`). */
  get size(): number {
    return this.current.size + this.previous.size;
  }

  has(id: string): boolean {
    return this.current.has(id) || this.previous.has(id);
  }

  /** Remembers `id`; returns false (and changes nothing) when it is already remembered. */
  add(id: string): boolean {
    // Two hash operations per new id instead of three: `add` itself tells whether the current
    // generation had it (the size grows only for a new id).
    if (this.previous.size > 0 && this.previous.has(id)) return false;
    const n = this.current.size;
    if (n >= this.capacity) {
      if (this.current.has(id)) return false;
      this.previous = this.current;
      this.current = new Set([id]);
      return true;
    }
    return this.current.add(id).size !== n;
  }
}
