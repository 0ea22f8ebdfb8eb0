import type { PubsubNotification } from "@mpreg/envelope";

/** A byte budget shared by all queues of a node: bytes held now and the most allowed. */
export interface QueueBudget {
  bytes: number;
  readonly max: number;
}

/**
 * The outbound queue of one subscription: notifications waiting for their owner's sink. Bounded
 * by count, by (estimated) bytes, and by a byte budget shared with every other queue of the
 * node. When a push would pass a limit, this queue's OLDEST notifications are dropped (a slow
 * subscriber loses its oldest messages, the publisher never waits); when the shared budget is
 * spent and this queue holds nothing more to drop, the new notification itself is dropped.
 * FIFO otherwise, so publish order is kept for what is delivered.
 */
export class NotificationQueue {
  private frames: (PubsubNotification | undefined)[] = [];
  private sizes: number[] = [];
  private head = 0;
  private bytesHeld = 0;

  constructor(
    private readonly maxCount: number,
    private readonly maxBytes: number,
    private readonly budget: QueueBudget = { bytes: 0, max: Infinity },
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
   * Appends a notification of `size` estimated bytes; returns how many notifications were
   * dropped to stay within the limits (older ones, or this one when the shared budget is
   * spent). A notification larger than `maxBytes` alone still goes in when the budget allows
   * (the queue then holds only it): the size of a message is the publisher's check.
   */
  push(frame: PubsubNotification, size: number): number {
    let dropped = 0;
    while (
      this.length > 0 &&
      (this.length >= this.maxCount || this.bytesHeld + size > this.maxBytes || this.budget.bytes + size > this.budget.max)
    ) {
      this.shift();
      dropped++;
    }
    if (this.budget.bytes + size > this.budget.max) return dropped + 1;
    this.frames.push(frame);
    this.sizes.push(size);
    this.bytesHeld += size;
    this.budget.bytes += size;
    return dropped;
  }

  /** Estimated bytes of the oldest notification (0 when empty). */
  peekSize(): number {
    return this.head < this.sizes.length ? (this.sizes[this.head] as number) : 0;
  }

  /**
   * True when `push` of a notification of `size` bytes would drop one (this queue's count or
   * byte limit, or the shared budget).
   */
  wouldDrop(size: number): boolean {
    return this.length >= this.maxCount || this.bytesHeld + size > this.maxBytes || this.budget.bytes + size > this.budget.max;
  }

  /** The oldest notification, removed; undefined when empty. */
  shift(): PubsubNotification | undefined {
    if (this.head >= this.frames.length) return undefined;
    const f = this.frames[this.head];
    const size = this.sizes[this.head] as number;
    this.frames[this.head] = undefined;
    this.bytesHeld -= size;
    this.budget.bytes -= size;
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
    this.budget.bytes -= this.bytesHeld;
    this.frames = [];
    this.sizes = [];
    this.head = 0;
    this.bytesHeld = 0;
    return n;
  }
}
