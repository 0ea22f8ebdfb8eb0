import type { PubsubNotificationMessage } from "@mpreg/envelope";
import type { CompiledPattern } from "@mpreg/router";

/** Limits of the retention store (the node's backlog). A message over any limit goes first. */
export interface RetentionLimits {
  /** Messages older than this (ms since this node accepted or received them) are dropped. */
  readonly maxAgeMs: number;
  /** Most messages held; 0 turns retention off. */
  readonly maxMessages: number;
  /** Most estimated bytes held; a single message larger than this is not retained. */
  readonly maxBytes: number;
}

/** A retained message and its estimated size. */
export interface RetainedMessage {
  readonly message: PubsubNotificationMessage;
  readonly size: number;
}

/** Counters of the retention store. */
export interface RetentionStats {
  readonly count: number;
  readonly bytes: number;
  /** Messages dropped to stay within the limits (age, count or bytes), or too large to keep. */
  readonly evicted: number;
}

/**
 * The bounded store of recent messages from which a new subscription's `backlog` is served.
 * Messages are kept in arrival order (arrival times never decrease: a clock that steps back
 * is held at the last time seen), so age, count and byte eviction all take from the oldest
 * end, O(1) each. A backlog query scans from the newest end and stops at the age bound, so it
 * costs at most the number of messages held.
 */
export class RetentionStore {
  private msgs: (PubsubNotificationMessage | undefined)[] = [];
  private ats: number[] = [];
  private sizes: number[] = [];
  private head = 0;
  private held = 0;
  private lastAt = -Infinity;
  private evictedTotal = 0;

  constructor(private readonly limits: RetentionLimits) {}

  /** Messages held now. */
  get count(): number {
    return this.msgs.length - this.head;
  }

  /** Estimated bytes held now. */
  get bytes(): number {
    return this.held;
  }

  stats(): RetentionStats {
    return { count: this.count, bytes: this.held, evicted: this.evictedTotal };
  }

  /** Retains `message` (of `size` estimated bytes) received at `now`, evicting what the limits require. */
  add(message: PubsubNotificationMessage, size: number, now: number): void {
    if (this.limits.maxMessages === 0) return;
    if (size > this.limits.maxBytes) {
      this.evictedTotal++;
      return;
    }
    const at = Math.max(now, this.lastAt);
    this.lastAt = at;
    this.evictExpired(at);
    while (this.count > 0 && (this.count >= this.limits.maxMessages || this.held + size > this.limits.maxBytes)) {
      this.dropOldest();
    }
    this.msgs.push(message);
    this.ats.push(at);
    this.sizes.push(size);
    this.held += size;
  }

  /** Drops the messages older than `maxAgeMs` at `now`; returns how many. */
  evictExpired(now: number): number {
    const cutoff = now - this.limits.maxAgeMs;
    let n = 0;
    while (this.count > 0 && (this.ats[this.head] as number) < cutoff) {
      this.dropOldest();
      n++;
    }
    return n;
  }

  /**
   * The retained messages matching any of `patterns`, received at or after `since`, at most
   * `max` of them (the newest), oldest first. Expired messages are dropped first.
   */
  query(patterns: readonly CompiledPattern[], since: number, max: number, now: number): RetainedMessage[] {
    this.evictExpired(Math.max(now, this.lastAt));
    const out: RetainedMessage[] = [];
    if (max <= 0 || patterns.length === 0) return out;
    for (let i = this.msgs.length - 1; i >= this.head && out.length < max; i--) {
      if ((this.ats[i] as number) < since) break;
      const m = this.msgs[i] as PubsubNotificationMessage;
      const segs = m.topic.split(".");
      for (const p of patterns) {
        if (p.testSegments(segs)) {
          out.push({ message: m, size: this.sizes[i] as number });
          break;
        }
      }
    }
    return out.reverse();
  }

  private dropOldest(): void {
    this.msgs[this.head] = undefined;
    this.held -= this.sizes[this.head] as number;
    this.head++;
    this.evictedTotal++;
    if (this.head === this.msgs.length) {
      this.msgs = [];
      this.ats = [];
      this.sizes = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.msgs.length) {
      this.msgs = this.msgs.slice(this.head);
      this.ats = this.ats.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
  }
}
