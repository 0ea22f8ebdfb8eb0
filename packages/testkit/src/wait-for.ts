import { ErrorCode, MpregError } from "@mpreg/envelope";

/** Options of {@link waitFor}. */
export interface WaitForOptions {
  /** Give up after this many ms (default 10 000). */
  timeoutMs?: number;
  /** Poll every this many ms (default 25). */
  intervalMs?: number;
  /** Included in the timeout error to say what was awaited. */
  description?: string;
}

/**
 * Polls `predicate` until it returns a truthy value (which is returned) or the deadline passes
 * (then throws an MpregError TIMEOUT). Use this instead of sleeping for a state.
 * Exceptions thrown by the predicate are treated as "not yet" and reported on timeout.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  opts: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 25;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await predicate();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      throw new MpregError(ErrorCode.TIMEOUT, `waitFor timed out after ${timeoutMs} ms${opts.description ? `: ${opts.description}` : ""}`, {
        timeout_ms: timeoutMs,
        ...(lastError !== undefined ? { last_error: String(lastError) } : {}),
      });
    }
    await new Promise<void>((resolve) => setTimeout(resolve, intervalMs));
  }
}
