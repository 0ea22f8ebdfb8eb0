/**
 * THE topic pattern matcher of MPREG (pub/sub, queue bindings, cache invalidation all use it).
 *
 * Topics and patterns are dot-separated segments. In a pattern, `*` matches exactly one segment
 * and `#` matches zero or more segments; a wildcard must be a whole segment (`a*` is refused).
 * `a.#` matches `a`, `a.b` and `a.b.c`; `#` alone matches every topic.
 *
 * Refused with MpregError 1002: a non-string, an empty string, an empty segment (`a..b`, `.a`,
 * `a.`), a partial wildcard, more than MAX_SEGMENTS segments or more than MAX_TOPIC_LENGTH
 * characters. In a concrete topic, `*` and `#` are reserved and refused anywhere.
 */
import { MpregError } from "@mpreg/envelope";

/** Longest topic or pattern, in characters. */
export const MAX_TOPIC_LENGTH = 1024;
/** Most segments in a topic or pattern. */
export const MAX_SEGMENTS = 128;

function checkCommon(s: unknown, what: string, path: string | undefined): string[] {
  if (typeof s !== "string") throw MpregError.invalid(`${what} must be a string, got ${typeof s}`, path);
  if (s.length === 0) throw MpregError.invalid(`${what} is empty`, path);
  if (s.length > MAX_TOPIC_LENGTH) throw MpregError.invalid(`${what} longer than ${MAX_TOPIC_LENGTH} characters`, path);
  const segs = s.split(".");
  if (segs.length > MAX_SEGMENTS) throw MpregError.invalid(`${what} has more than ${MAX_SEGMENTS} segments`, path);
  for (const seg of segs) {
    if (seg.length === 0) throw MpregError.invalid(`${what} ${JSON.stringify(s)} has an empty segment`, path);
  }
  return segs;
}

/**
 * Checks a pattern and returns its segments. Throws MpregError 1002 (with `path` in the details
 * when given) naming what is wrong.
 */
export function validatePattern(pattern: string, path?: string): string[] {
  const segs = checkCommon(pattern, "topic pattern", path);
  for (const seg of segs) {
    if (seg !== "*" && seg !== "#" && (seg.includes("*") || seg.includes("#"))) {
      throw MpregError.invalid(
        `topic pattern ${JSON.stringify(pattern)}: a wildcard must be a whole segment (got ${JSON.stringify(seg)})`,
        path,
      );
    }
  }
  return segs;
}

/** Checks a concrete topic (no wildcards) and returns its segments; 1002 when malformed. */
export function validateTopic(topic: string, path?: string): string[] {
  const segs = checkCommon(topic, "topic", path);
  for (const seg of segs) {
    if (seg.includes("*") || seg.includes("#")) {
      throw MpregError.invalid(`topic ${JSON.stringify(topic)} contains a wildcard character (* and # are reserved)`, path);
    }
  }
  return segs;
}

/** True when `s` is a valid pattern. */
export function isValidPattern(s: string): boolean {
  try {
    validatePattern(s);
    return true;
  } catch {
    return false;
  }
}

/** A pattern checked and prepared once, then matched many times. */
export interface CompiledPattern {
  readonly pattern: string;
  readonly segments: readonly string[];
  /** True when the pattern has no wildcard (matches exactly one topic). */
  readonly literal: boolean;
  /** Matches a topic string (validated: 1002 for a malformed topic). */
  test(topic: string): boolean;
  /** Matches already split, valid topic segments (no validation; the hot path). */
  testSegments(segments: readonly string[]): boolean;
}

/** Matches segments against segments; `#` handled by dynamic programming (no backtracking blow-up). */
function matchSegments(p: readonly string[], t: readonly string[]): boolean {
  // reach[j]: pattern prefix processed so far can consume exactly the first j topic segments.
  let reach = new Uint8Array(t.length + 1);
  reach[0] = 1;
  for (const seg of p) {
    const next = new Uint8Array(t.length + 1);
    if (seg === "#") {
      let any = 0;
      for (let j = 0; j <= t.length; j++) {
        any |= reach[j] as number;
        next[j] = any;
      }
    } else {
      for (let j = 0; j < t.length; j++) {
        if (reach[j] === 1 && (seg === "*" || seg === t[j])) next[j + 1] = 1;
      }
    }
    reach = next;
  }
  return reach[t.length] === 1;
}

