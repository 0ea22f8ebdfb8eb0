/**
 * fast-check arbitraries of topics and topic patterns, valid by construction under the rules of
 * `topic-pattern.ts`: dot-separated non-empty segments, at most MAX_SEGMENTS segments and
 * MAX_TOPIC_LENGTH characters; `*` and `#` only as whole pattern segments, never in a topic.
 */
import { MpregError } from "@mpreg/envelope";
import fc from "fast-check";
import { MAX_SEGMENTS, MAX_TOPIC_LENGTH } from "../topic-pattern.js";

/** Options of {@link topicArb}. */
export interface TopicArbOptions {
  /**
   * Generates one segment; each value must be a valid topic segment (non-empty, no `.`, `*` or
   * `#`), else generation throws MpregError 1002. Default: one of `a`, `b`, `c`, `ab` (a small
   * alphabet, so that random topics and patterns match each other often).
   */
  segment?: fc.Arbitrary<string>;
  /** Fewest segments. Default 1. */
  minSegments?: number;
  /** Most segments. Default 6; at most MAX_SEGMENTS. */
  maxSegments?: number;
}

/** Options of {@link topicPatternArb}: those of {@link TopicArbOptions} plus wildcard weights. */
export interface TopicPatternArbOptions extends TopicArbOptions {
  /** Relative weights of a literal segment, `*` and `#`. Default `{ literal: 3, star: 1, hash: 1 }`. */
  weights?: { literal?: number; star?: number; hash?: number };
}

/** The default segment alphabet: few distinct words, so matches are frequent. */
const DEFAULT_SEGMENT = fc.constantFrom("a", "b", "c", "ab");

function segmentCount(opts: TopicArbOptions): { minLength: number; maxLength: number } {
  const minLength = opts.minSegments ?? 1;
  const maxLength = opts.maxSegments ?? Math.max(6, minLength);
  if (!Number.isInteger(minLength) || minLength < 1) throw MpregError.invalid("minSegments must be an integer >= 1", "minSegments");
  if (!Number.isInteger(maxLength) || maxLength < minLength || maxLength > MAX_SEGMENTS) {
    throw MpregError.invalid(`maxSegments must be an integer in minSegments..${MAX_SEGMENTS}`, "maxSegments");
  }
  return { minLength, maxLength };
}

function checkedSegment(seg: string): string {
  if (typeof seg !== "string" || seg.length === 0 || /[.*#]/.test(seg)) {
    throw MpregError.invalid(`segment arbitrary produced ${JSON.stringify(seg)}: not a valid topic segment`, "segment");
  }
  return seg;
}

/**
 * Any valid topic segment: a short string of printable ASCII with `.`, `*` and `#` replaced by
 * `_` (replaced rather than filtered, so nothing is rejected). Use it as `segment` to leave the
 * small default alphabet.
 */
export function topicSegmentArb(opts: { maxLength?: number } = {}): fc.Arbitrary<string> {
  const maxLength = opts.maxLength ?? 8;
  if (!Number.isInteger(maxLength) || maxLength < 1 || maxLength > MAX_TOPIC_LENGTH) {
    throw MpregError.invalid(`maxLength must be an integer in 1..${MAX_TOPIC_LENGTH}`, "maxLength");
  }
  return fc.string({ minLength: 1, maxLength }).map((s) => s.replace(/[.*#]/g, "_"));
}

/**
 * A concrete topic (no wildcards) that `validateTopic` accepts. Topics longer than
 * MAX_TOPIC_LENGTH (possible only with a custom `segment`) are skipped.
 */
export function topicArb(opts: TopicArbOptions = {}): fc.Arbitrary<string> {
  const count = segmentCount(opts);
  const segment = (opts.segment ?? DEFAULT_SEGMENT).map(checkedSegment);
  return fc
    .array(segment, count)
    .map((segs) => segs.join("."))
    .filter((t) => t.length <= MAX_TOPIC_LENGTH);
}

/**
 * A topic pattern that `validatePattern` accepts: segments are literal words, `*` or `#`
 * (weighted by `weights`).
 */
export function topicPatternArb(opts: TopicPatternArbOptions = {}): fc.Arbitrary<string> {
  const count = segmentCount(opts);
  const segment = (opts.segment ?? DEFAULT_SEGMENT).map(checkedSegment);
  const w = { literal: 3, star: 1, hash: 1, ...opts.weights };
  for (const [k, v] of Object.entries(w)) {
    if (!Number.isInteger(v) || v < 0) throw MpregError.invalid(`weights.${k} must be an integer >= 0`, `weights.${k}`);
  }
  if (w.literal + w.star + w.hash === 0) throw MpregError.invalid("weights must not all be 0", "weights");
  const choices: fc.WeightedArbitrary<string>[] = [];
  if (w.literal > 0) choices.push({ weight: w.literal, arbitrary: segment });
  if (w.star > 0) choices.push({ weight: w.star, arbitrary: fc.constant("*") });
  if (w.hash > 0) choices.push({ weight: w.hash, arbitrary: fc.constant("#") });
  return fc
    .array(fc.oneof(...choices), count)
    .map((segs) => segs.join("."))
    .filter((p) => p.length <= MAX_TOPIC_LENGTH);
}

/**
 * A topic that matches `pattern` (which must be valid): each literal segment is kept, `*`
 * becomes one generated segment and `#` zero to `maxHashSegments` (default 3) of them. Useful
 * next to {@link topicArb} because random topics rarely match a long pattern.
 */
export function matchingTopicArb(pattern: string, opts: { segment?: fc.Arbitrary<string>; maxHashSegments?: number } = {}): fc.Arbitrary<string> {
  const segment = (opts.segment ?? DEFAULT_SEGMENT).map(checkedSegment);
  const maxHash = opts.maxHashSegments ?? 3;
  if (!Number.isInteger(maxHash) || maxHash < 0) throw MpregError.invalid("maxHashSegments must be an integer >= 0", "maxHashSegments");
  const segs = pattern.split(".");
  // A pattern of `#` only must still give at least one segment: its first `#` gives one or more.
  const onlyHash = segs.every((s) => s === "#");
  if (onlyHash && maxHash < 1) throw MpregError.invalid("maxHashSegments must be >= 1 for a pattern of # only", "maxHashSegments");
  const parts = segs.map((seg, i) => {
    if (seg === "*") return segment.map((s) => [s]);
    if (seg === "#") return fc.array(segment, { minLength: onlyHash && i === 0 ? 1 : 0, maxLength: maxHash });
    return fc.constant([seg]);
  });
  return fc
    .tuple(...parts)
    .map((groups) => groups.flat())
    .filter((t) => t.length <= MAX_SEGMENTS)
    .map((segs) => segs.join("."))
    .filter((t) => t.length <= MAX_TOPIC_LENGTH);
}
