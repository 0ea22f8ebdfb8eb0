/**
 * A cheap estimate of how large a value is once encoded, for limits that must be decided
 * before anything is encoded: a reply that would be too large (in bytes, or in values for the
 * receiver's `maxElements`), a request whose references fan one result out into gigabytes of
 * arguments.
 *
 * Bytes (MessagePack sizes): `null`/booleans 1, numbers 1/2/3/5/9 by magnitude, a string its
 * length in UTF-16 units plus a 5-byte header (exact for ASCII; UTF-8 may take up to 3× for
 * other text, so the estimate can be low by that factor, never unbounded), binary its length
 * plus 5, a container 5 plus its items (an object's keys counted like strings), a Date 15,
 * anything else 9. Values are counted as `decodeFrame`'s scan counts them: every container,
 * scalar, map key and map value is one.
 */

/** Running totals of {@link tallyEncodedSize}. */
export interface SizeTally {
  bytes: number;
  values: number;
}

/**
 * Fully measured containers: [bytes, values] (a result referenced many times is walked once).
 * Values handed around as results are treated as immutable: a container changed after it was
 * measured keeps its old size here.
 */
const measured = new WeakMap<object, readonly [number, number]>();
const HEADER = 5;
/** Smaller values are cheaper to walk again than to remember. */
const CACHE_MIN_BYTES = 1024;

function scalarSize(v: unknown): number {
  switch (typeof v) {
    case "string":
      return v.length + HEADER;
    case "number":
      if (Number.isInteger(v)) {
        if (v >= 0) return v < 128 ? 1 : v < 0x100 ? 2 : v < 0x10000 ? 3 : v < 0x1_0000_0000 ? 5 : 9;
        return v >= -32 ? 1 : v >= -128 ? 2 : v >= -32768 ? 3 : v >= -0x8000_0000 ? 5 : 9;
      }
      return 9;
    case "boolean":
    case "undefined":
      return 1;
    default:
      return v === null ? 1 : 9;
  }
}

// Work stack of the walk, reused (the walk is synchronous); released when it grew large.
const stack: unknown[] = [];
const STACK_KEEP = 4096;

/**
 * Adds the estimated size of `value` to `tally` and returns true while the totals stay within
 * `maxBytes` and `maxValues`. Stops as soon as either is passed (then returns false, with
 * partial totals): the work is bounded by the limits, not by the value. Never recurses (any
 * depth is fine); a cycle is counted until a limit.
 */
export function tallyEncodedSize(
  value: unknown,
  tally: SizeTally,
  maxBytes: number = Number.POSITIVE_INFINITY,
  maxValues: number = Number.POSITIVE_INFINITY,
): boolean {
  if (typeof value !== "object" || value === null) {
    tally.bytes += scalarSize(value);
    tally.values += 1;
    return tally.bytes <= maxBytes && tally.values <= maxValues;
  }
  const known = measured.get(value);
  if (known !== undefined) {
    tally.bytes += known[0];
    tally.values += known[1];
    return tally.bytes <= maxBytes && tally.values <= maxValues;
  }
  // Every value is charged 1 byte and counted when it is pushed, the rest of its bytes when it
  // is popped: pushing a container's items stops as soon as a limit is passed, so a container
  // of a million items costs the limit's worth of work, not a million steps.
  const startBytes = tally.bytes;
  const startValues = tally.values;
  let bytes = startBytes + 1;
  let values = startValues + 1;
  let top = 0;
  stack[top++] = value;
  let highWater = 1;
  let cut = false; // a container's items were not all pushed
  while (top > 0 && bytes <= maxBytes && values <= maxValues) {
    const v = stack[--top];
    stack[top] = undefined;
    if (typeof v !== "object" || v === null) {
      bytes += scalarSize(v) - 1;
      continue;
    }
    const seen = v !== value ? measured.get(v) : undefined;
    if (seen !== undefined) {
      bytes += seen[0] - 1;
      values += seen[1] - 1;
    } else if (ArrayBuffer.isView(v)) {
      bytes += v.byteLength + HEADER - 1;
    } else if (Array.isArray(v)) {
      bytes += HEADER - 1;
      let i = 0;
      for (; i < v.length && bytes <= maxBytes && values <= maxValues; i++) {
        bytes++;
        values++;
        stack[top++] = v[i];
      }
      if (i < v.length) cut = true;
    } else if (v instanceof Date) {
      bytes += 15 - 1;
    } else {
      bytes += HEADER - 1;
      for (const k in v) {
        if (bytes > maxBytes || values > maxValues) {
          cut = true;
          break;
        }
        if (!Object.prototype.hasOwnProperty.call(v, k)) continue;
        bytes += k.length + HEADER + 1;
        values += 2;
        stack[top++] = (v as Record<string, unknown>)[k];
      }
    }
    if (top > highWater) highWater = top;
  }
  if (highWater > STACK_KEEP) stack.length = 0;
  else if (top > 0) stack.fill(undefined, 0, top);
  tally.bytes = bytes;
  tally.values = values;
  if (top === 0 && !cut && bytes - startBytes >= CACHE_MIN_BYTES) measured.set(value, [bytes - startBytes, values - startValues]);
  return bytes <= maxBytes && values <= maxValues;
}

/**
 * The estimated encoded size of `value` in bytes. Stops counting as soon as the sum passes
 * `cap` and returns that partial sum (so the work is bounded by the cap): compare the result
 * with the cap, not for equality.
 */
export function estimateEncodedSize(value: unknown, cap: number = Number.POSITIVE_INFINITY): number {
  const t: SizeTally = { bytes: 0, values: 0 };
  tallyEncodedSize(value, t, cap);
  return t.bytes;
}
