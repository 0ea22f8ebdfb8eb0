/**
 * Flap damping (in the manner of RFC 2439): every flap of a key (a route withdrawn or changed,
 * a neighbour link lost) adds a penalty that decays exponentially with a half-life. Past the
 * suppress threshold the key is suppressed (its route is not used, so its flapping stops
 * spreading) until the penalty decays below the reuse threshold. The penalty is capped so
 * that no key stays suppressed longer than `maxSuppressMs` after its last flap.
 */
import { MpregError } from "@mpreg/envelope";

/** Damping tunables; penalties are unitless, times in ms. */
export interface DampingConfig {
  /** Added when a route is withdrawn or its neighbour link is lost. Default 1000. */
  withdrawPenalty: number;
  /** Added when a route's path or metric changes. Default 500. */
  changePenalty: number;
  /** Suppressed once the penalty exceeds this. Default 2000 (the third withdrawal in a row). */
  suppressThreshold: number;
  /** Used again once the penalty decays below this. Default 750. */
  reuseThreshold: number;
  /** Time for the penalty to halve. Default 30 000 ms. */
  halfLifeMs: number;
  /** Longest suppression after the last flap (caps the penalty). Default 300 000 ms. */
  maxSuppressMs: number;
  /**
   * Most keys tracked. When full, a flap of a key not yet tracked is not recorded (counted in
   * `untracked`): that key is not damped, nothing else changes. Default 65 536.
   */
  maxEntries: number;
}

/** The defaults of {@link DampingConfig}. */
export const DEFAULT_DAMPING: Readonly<DampingConfig> = Object.freeze({
  withdrawPenalty: 1000,
  changePenalty: 500,
  suppressThreshold: 2000,
  reuseThreshold: 750,
  halfLifeMs: 30_000,
  maxSuppressMs: 300_000,
  maxEntries: 65_536,
});

interface Entry {
  penalty: number;
  at: number;
  suppressed: boolean;
}

/**
 * Checks damping settings (missing fields take the defaults).
 * @throws {MpregError} 1002 naming the bad field.
 */
export function dampingConfig(raw: Partial<DampingConfig> = {}, path = "damping"): DampingConfig {
  const c: DampingConfig = { ...DEFAULT_DAMPING, ...raw };
  for (const k of Object.keys(DEFAULT_DAMPING) as (keyof DampingConfig)[]) {
    if (typeof c[k] !== "number" || !Number.isFinite(c[k]) || c[k] < 0) {
      throw MpregError.invalid(`${path}.${k} must be a non-negative number`, `${path}.${k}`);
    }
  }
  if (!(c.reuseThreshold > 0 && c.reuseThreshold < c.suppressThreshold)) {
    throw MpregError.invalid(`${path}.reuseThreshold must be above 0 and below suppressThreshold`, `${path}.reuseThreshold`);
  }
  if (!(c.halfLifeMs > 0)) throw MpregError.invalid(`${path}.halfLifeMs must be above 0`, `${path}.halfLifeMs`);
  return c;
}

/** Penalty state per key; sans-I/O (time passed in). */
export class FlapDamper {
  private readonly entries = new Map<string, Entry>();
  private readonly ceiling: number;
  /** Flaps not recorded because the table was full. */
  untracked = 0;

  constructor(readonly config: DampingConfig) {
    this.ceiling = config.reuseThreshold * 2 ** (config.maxSuppressMs / config.halfLifeMs);
  }

  private decayed(e: Entry, now: number): number {
    return e.penalty * 2 ** (-Math.max(0, now - e.at) / this.config.halfLifeMs);
  }

  /** Records a flap of `key` with penalty `amount`. Returns whether the key is now suppressed. */
  flap(key: string, amount: number, now: number): boolean {
    let e = this.entries.get(key);
    if (e === undefined) {
      if (this.entries.size >= this.config.maxEntries) {
        this.untracked++;
        return false;
      }
      e = { penalty: 0, at: now, suppressed: false };
      this.entries.set(key, e);
    }
    e.penalty = Math.min(this.ceiling, this.decayed(e, now) + amount);
    e.at = now;
    if (e.penalty > this.config.suppressThreshold) e.suppressed = true;
    return e.suppressed;
  }

  /** True while `key` is suppressed (a key past its reuse point is released here too). */
  isSuppressed(key: string, now: number): boolean {
    const e = this.entries.get(key);
    if (e === undefined || !e.suppressed) return false;
    if (this.decayed(e, now) < this.config.reuseThreshold) {
      e.suppressed = false;
      return false;
    }
    return true;
  }

  /** The current penalty of `key` (0 when untracked). */
  penalty(key: string, now: number): number {
    const e = this.entries.get(key);
    return e === undefined ? 0 : this.decayed(e, now);
  }

  /**
   * Releases the suppressed keys whose penalty decayed below the reuse threshold and forgets
   * keys whose penalty is negligible (below half the reuse threshold). Returns the released
   * keys, so their routes can be used again. Cost: one pass over the tracked keys.
   */
  release(now: number): string[] {
    const out: string[] = [];
    for (const [k, e] of this.entries) {
      const p = this.decayed(e, now);
      if (e.suppressed && p < this.config.reuseThreshold) {
        e.suppressed = false;
        out.push(k);
      }
      if (!e.suppressed && p < this.config.reuseThreshold / 2) this.entries.delete(k);
    }
    return out;
  }

  /** Keys tracked now. */
  get size(): number {
    return this.entries.size;
  }
}
