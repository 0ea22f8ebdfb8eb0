import { MpregError } from "@mpreg/envelope";

/**
 * A hybrid logical clock timestamp (Kulkarni et al., 2014): `wall` follows physical time in ms,
 * `counter` orders events within one ms (or while physical time lags a received stamp), and
 * `node` breaks the remaining ties, so two distinct writes never compare equal.
 * On the wire: `{wall, counter, node}`.
 */
export interface Stamp {
  readonly wall: number;
  readonly counter: number;
  readonly node: string;
}

/** Orders stamps: by wall, then counter, then node id (code-unit order). */
export function compareStamps(a: Stamp, b: Stamp): number {
  if (a.wall !== b.wall) return a.wall < b.wall ? -1 : 1;
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1;
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}

/** The canonical text of a stamp (digests hash it). */
export function stampText(s: Stamp): string {
  return `${s.wall}.${s.counter}.${s.node}`;
}

/** Default bound on how far ahead of local physical time a received stamp may be. */
export const DEFAULT_MAX_DRIFT_MS = 60_000;

/** Options of a {@link HybridClock}. */
export interface HybridClockOptions {
  /** This node's id (the tie-breaker of its stamps). */
  node: string;
  /** Physical time in ms. */
  now: () => number;
  /**
   * A received stamp more than this many ms ahead of local physical time is refused (1002),
   * so one node with a wrong clock cannot drag every clock into the future. Default 60 000.
   */
  maxDriftMs?: number;
}

/**
 * A hybrid logical clock. `tick()` stamps a local event (a write); `receive(s)` merges a
 * stamp seen in a message. Guarantees: stamps of this clock strictly increase; a stamp made
 * after receiving `s` is greater than `s`; `wall` never runs behind physical time and never
 * more than `maxDriftMs` ahead of it.
 */
export class HybridClock {
  readonly node: string;
  private readonly now: () => number;
  readonly maxDriftMs: number;
  private wall = 0;
  private counter = 0;

  constructor(opts: HybridClockOptions) {
    this.node = opts.node;
    this.now = opts.now;
    this.maxDriftMs = opts.maxDriftMs ?? DEFAULT_MAX_DRIFT_MS;
  }

  /** The last stamp issued or merged. */
  get last(): Stamp {
    return { wall: this.wall, counter: this.counter, node: this.node };
  }

  /** Stamps a local event. */
  tick(): Stamp {
    const pt = Math.floor(this.now());
    if (pt > this.wall) {
      this.wall = pt;
      this.counter = 0;
    } else {
      this.counter++;
    }
    return this.last;
  }

  /** True when `s` is within the drift bound of local physical time. */
  acceptable(s: Stamp): boolean {
    return s.wall - this.now() <= this.maxDriftMs;
  }

  /** Merges a received stamp (1002 when it is beyond the drift bound; the clock is unchanged). */
  receive(s: Stamp): Stamp {
    const pt = Math.floor(this.now());
    if (s.wall - pt > this.maxDriftMs) {
      throw MpregError.invalid(`stamp from ${s.node} is ${s.wall - pt} ms ahead of this node's clock`, "stamp.wall");
    }
    const l = Math.max(this.wall, s.wall, pt);
    if (l === this.wall && l === s.wall) this.counter = Math.max(this.counter, s.counter) + 1;
    else if (l === this.wall) this.counter++;
    else if (l === s.wall) this.counter = s.counter + 1;
    else this.counter = 0;
    this.wall = l;
    return this.last;
  }
}
