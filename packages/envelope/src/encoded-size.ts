/**
 * A cheap estimate of how many bytes a value takes once encoded (MessagePack sizes), for
 * limits that must be decided before anything is encoded: a reply that would be too large, a
 * request whose references fan one result out into gigabytes of arguments.
 *
 * Sizes: `null`/booleans 1, numbers 1/3/5/9 by magnitude, a string its length in UTF-16 units
 * plus a 5-byte header (exact for ASCII; UTF-8 may take up to 3× for other text, so the
 * estimate can be low by that factor, never unbounded), binary its length plus 5, a container
 * 5 plus its items (an object's keys counted like strings), anything else 9.
 */

/**
 * Fully measured containers (a result referenced many times is walked once). Values handed
 * around as results are treated as immutable: a container changed after it was measured keeps
 * its old size here.
 */
const measured = new WeakMap<object, number>();
const HEADER = 5;
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
 * The estimated encoded size of `value`. Stops counting as soon as the sum passes `cap` and
 * returns that partial sum (so the work is bounded by the cap, not by the value): compare the
 * result with the cap, not for equality. Never recurses (any depth is fine); a cycle is counted
 * until the cap.
 */
export function estimateEncodedSize(value: unknown, cap: number = Number.POSITIVE_INFINITY): number {
  if (typeof value !== "object" || value === null) return scalarSize(value);
  const known = measured.get(value);
  if (known !== undefined) return known;
  // Every value is charged 1 byte when it is pushed and the rest when it is popped: pushing a
  // container's items then stops as soon as the cap is passed, so a container of a million
  // items costs the cap's worth of work, not a million steps.
  let total = 1;
  let top = 0;
  stack[top++] = value;
  let highWater = 1;
  while (top > 0 && total <= cap) {
    const v = stack[--top];
    stack[top] = undefined;
    if (typeof v !== "object" || v === null) {
      total += scalarSize(v) - 1;
      continue;
    }
    const seen = v !== value ? measured.get(v) : undefined;
    if (seen !== undefined) {
      total += seen - 1;
    } else if (ArrayBuffer.isView(v)) {
      total += v.byteLength + HEADER - 1;
    } else if (Array.isArray(v)) {
      total += HEADER - 1;
      for (let i = 0; i < v.length && total <= cap; i++) {
        total++;
        stack[top++] = v[i];
      }
    } else if (v instanceof Date) {
      total += 15 - 1;
    } else {
      total += HEADER - 1;
      for (const k in v) {
        if (total > cap) break;
        if (!Object.prototype.hasOwnProperty.call(v, k)) continue;
        total += k.length + HEADER + 1;
        stack[top++] = (v as Record<string, unknown>)[k];
      }
    }
    if (top > highWater) highWater = top;
  }
  if (highWater > STACK_KEEP) stack.length = 0;
  else if (top > 0) stack.fill(undefined, 0, top);
  // Small values are cheaper to walk again than to remember.
  if (top === 0 && total >= CACHE_MIN_BYTES) measured.set(value, total);
  return total;
}
