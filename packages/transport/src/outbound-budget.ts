import { MpregError } from "@mpreg/envelope";

/** Default node-wide budget for unsent outbound bytes: 256 MiB (four slow peers at the per-connection 64 MiB). */
export const DEFAULT_MAX_TOTAL_BUFFERED_BYTES = 256 * 1024 * 1024;

/** Something that holds outbound bytes and can be cut off (a connection). */
export interface BudgetMember {
  /**
   * Drops the member at once (its buffered bytes are freed); called by the budget when it is
   * among the largest holders while the budget is exceeded. Must not call back into the budget.
   */
  cutOff(): void;
}

/**
 * A node-wide budget for outbound bytes that wait in memory (socket buffers and connection
 * queues), shared by every connection of a node — accepted and dialed. Each member reports
 * what it holds ({@link update}); when the sum passes the limit, the members holding the most
 * are cut off, largest first, until the sum is within the limit again: a reader that keeps up
 * drains its buffer, one that stalls accumulates, so the slowest readers go first.
 *
 * Members report only what they hold above a small threshold (the socket's own high-water
 * mark), so the sum may lag behind a buffer that drained without an event; it errs on the
 * high side and is corrected on the member's next report.
 */
export class OutboundBudget {
  /** The limit in bytes. */
  readonly limitBytes: number;
  /** Members cut off so far. */
  cutOffs = 0;
  private total = 0;
  private readonly charges = new Map<BudgetMember, number>();

  constructor(limitBytes: number = DEFAULT_MAX_TOTAL_BUFFERED_BYTES) {
    if (!(Number.isSafeInteger(limitBytes) && limitBytes > 0)) {
      throw MpregError.invalid(`maxTotalBufferedBytes must be a positive integer, got ${String(limitBytes)}`, "maxTotalBufferedBytes");
    }
    this.limitBytes = limitBytes;
  }

  /** Bytes currently reported by all members. */
  get usedBytes(): number {
    return this.total;
  }

  /** Members currently holding bytes. */
  get holders(): number {
    return this.charges.size;
  }

  /** Sets what `member` holds now (0 releases it); over the limit, cuts off the largest holders. */
  update(member: BudgetMember, bytes: number): void {
    const prev = this.charges.get(member) ?? 0;
    if (bytes === prev) return;
    if (bytes <= 0) this.charges.delete(member);
    else this.charges.set(member, bytes);
    this.total += Math.max(0, bytes) - prev;
    if (this.total > this.limitBytes) this.shed();
  }

  /** The member is gone (closed): it holds nothing any more. */
  release(member: BudgetMember): void {
    this.update(member, 0);
  }

  private shed(): void {
    const byHolding = [...this.charges].sort((a, b) => b[1] - a[1]);
    for (const [member, bytes] of byHolding) {
      if (this.total <= this.limitBytes) break;
      this.charges.delete(member);
      this.total -= bytes;
      this.cutOffs++;
      member.cutOff();
    }
  }
}
