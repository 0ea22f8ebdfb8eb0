/**
 * Name filters by string prefix: the building block of federation policies. A filter lets a
 * name through when some `allow` prefix starts it and no `deny` prefix does. Filters compose
 * exactly (the conjunction of two filters is again a filter), which is what lets a route carry
 * the net effect of every policy along its path without ever widening it.
 */
import { MpregError } from "@mpreg/envelope";

/** Most prefixes in one allow or deny list (config, wire, and after composition). */
export const MAX_PREFIXES = 64;
/** Longest prefix, in UTF-16 code units. */
export const MAX_PREFIX_LENGTH = 256;

/**
 * A filter as written in configuration and on the wire. `allow` absent lets every name through
 * (the empty prefix); `allow: []` lets none through. `deny` wins over `allow`.
 */
export interface PrefixList {
  allow?: string[];
  deny?: string[];
}

/**
 * A normalised filter: `allow` and `deny` sorted, minimal (no prefix covered by another of the
 * same list), every `deny` strictly inside some `allow`, no `allow` inside a `deny`.
 */
export interface PrefixFilter {
  readonly allow: readonly string[];
  readonly deny: readonly string[];
}

/** The filter that lets every name through. */
export const ALLOW_ALL: PrefixFilter = Object.freeze({ allow: Object.freeze([""]), deny: Object.freeze([]) });
/** The filter that lets no name through. */
export const ALLOW_NONE: PrefixFilter = Object.freeze({ allow: Object.freeze([]), deny: Object.freeze([]) });

function sortedUnique(xs: Iterable<string>): string[] {
  return [...new Set(xs)].sort();
}

/** Drops every entry that has another entry of the list as a proper prefix. */
function minimal(xs: readonly string[]): string[] {
  // Sorted order puts a prefix right before the strings it covers, so one pass suffices.
  const out: string[] = [];
  for (const x of sortedUnique(xs)) {
    const last = out[out.length - 1];
    if (last !== undefined && x.startsWith(last)) continue;
    out.push(x);
  }
  return out;
}

function normalize(allow: readonly string[], deny: readonly string[]): PrefixFilter {
  const d = minimal(deny);
  // An allow prefix under a deny prefix lets nothing through.
  const a = minimal(allow.filter((p) => !d.some((q) => p.startsWith(q))));
  // A deny prefix that no allow prefix reaches changes nothing.
  const dd = d.filter((q) => a.some((p) => q.startsWith(p)));
  return { allow: a, deny: dd };
}

function checkList(v: unknown, path: string): string[] {
  if (!Array.isArray(v)) throw MpregError.invalid(`${path} must be an array of strings`, path);
  if (v.length > MAX_PREFIXES) throw MpregError.invalid(`${path} has more than ${MAX_PREFIXES} prefixes`, path);
  v.forEach((p: unknown, i) => {
    if (typeof p !== "string" || p.length > MAX_PREFIX_LENGTH) {
      throw MpregError.invalid(`${path}[${i}] must be a string of at most ${MAX_PREFIX_LENGTH} characters`, `${path}[${i}]`);
    }
  });
  return v as string[];
}

/**
 * Checks and normalises a {@link PrefixList} (absent: {@link ALLOW_ALL}).
 * @throws {MpregError} 1002 naming `path` when it is malformed or too long.
 */
export function prefixFilter(list: unknown, path = "filter"): PrefixFilter {
  if (list === undefined) return ALLOW_ALL;
  if (typeof list !== "object" || list === null || Array.isArray(list)) {
    throw MpregError.invalid(`${path} must be an object {allow?, deny?}`, path);
  }
  const o = list as Record<string, unknown>;
  const allow = o.allow === undefined ? [""] : checkList(o.allow, `${path}.allow`);
  const deny = o.deny === undefined ? [] : checkList(o.deny, `${path}.deny`);
  return normalize(allow, deny);
}

/** True when `name` passes the filter. */
export function prefixAllows(f: PrefixFilter, name: string): boolean {
  return f.allow.some((p) => name.startsWith(p)) && !f.deny.some((p) => name.startsWith(p));
}

/**
 * The conjunction of two filters: exactly the names both let through. Allowed cones intersect
 * pairwise (the longer of two nested prefixes, nothing for unrelated ones); denials add up.
 * The result may hold more than {@link MAX_PREFIXES} entries; see {@link prefixFilterFits}.
 */
export function intersectPrefixFilters(a: PrefixFilter, b: PrefixFilter): PrefixFilter {
  const allow: string[] = [];
  for (const p of a.allow) {
    for (const q of b.allow) {
      if (q.startsWith(p)) allow.push(q);
      else if (p.startsWith(q)) allow.push(p);
    }
  }
  return normalize(allow, [...a.deny, ...b.deny]);
}

/** True when a filter is within the list limits (what may be stored and sent). */
export function prefixFilterFits(f: PrefixFilter): boolean {
  return f.allow.length <= MAX_PREFIXES && f.deny.length <= MAX_PREFIXES;
}

/** True when the filter lets every name through. */
export function isAllowAll(f: PrefixFilter): boolean {
  return f.allow.length === 1 && f.allow[0] === "" && f.deny.length === 0;
}

/** True when two normalised filters are the same. */
export function samePrefixFilter(a: PrefixFilter, b: PrefixFilter): boolean {
  return (
    a.allow.length === b.allow.length &&
    a.deny.length === b.deny.length &&
    a.allow.every((p, i) => p === b.allow[i]) &&
    a.deny.every((p, i) => p === b.deny[i])
  );
}

/** The wire/config form: `allow` omitted when it is everything, `deny` omitted when empty. */
export function prefixFilterToList(f: PrefixFilter): PrefixList {
  const out: PrefixList = {};
  if (!(f.allow.length === 1 && f.allow[0] === "")) out.allow = f.allow.slice();
  if (f.deny.length > 0) out.deny = f.deny.slice();
  return out;
}
