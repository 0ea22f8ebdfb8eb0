import { MpregError } from "@mpreg/envelope";

/** A handle returned by {@link SimClock.setTimeout}. */
export type SimTimerId = number;

interface Timer {
  at: number;
  seq: number;
  id: SimTimerId;
  fn: () => void;
}

/** Min-heap ordered by (time, insertion order): equal times fire in scheduling order, deterministically. */
class TimerHeap {
  private items: Timer[] = [];
  get size(): number {
    return this.items.length;
  }
  peek(): Timer | undefined {
    return this.items[0];
  }
  push(t: Timer): void {
    const a = this.items;
    a.push(t);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(a[i] as Timer, a[p] as Timer)) break;
      [a[i], a[p]] = [a[p] as Timer, a[i] as Timer];
      i = p;
    }
  }
  pop(): Timer | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && less(a[l] as Timer, a[m] as Timer)) m = l;
        if (r < a.length && less(a[r] as Timer, a[m] as Timer)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m] as Timer, a[i] as Timer];
        i = m;
      }
    }
    return top;
  }
}

function less(x: Timer, y: Timer): boolean {
  return x.at < y.at || (x.at === y.at && x.seq < y.seq);
}

/**
 * Virtual time in milliseconds. Nothing happens until the test advances it; callbacks run in
 * (time, scheduling order), so a simulation is fully deterministic.
 */
export class SimClock {
  private current: number;
  private seq = 0;
  private nextId = 1;
  private readonly heap = new TimerHeap();
  private readonly cancelled = new Set<SimTimerId>();
  /** Upper bound on pending timers; scheduling beyond it throws (a runaway simulation is a bug). */
  readonly maxPending: number;

  constructor(opts: { startMs?: number; maxPending?: number } = {}) {
    this.current = opts.startMs ?? 0;
    this.maxPending = opts.maxPending ?? 5_000_000;
  }

  /** The current virtual time in ms. */
  now(): number {
    return this.current;
  }

  /** Number of timers scheduled and not yet fired (cancelled ones may be counted until reached). */
  get pending(): number {
    return this.heap.size;
  }

  /** Runs `fn` once when virtual time reaches now + `delayMs` (negative delays count as 0). */
  setTimeout(fn: () => void, delayMs: number): SimTimerId {
    return this.schedule(fn, this.current + Math.max(0, delayMs));
  }

  /** Runs `fn` at absolute virtual time `atMs` (or now, if that is in the past). */
  schedule(fn: () => void, atMs: number): SimTimerId {
    if (!Number.isFinite(atMs)) throw MpregError.invalid(`SimClock: time must be finite, got ${atMs}`, "atMs");
    if (this.heap.size >= this.maxPending) {
      throw MpregError.overloaded(`SimClock: more than ${this.maxPending} pending timers`);
    }
    const id = this.nextId++;
    this.heap.push({ at: Math.max(atMs, this.current), seq: this.seq++, id, fn });
    return id;
  }

  /** Cancels a timer; unknown or already-fired ids are ignored. */
  clearTimeout(id: SimTimerId): void {
    this.cancelled.add(id);
  }

  /** Fires the next due timer, moving time to it. Returns false when nothing is pending. */
  step(): boolean {
    for (;;) {
      const t = this.heap.pop();
      if (t === undefined) return false;
      if (this.cancelled.delete(t.id)) continue;
      this.current = t.at;
      t.fn();
      return true;
    }
  }

  /** Fires every timer due at or before `t` (including ones scheduled meanwhile), then sets time to `t`. */
  runUntil(t: number): void {
    if (t < this.current) return;
    for (;;) {
      const top = this.heap.peek();
      if (top === undefined || top.at > t) break;
      this.heap.pop();
      if (this.cancelled.delete(top.id)) continue;
      this.current = top.at;
      top.fn();
    }
    this.current = t;
  }

  /** Advances virtual time by `ms`, firing everything due on the way. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw MpregError.invalid(`SimClock.advance needs ms >= 0, got ${ms}`, "ms");
    this.runUntil(this.current + ms);
  }

  /**
   * Advances in steps of `stepMs` until `predicate()` holds or `maxMs` of virtual time passed.
   * Returns the virtual time at which it held, or undefined.
   */
  runUntilTrue(predicate: () => boolean, opts: { maxMs: number; stepMs?: number }): number | undefined {
    const end = this.current + opts.maxMs;
    const step = opts.stepMs ?? 10;
    if (predicate()) return this.current;
    while (this.current < end) {
      this.runUntil(Math.min(end, this.current + step));
      if (predicate()) return this.current;
    }
    return undefined;
  }
}
