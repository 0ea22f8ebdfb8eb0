import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  MAX_SEGMENTS,
  MAX_TOPIC_LENGTH,
  TopicTrie,
  compilePattern,
  isValidPattern,
  matchTopic,
  validatePattern,
  validateTopic,
} from "./topic-pattern.js";
import { matchingTopicArb, naiveTopicMatch, topicArb, topicPatternArb } from "./testing/index.js";

const topics = topicArb();
const patterns = topicPatternArb();

function expect1002(fn: () => unknown): void {
  expect(fn).toThrowError(expect.objectContaining({ code: 1002 }));
}

describe("validatePattern / validateTopic", () => {
  it("accepts whole-segment wildcards", () => {
    expect(validatePattern("a.*.c")).toEqual(["a", "*", "c"]);
    expect(validatePattern("#")).toEqual(["#"]);
    expect(validatePattern("a.#.b.#")).toEqual(["a", "#", "b", "#"]);
    expect(validateTopic("orders.eu.created")).toEqual(["orders", "eu", "created"]);
  });

  it.each(["", ".", "a.", ".a", "a..b", "a*", "a.b*", "*a", "a.#b", "##", "a.**"])("refuses pattern %j with 1002", (p) => {
    expect1002(() => validatePattern(p));
    expect(isValidPattern(p)).toBe(false);
    expect1002(() => compilePattern(p));
    expect1002(() => matchTopic(p, "a"));
    expect1002(() => new TopicTrie().add(p, 1));
  });

  it.each(["", "a..b", "a.", "a.*", "#", "a.b#"])("refuses topic %j with 1002", (t) => {
    expect1002(() => validateTopic(t));
    expect1002(() => matchTopic("#", t));
    expect1002(() => new TopicTrie().match(t));
  });

  it("refuses non-strings, oversized and over-segmented input", () => {
    expect1002(() => validatePattern(7 as unknown as string));
    expect1002(() => validatePattern("a".repeat(MAX_TOPIC_LENGTH + 1)));
    expect1002(() => validateTopic(Array(MAX_SEGMENTS + 1).fill("a").join(".")));
    expect(validatePattern(Array(MAX_SEGMENTS).fill("a").join("."))).toHaveLength(MAX_SEGMENTS);
  });

  it("puts the path into error details", () => {
    try {
      validatePattern("a..b", "subscription.patterns[2]");
      throw new Error("unreachable");
    } catch (e) {
      expect((e as { details: Record<string, unknown> }).details.path).toBe("subscription.patterns[2]");
    }
  });
});

