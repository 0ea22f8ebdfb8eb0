/**
 * The reference meaning of a topic pattern, written straight from the rules and sharing no code
 * with `topic-pattern.ts`: no regular expression, no dynamic programme, no trie.
 */

/**
 * True when `topic` matches `pattern`, by brute force over the segments: a literal segment must
 * equal the topic's next segment, `*` takes exactly one segment, `#` tries every number of
 * segments (zero included) and succeeds when any choice matches the rest.
 *
 * Inputs are taken as valid (generate them with `topicArb` / `topicPatternArb`, or check them
 * with `validateTopic` / `validatePattern` first). The work grows exponentially with the
 * number of `#` segments: meant for the short patterns of property tests, not production.
 */
export function naiveTopicMatch(pattern: string, topic: string): boolean {
  return matchFrom(pattern.split("."), 0, topic.split("."), 0);
}

function matchFrom(p: readonly string[], i: number, t: readonly string[], j: number): boolean {
  if (i === p.length) return j === t.length;
  const seg = p[i] as string;
  if (seg === "#") {
    for (let k = j; k <= t.length; k++) if (matchFrom(p, i + 1, t, k)) return true;
    return false;
  }
  if (j === t.length) return false;
  if (seg !== "*" && seg !== t[j]) return false;
  return matchFrom(p, i + 1, t, j + 1);
}
