import { ErrorCode, MpregError } from "@mpreg/envelope";

/** The in-flight request bound the server uses per connection unless configured otherwise. */
export const DEFAULT_INFLIGHT_LIMIT = 1024;

/**
 * A counter that bounds in-flight work (e.g. requests per connection). `tryAcquire` fails
 * instead of waiting, so the caller can answer 1007 OVERLOADED right away.
 */
export class InflightLimiter {
  readonly limit: number;
  private count = 0;

  constructor(limit: number = DEFAULT_INFLIGHT_LIMIT) {
    if (!(Number.isInteger(limit) && limit > 0)) {
      throw MpregError.invalid("in-flight limit must be a positive integer", "limit");
    }
    this.limit = limit;
  }

  /** Current number of acquired slots. */
  get inflight(): number {
    return this.count;
  }

  /** Takes a slot; false (and nothing taken) when all `limit` slots are in use. */
  tryAcquire(): boolean {
    if (this.count >= this.limit) return false;
    this.count++;
    return true;
  }

  /** Gives a slot back. Releasing more than was acquired is a bug and throws. */
  release(): void {
    if (this.count === 0) throw new MpregError(ErrorCode.INVALID_REQUEST, "InflightLimiter.release() without acquire", {
        reason: "release without acquire",
      });
    this.count--;
  }
}
