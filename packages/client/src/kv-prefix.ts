import { MpregError } from "@mpreg/envelope";

/**
 * The smallest key greater than every key that starts with `prefix`, in the store's order
 * (UTF-8 bytes, which is code point order): the `end` of `kv.range(prefix, end)` for "every
 * key under `prefix`". It is `prefix` with its last code point incremented (skipping the
 * surrogate range), dropping trailing U+10FFFF. Undefined for a prefix with no upper bound
 * (empty, or only U+10FFFF): range without `end` then.
 */
export function kvPrefixEnd(prefix: string): string | undefined {
  if (typeof prefix !== "string") throw MpregError.invalid("a key prefix must be a string", "prefix");
  const cps = Array.from(prefix, (c) => c.codePointAt(0)!);
  while (cps.length > 0) {
    const last = cps.pop()!;
    if (last < 0x10ffff) {
      cps.push(last + 1 === 0xd800 ? 0xe000 : last + 1);
      return String.fromCodePoint(...cps);
    }
  }
  return undefined;
}