/** Compiles a pattern (1002 when malformed). */
export function compilePattern(pattern: string, path?: string): CompiledPattern {
  const segments = Object.freeze(validatePattern(pattern, path));
  const hasHash = segments.includes("#");
  const literal = !hasHash && !segments.includes("*");
  let testSegments: (t: readonly string[]) => boolean;
  if (literal) {
    testSegments = (t) => t.length === segments.length && t.every((s, i) => s === segments[i]);
  } else if (!hasHash) {
    testSegments = (t) => t.length === segments.length && t.every((s, i) => segments[i] === "*" || s === segments[i]);
  } else {
    const fixed = segments.filter((s) => s !== "#").length;
    testSegments = (t) => t.length >= fixed && matchSegments(segments, t);
  }
  return {
    pattern,
    segments,
    literal,
    test: (topic) => testSegments(validateTopic(topic)),
    testSegments,
  };
}

/** True when `topic` matches `pattern`. Both are validated (1002 when malformed). */
export function matchTopic(pattern: string, topic: string): boolean {
  return compilePattern(pattern).test(topic);
}

interface TrieNode<V> {
  /** {@link NO_CHILDREN} until the first child is added. */
  children: Map<string, TrieNode<V>>;
  star: TrieNode<V> | undefined;
  hash: TrieNode<V> | undefined;
  /** Values whose pattern ends at this node; {@link NO_VALUES} until the first one. */
  values: Set<V>;
  /**
   * Match bookkeeping of a `#` node: in match number `epoch`, the node was already expanded
   * from topic position `minPos` onwards (so every later position is done).
   */
  epoch: number;
  minPos: number;
}

// Shared empty containers: most nodes are leaves (no children) or inner nodes (no values), and
// one Map and one Set per node would double the trie's memory and its cache misses when
// matching. They are only ever read; the first insertion replaces them with a node's own.
const NO_CHILDREN = new Map<string, never>();
const NO_VALUES = new Set<never>();

/** Options of a TopicTrie. */
export interface TopicTrieOptions {
  /** Most (pattern, value) pairs held; `add` beyond it throws MpregError 1007. Default 100 000. */
  readonly maxEntries?: number;
}

/**
 * An index of (pattern, value) pairs that finds every value whose pattern matches a topic by
 * walking a trie of segments, never scanning all patterns: the work is bounded by the trie
 * nodes reachable from the topic (each visited at most once per topic position).
 */
export class TopicTrie<V> {
  private root: TrieNode<V> = this.node();
  /** Counts `matchSegments` calls; stamps the `#` nodes expanded during one match. */
  private epoch = 0;
  private count = 0;
  private readonly maxEntries: number;

  constructor(options: TopicTrieOptions = {}) {
    const max = options.maxEntries ?? 100_000;
    if (!Number.isInteger(max) || max < 1) throw MpregError.invalid("maxEntries must be a positive integer", "maxEntries");
    this.maxEntries = max;
  }

  private node(): TrieNode<V> {
    return {
      children: NO_CHILDREN,
      star: undefined,
      hash: undefined,
      values: NO_VALUES,
      epoch: 0,
      minPos: 0,
    };
  }

  /** Number of (pattern, value) pairs held. */
  get size(): number {
    return this.count;
  }

  /**
   * Adds `value` under `pattern` (1002 when the pattern is malformed, 1007 when full).
   * Returns false when the pair was already present.
   */
  add(pattern: string, value: V): boolean {
    const segs = validatePattern(pattern);
    const existing = this.find(segs);
    if (existing !== undefined && existing.values.has(value)) return false;
    if (this.count >= this.maxEntries) throw MpregError.overloaded(`topic index holds ${this.maxEntries} subscriptions`);
    let n = this.root;
    for (const seg of segs) n = this.childFor(n, seg, true) as TrieNode<V>;
    if (n.values === NO_VALUES) n.values = new Set();
    n.values.add(value);
    this.count++;
    return true;
  }

  /** Removes the pair; returns false when it was not present. The emptied branch is pruned. */
  remove(pattern: string, value: V): boolean {
    const segs = validatePattern(pattern);
    const path: TrieNode<V>[] = [this.root];
    for (const seg of segs) {
      const c = this.childFor(path[path.length - 1] as TrieNode<V>, seg, false);
      if (c === undefined) return false;
      path.push(c);
    }
    if (!(path[path.length - 1] as TrieNode<V>).values.delete(value)) return false;
    this.count--;
    // Walk back up, detaching nodes left empty (only this pattern's path: O(segments)).
    for (let i = segs.length; i > 0; i--) {
      const n = path[i] as TrieNode<V>;
      if (n.values.size > 0 || n.children.size > 0 || n.star !== undefined || n.hash !== undefined) break;
      const parent = path[i - 1] as TrieNode<V>;
      const seg = segs[i - 1] as string;
      if (seg === "*") parent.star = undefined;
      else if (seg === "#") parent.hash = undefined;
      else parent.children.delete(seg);
    }
    return true;
  }

