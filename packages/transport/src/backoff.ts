import { MpregError } from "@mpreg/envelope";

/** Reconnect policy: exponential backoff with full jitter. */
export interface BackoffOptions {
  /** Delay cap of the first retry (attempt 0). Default 100 ms. */
  initialDelayMs?: number;
  /** Cap of any delay. Default 10 000 ms. */
  maxDelayMs?: number;
  /** Retries after a drop before giving up; `Infinity` (default) never gives up. */
  maxAttempts?: number;
}

export const DEFAULT_BACKOFF = { initialDelayMs: 100, maxDelayMs: 10_000, maxAttempts: Infinity } as const;

/** A source of uniform numbers in [0, 1), like `Math.random`. */
export type RandomSource = () => number;

/** The cap of attempt `n` (0-based): `min(maxDelayMs, initialDelayMs * 2^n)`. */
export function backoffCap(attempt: number, initialDelayMs: number, maxDelayMs: number): number {
  // Clamped exponent: 2^1024 is Infinity, and 0 * Infinity would be NaN.
  return Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(attempt, 1000));
}

/**
 * Delay before retry `attempt` (0-based) with full jitter: uniform in [0, cap]
 * (AWS "Exponential Backoff and Jitter"). Spreads reconnecting clients out after an outage.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}, random: RandomSource = Math.random): number {
  const initial = opts.initialDelayMs ?? DEFAULT_BACKOFF.initialDelayMs;
  const max = opts.maxDelayMs ?? DEFAULT_BACKOFF.maxDelayMs;
  if (!(initial >= 0 && max >= 0) || !Number.isInteger(attempt) || attempt < 0) {
    throw MpregError.invalid("backoff needs initialDelayMs, maxDelayMs >= 0 and an attempt >= 0");
  }
  const r = random();
  const u = r >= 0 && r < 1 ? r : 0;
  const cap = backoffCap(attempt, initial, max);
  return Math.min(cap, Math.floor(u * (cap + 1)));
}