describe("matchTopic", () => {
  it.each([
    ["a.b", "a.b", true],
    ["a.b", "a.c", false],
    ["a.*", "a.b", true],
    ["a.*", "a", false],
    ["a.*", "a.b.c", false],
    ["*.*", "a.b", true],
    ["a.#", "a", true],
    ["a.#", "a.b.c", true],
    ["a.#", "b", false],
    ["#", "x.y.z", true],
    ["#.z", "z", true],
    ["#.z", "x.y.z", true],
    ["#.z", "x.y", false],
    ["a.#.c", "a.c", true],
    ["a.#.c", "a.b.b.c", true],
    ["a.#.c", "a.b.b", false],
    ["a.*.#", "a", false],
    ["a.*.#", "a.b", true],
    ["#.#", "a", true],
    ["a.#.*.#.d", "a.b.c.d", true],
    ["a.#.*.#.d", "a.d", false],
  ])("%s vs %s → %s", (p, t, want) => {
    expect(matchTopic(p, t)).toBe(want);
    expect(naiveTopicMatch(p, t)).toBe(want);
  });

  it("agrees with the brute-force reference (naiveTopicMatch)", () => {
    fc.assert(
      fc.property(patterns, topics, (p, t) => {
        expect(matchTopic(p, t)).toBe(naiveTopicMatch(p, t));
        expect(compilePattern(p).testSegments(t.split("."))).toBe(naiveTopicMatch(p, t));
      }),
      { numRuns: 3000 },
    );
  });

  it("a topic built to match a pattern matches it (property)", () => {
    fc.assert(
      fc.property(
        patterns.chain((p) => fc.tuple(fc.constant(p), matchingTopicArb(p))),
        ([p, t]) => {
          expect(naiveTopicMatch(p, t)).toBe(true);
          expect(matchTopic(p, t)).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("a literal pattern matches exactly itself", () => {
    fc.assert(
      fc.property(topics, topics, (a, b) => {
        expect(compilePattern(a).literal).toBe(true);
        expect(matchTopic(a, b)).toBe(a === b);
      }),
    );
  });

  it("many # segments stay fast (no backtracking blow-up)", () => {
    const p = Array(40).fill("#").join(".") + ".z";
    const t = Array(100).fill("a").join(".");
    expect(matchTopic(p, t)).toBe(false);
    expect(matchTopic(p, `${t}.z`)).toBe(true);
  });
});

describe("TopicTrie", () => {
  it("finds every value whose pattern matches", () => {
    const trie = new TopicTrie<string>();
    trie.add("orders.*.created", "s1");
    trie.add("orders.#", "s2");
    trie.add("#", "s3");
    trie.add("orders.eu.created", "s4");
    trie.add("orders.eu.created", "s5");
    expect(trie.add("orders.eu.created", "s5")).toBe(false);
    expect(trie.size).toBe(5);
    expect([...trie.match("orders.eu.created")].sort()).toEqual(["s1", "s2", "s3", "s4", "s5"]);
    expect([...trie.match("orders")].sort()).toEqual(["s2", "s3"]);
    expect([...trie.match("users.x")]).toEqual(["s3"]);
    expect(trie.remove("#", "s3")).toBe(true);
    expect(trie.remove("#", "s3")).toBe(false);
    expect(trie.remove("never.added", "s3")).toBe(false);
    expect(trie.hasMatch("users.x")).toBe(false);
    expect(trie.removeValue("s5")).toBe(1);
    expect([...trie.match("orders.eu.created")].sort()).toEqual(["s1", "s2", "s4"]);
    trie.clear();
    expect(trie.size).toBe(0);
    expect(trie.entries()).toEqual([]);
  });

  it("is bounded: add beyond maxEntries is 1007 and changes nothing", () => {
    const trie = new TopicTrie<number>({ maxEntries: 2 });
    trie.add("a", 1);
    trie.add("b", 2);
    expect(trie.add("a", 1)).toBe(false); // already present: not an error
    expect(() => trie.add("c.d", 3)).toThrowError(expect.objectContaining({ code: 1007 }));
    expect(trie.size).toBe(2);
    expect(trie.entries().map((e) => e.pattern).sort()).toEqual(["a", "b"]);
    trie.remove("a", 1);
    expect(trie.add("c.d", 3)).toBe(true);
  });

  it("agrees with scanning all patterns, through adds and removes", () => {
    const op = fc.record({ add: fc.boolean(), pattern: patterns, value: fc.nat(5) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), fc.array(topics, { minLength: 1, maxLength: 10 }), (ops, ts) => {
        const trie = new TopicTrie<number>();
        const model = new Map<string, { pattern: string; value: number }>();
        for (const o of ops) {
          const k = `${o.pattern}\u0000${o.value}`;
          if (o.add) {
            expect(trie.add(o.pattern, o.value)).toBe(!model.has(k));
            model.set(k, { pattern: o.pattern, value: o.value });
          } else {
            expect(trie.remove(o.pattern, o.value)).toBe(model.delete(k));
          }
        }
        expect(trie.size).toBe(model.size);
        expect(trie.entries().length).toBe(model.size);
        for (const t of ts) {
          const expected = new Set([...model.values()].filter((m) => naiveTopicMatch(m.pattern, t)).map((m) => m.value));
          expect(trie.match(t)).toEqual(expected);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("many # segments in the trie stay fast (each node visited once per position)", () => {
    const trie = new TopicTrie<number>();
    for (let k = 1; k <= 40; k++) trie.add(`${Array(k).fill("#").join(".")}.z`, k);
    const t = Array(100).fill("a").join(".");
    const start = performance.now();
    expect(trie.match(t).size).toBe(0);
    expect(trie.match(`${t}.z`).size).toBe(40);
    // Without the per-match bookkeeping of # nodes this walk is exponential (never finishes).
    expect(performance.now() - start).toBeLessThan(2000);
  });

  it("prunes emptied branches (entries reflect only live patterns)", () => {
    const trie = new TopicTrie<number>();
    trie.add("a.b.c.#", 1);
    trie.add("a.b", 2);
    trie.remove("a.b.c.#", 1);
    expect(trie.entries()).toEqual([{ pattern: "a.b", value: 2 }]);
  });
});