  private find(segs: readonly string[]): TrieNode<V> | undefined {
    let n: TrieNode<V> | undefined = this.root;
    for (const seg of segs) {
      n = this.childFor(n, seg, false);
      if (n === undefined) return undefined;
    }
    return n;
  }

  /**
   * Removes every pair holding `value` (e.g. a closed connection's subscriptions); returns how
   * many. Walks the whole trie: O(nodes).
   */
  removeValue(value: V): number {
    let removed = 0;
    const walk = (n: TrieNode<V>) => {
      if (n.values.delete(value)) removed++;
      for (const c of n.children.values()) walk(c);
      if (n.star) walk(n.star);
      if (n.hash) walk(n.hash);
    };
    walk(this.root);
    this.count -= removed;
    if (removed > 0) this.prune(this.root);
    return removed;
  }

  /** Every value whose pattern matches `topic` (validated: 1002 when malformed). */
  match(topic: string): Set<V> {
    return this.matchSegments(validateTopic(topic));
  }

  /**
   * Like `match`, on already split and valid segments. Each node is visited at most once per
   * topic position: a `#` node remembers (per match) the lowest position it was expanded
   * from, and every other node has one parent, so the work is bounded by nodes x positions.
   */
  matchSegments(t: readonly string[]): Set<V> {
    const out = new Set<V>();
    // A fresh stamp per match; wraps long after any trie would be rebuilt (2^53 matches).
    this.epoch++;
    this.visit(this.root, 0, t, out);
    return out;
  }

  private visit(n: TrieNode<V>, i: number, t: readonly string[], out: Set<V>): void {
    const len = t.length;
    if (i === len && n.values.size > 0) for (const v of n.values) out.add(v);
    const h = n.hash;
    if (h !== undefined) {
      // `#` consumes zero or more segments: continue after it from every position j >= i,
      // skipping the positions an earlier path already expanded it from.
      let end = len;
      if (h.epoch === this.epoch) end = h.minPos - 1;
      else h.epoch = this.epoch;
      if (i <= end) {
        h.minPos = i;
        for (let j = i; j <= end; j++) this.visit(h, j, t, out);
      }
    }
    if (i < len) {
      const c = n.children.get(t[i] as string);
      if (c !== undefined) this.visit(c, i + 1, t, out);
      if (n.star !== undefined) this.visit(n.star, i + 1, t, out);
    }
  }

  /** True when some pattern matches `topic`. */
  hasMatch(topic: string): boolean {
    return this.match(topic).size > 0;
  }

  /** Every (pattern, value) pair, for inspection and tests. */
  entries(): Array<{ pattern: string; value: V }> {
    const out: Array<{ pattern: string; value: V }> = [];
    const walk = (n: TrieNode<V>, segs: string[]) => {
      for (const v of n.values) out.push({ pattern: segs.join("."), value: v });
      for (const [s, c] of n.children) walk(c, [...segs, s]);
      if (n.star) walk(n.star, [...segs, "*"]);
      if (n.hash) walk(n.hash, [...segs, "#"]);
    };
    walk(this.root, []);
    return out;
  }

  /** Removes everything. */
  clear(): void {
    this.root = this.node();
    this.count = 0;
  }

  private childFor(n: TrieNode<V>, seg: string, create: boolean): TrieNode<V> | undefined {
    if (seg === "*") {
      if (n.star === undefined && create) n.star = this.node();
      return n.star;
    }
    if (seg === "#") {
      if (n.hash === undefined && create) n.hash = this.node();
      return n.hash;
    }
    let c = n.children.get(seg);
    if (c === undefined && create) {
      if (n.children === NO_CHILDREN) n.children = new Map();
      n.children.set(seg, (c = this.node()));
    }
    return c;
  }

  /** Drops empty branches below `n`; returns true when `n` itself is empty. */
  private prune(n: TrieNode<V>): boolean {
    for (const [s, c] of n.children) if (this.prune(c)) n.children.delete(s);
    if (n.star !== undefined && this.prune(n.star)) n.star = undefined;
    if (n.hash !== undefined && this.prune(n.hash)) n.hash = undefined;
    return n.values.size === 0 && n.children.size === 0 && n.star === undefined && n.hash === undefined;
  }
}
