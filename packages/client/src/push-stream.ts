import type { MpregError } from "@mpreg/envelope";

/**
 * What a full {@link PushStream} does with one more item:
 * - `drop-oldest`: the oldest buffered item is dropped (counted in `dropped`) to make room;
 *   right for pub/sub, where a slow consumer should see the newest messages.
 * - `fail`: the stream ends with an error after the items already buffered; right for KV
 *   watches, whose consumer must see every change or know that it did not.
 */
export type OverflowPolicy = "drop-oldest" | "fail";

/** Options of a {@link PushStream}. */
export interface PushStreamOptions {
  /** Most items held for the consumer. */
  maxBuffered: number;
  overflow: OverflowPolicy;
  /** The error a `fail` stream ends with when it overflows. */
  overflowError?: () => MpregError;
  /** Called once when the consumer stops early (`break` out of `for await`, or `return()`). */
  onReturn?: () => void;
}

type Waiter<T> = { resolve(r: IteratorResult<T>): void; reject(e: unknown): void };

const DONE: IteratorResult<never> = Object.freeze({ value: undefined, done: true }) as IteratorResult<never>;

/**
 * A bounded queue between pushes from the node and one consumer reading with `for await`.
 * The producer calls `push` and finally `end` (optionally with an error, thrown to the consumer
 * once the buffered items are read). The consumer's `return()` (a `break`) ends it at once.
 * Nothing here touches timers or sockets.
 */
export class PushStream<T> implements AsyncIterableIterator<T> {
  /** Items dropped by `drop-oldest` since the stream was made. */
  dropped = 0;
  private buf: T[] = [];
  private head = 0;
  private waiters: Waiter<T>[] = [];
  private ended: { error: MpregError | undefined } | null = null;
  private errorThrown = false;
  private returned = false;

  constructor(private readonly opts: PushStreamOptions) {}

  /** Items waiting for the consumer. */
  get size(): number {
    return this.buf.length - this.head;
  }

  /** True once the producer ended it or the consumer returned. */
  get closed(): boolean {
    return this.ended !== null || this.returned;
  }

  /**
   * Offers one item. Returns false when it was not accepted: the stream is closed, or it is a
   * `fail` stream that just overflowed (and is now ending with its overflow error).
   */
  push(item: T): boolean {
    if (this.closed) return false;
    const w = this.waiters.shift();
    if (w !== undefined) {
      w.resolve({ value: item, done: false });
      return true;
    }
    if (this.size >= this.opts.maxBuffered) {
      if (this.opts.overflow === "fail") {
        this.end(this.opts.overflowError?.());
        return false;
      }
      this.shift();
      this.dropped++;
    }
    this.buf.push(item);
    return true;
  }

  /** Ends the stream: buffered items are still read, then `error` (if any) is thrown once. */
  end(error?: MpregError): void {
    if (this.closed) return;
    this.ended = { error };
    // Only a consumer already waiting has seen the buffer empty; wake it with the outcome.
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) this.settleEnd(w);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.size > 0) return Promise.resolve({ value: this.shift(), done: false });
    if (this.returned) return Promise.resolve(DONE);
    if (this.ended !== null) {
      return new Promise((resolve, reject) => this.settleEnd({ resolve, reject }));
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** The consumer stops: buffered items are discarded and `onReturn` runs (once). */
  return(): Promise<IteratorResult<T>> {
    if (!this.closed) {
      this.returned = true;
      try {
        this.opts.onReturn?.();
      } catch {
        // The consumer is leaving; a failing cleanup must not turn its `break` into an error.
      }
    }
    this.returned = true;
    this.buf = [];
    this.head = 0;
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w.resolve(DONE);
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  private settleEnd(w: Waiter<T>): void {
    const err = this.ended?.error;
    if (err !== undefined && !this.errorThrown) {
      this.errorThrown = true;
      w.reject(err);
    } else {
      w.resolve(DONE);
    }
  }

  private shift(): T {
    const item = this.buf[this.head] as T;
    (this.buf as Array<T | undefined>)[this.head] = undefined;
    this.head++;
    // Compact now and then instead of Array#shift per item (O(n) each).
    if (this.head >= 64 && this.head * 2 >= this.buf.length) {
      this.buf = this.buf.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}
