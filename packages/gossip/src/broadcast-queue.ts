import type { GossipItem, MemberUpdate } from "./types.js";

interface Entry {
  /** "m:<member id>" or "i:<item key>": a newer broadcast for the same subject replaces the older one. */
  subject: string;
  member?: MemberUpdate;
  item?: GossipItem;
  transmits: number;
  order: number;
}

/**
 * Updates waiting to be piggybacked (memberlist's TransmitLimitedQueue). Each update is sent
 * at most `limit` times (λ·⌈log10(n+1)⌉, computed by the caller per take), the least-sent first.
 * A newer update about the same member or key replaces the queued one. Bounded: beyond
 * `maxEntries` the most-transmitted (best-spread) entries are dropped first; anti-entropy
 * repairs whatever a drop leaves behind.
 */
export class BroadcastQueue {
  private readonly entries = new Map<string, Entry>();
  private order = 0;
  dropped = 0;

  constructor(readonly maxEntries: number) {}

  get size(): number {
    return this.entries.size;
  }

  enqueueMember(u: MemberUpdate): void {
    this.put({ subject: `m:${u.id}`, member: u, transmits: 0, order: this.order++ });
  }

  enqueueItem(item: GossipItem): void {
    this.put({ subject: `i:${item.key}`, item, transmits: 0, order: this.order++ });
  }

  private put(e: Entry): void {
    this.entries.delete(e.subject);
    this.entries.set(e.subject, e);
    if (this.entries.size > this.maxEntries) {
      let worst: Entry | undefined;
      for (const x of this.entries.values()) {
        if (worst === undefined || x.transmits > worst.transmits || (x.transmits === worst.transmits && x.order < worst.order)) worst = x;
      }
      if (worst !== undefined) {
        this.entries.delete(worst.subject);
        this.dropped++;
      }
    }
  }

  /**
   * Takes up to `max` updates, least-transmitted first (newest first among equals), counts one
   * transmission for each and retires those that reached `limit`. With `budget`, items whose
   * size does not fit the remaining bytes are left for a later message (an item larger than
   * the whole budget still goes, alone, as the first item of a message).
   */
  take(
    max: number,
    limit: number,
    budget?: { bytes: number; sizeOf: (item: GossipItem) => number },
  ): { members: MemberUpdate[]; items: GossipItem[] } {
    const members: MemberUpdate[] = [];
    const items: GossipItem[] = [];
    if (this.entries.size === 0 || max <= 0) return { members, items };
    // Bucket by transmit count (small integers) instead of sorting: O(queue) per message.
    // Map order is enqueue order, so walking a bucket backwards gives the newest first.
    const buckets: Entry[][] = [];
    for (const e of this.entries.values()) (buckets[e.transmits] ??= []).push(e);
    let left = budget?.bytes ?? Infinity;
    let taken = 0;
    outer: for (const b of buckets) {
      if (b === undefined) continue;
      for (let i = b.length - 1; i >= 0; i--) {
        if (taken >= max) break outer;
        const e = b[i] as Entry;
        if (e.item && budget) {
          const size = budget.sizeOf(e.item);
          if (size > left && items.length > 0) continue;
          left -= size;
        }
        if (e.member) members.push(e.member);
        if (e.item) items.push(e.item);
        taken++;
        e.transmits++;
        if (e.transmits >= limit) this.entries.delete(e.subject);
      }
    }
    return { members, items };
  }
}
