/**
 * fast-check arbitraries of the name filters of federation (prefix lists per service kind) and
 * of the names they judge. Both are drawn from one tiny alphabet by default, so that random
 * prefixes and random names start each other often.
 */
import { MpregError } from "@mpreg/envelope";
import fc from "fast-check";
import { MAX_PREFIXES, MAX_PREFIX_LENGTH, type PrefixList } from "../prefix-filter.js";
import type { Offers } from "../service-filter.js";

/** Options of {@link prefixWordArb}. */
export interface PrefixWordArbOptions {
  /** Characters to draw from. Default `a`, `b`, `.`. */
  alphabet?: readonly string[];
  /** Longest word. Default 4; at most MAX_PREFIX_LENGTH. */
  maxLength?: number;
}

/** Options of {@link prefixListArb} and {@link offersArb}. */
export interface PrefixListArbOptions {
  /** Prefixes (and names). Default {@link prefixWordArb}`()`. */
  word?: fc.Arbitrary<string>;
  /** Most prefixes per `allow` or `deny` list. Default 4; at most MAX_PREFIXES. */
  maxPrefixes?: number;
}

/**
 * A prefix or a service name (function, topic or queue name) over a small alphabet, the empty
 * string included (the empty prefix lets every name through).
 */
export function prefixWordArb(opts: PrefixWordArbOptions = {}): fc.Arbitrary<string> {
  const alphabet = opts.alphabet ?? ["a", "b", "."];
  if (!Array.isArray(alphabet) || alphabet.length === 0 || alphabet.some((c) => typeof c !== "string" || c.length !== 1)) {
    throw MpregError.invalid("alphabet must be a non-empty array of single characters", "alphabet");
  }
  const maxLength = opts.maxLength ?? 4;
  if (!Number.isInteger(maxLength) || maxLength < 0 || maxLength > MAX_PREFIX_LENGTH) {
    throw MpregError.invalid(`maxLength must be an integer in 0..${MAX_PREFIX_LENGTH}`, "maxLength");
  }
  return fc.string({ unit: fc.constantFrom(...alphabet), maxLength });
}

function maxPrefixes(opts: PrefixListArbOptions): number {
  const m = opts.maxPrefixes ?? 4;
  if (!Number.isInteger(m) || m < 0 || m > MAX_PREFIXES) throw MpregError.invalid(`maxPrefixes must be an integer in 0..${MAX_PREFIXES}`, "maxPrefixes");
  return m;
}

/**
 * A {@link PrefixList} that `prefixFilter` accepts: `allow` and `deny` each absent or a list of
 * prefixes (so "everything", "nothing" (`allow: []`) and overlapping lists all occur).
 */
export function prefixListArb(opts: PrefixListArbOptions = {}): fc.Arbitrary<PrefixList> {
  const word = opts.word ?? prefixWordArb();
  const max = maxPrefixes(opts);
  const list = fc.array(
    word.filter((w) => w.length <= MAX_PREFIX_LENGTH),
    { maxLength: max },
  );
  return fc.record({ allow: list, deny: list }, { requiredKeys: [] });
}

/** An {@link Offers} that `serviceFilter` accepts: each of `functions`, `topics`, `queues` absent or a {@link prefixListArb}. */
export function offersArb(opts: PrefixListArbOptions = {}): fc.Arbitrary<Offers> {
  const list = prefixListArb(opts);
  return fc.record({ functions: list, topics: list, queues: list }, { requiredKeys: [] });
}
