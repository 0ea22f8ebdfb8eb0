/** Turning RangeOptions into one [lo, hi) interval, shared by every backend. */

import type { RangeOptions } from "./interfaces.js";
import { compareBytes, prefixEnd } from "./bytes.js";
import { checkKey, checkLimit } from "./validate.js";
import { storageError } from "./errors.js";

/** The effective half-open key interval of a range scan; `lo`/`hi` absent means unbounded. */
export interface Bounds {
  lo: Uint8Array | undefined;
  hi: Uint8Array | undefined;
  /** True when the interval holds no key at all (then scans return nothing). */
  empty: boolean;
  limit: number | undefined;
  reverse: boolean;
}

/** Intersects the `gte`/`lt` bounds with the prefix interval `[prefix, prefixEnd(prefix))`. */
export function resolveBounds(opts: RangeOptions | undefined): Bounds {
  if (opts !== undefined && (typeof opts !== "object" || opts === null)) {
    throw storageError("invalid", "range options must be an object");
  }
  const o = opts ?? {};
  let lo = o.gte === undefined ? undefined : checkKey(o.gte);
  let hi = o.lt === undefined ? undefined : checkKey(o.lt);
  if (o.prefix !== undefined) {
    const p = checkKey(o.prefix);
    if (p.length > 0) {
      if (lo === undefined || compareBytes(p, lo) > 0) lo = p;
      const end = prefixEnd(p);
      if (end !== undefined && (hi === undefined || compareBytes(end, hi) < 0)) hi = end;
    }
  }
  const limit = checkLimit(o.limit);
  const empty = (lo !== undefined && hi !== undefined && compareBytes(lo, hi) >= 0) || limit === 0;
  return { lo, hi, empty, limit, reverse: o.reverse === true };
}
