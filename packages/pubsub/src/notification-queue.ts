import type { PubsubNotification } from "@mpreg/envelope";

/**
 * The outbound queue of one subscription: notifications waiting for their owner's sink. Bounded
 * by count and by (estimated) bytes; when a push would pass either limit, the OLDEST
 * notifications are dropped (a slow subscriber loses its oldest messages, the publisher never
 * waits). FIFO otherwise, so publish order is kept for what is delivered.
 */
export class NotificationQueue {
  private frames: (PubsubNotification | undefined)[] = [];
  private sizes: number[] = [];
  private head = 0;
  private bytesHeld = 0;

  constructor(
    private readonly maxCount: number,
    private readonly maxBytes: number,
  ) {}

  /** Notifications waiting. */
  get length(): number {
    return this.frames.length - this.head;
  }

  /** Estimated bytes waiting. */
  get bytes(): number {
    return this.bytesHeld;
  }

  /**
   * Appends a notification of `size` estimated bytes; returns how many older ones were dropped
   * to stay within the limits. A notification larger than `maxBytes` alone still goes in (the
   * queue then holds only it): the size limit of a message is the publisher's check, not ours.
   */
  push(frame: PubsubNotification, size: number): number {
    let dropped = 0;
    while (this.length > 0 && (this.length >= this.maxCount || this.bytesHeld + size > this.maxBytes)) {
      this.shift();
      dropped++;
    }
    this.frames.push(frame);
    this.sizes.push(size);
    this.bytesHeld += size;
    return dropped;
  }

  /** The oldest notification, removed; undefined when empty. */
  shift(): PubsubNotification | undefined {
    if (this.head >= this.frames.length) return undefined;
    const f = this.frames[this.head];
    this.frames[this.head] = undefined;
    this.bytesHeld -= this.sizes[this.head] as number;
    this.head++;
    if (this.head === this.frames.length) {
      this.frames = [];
      this.sizes = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.frames.length) {
      // Compact once the consumed prefix is at least half the array: amortised O(1).
      this.frames = this.frames.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
    return f;
  }

  /** Drops everything; returns how many were dropped. */
  clear(): number {
    const n = this.length;
    this.frames = [];
    this.sizes = [];
    this.head = 0;
    this.bytesHeld = 0;
    return n;
  }
}
