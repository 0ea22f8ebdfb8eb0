/**
 * "Did you mean" suggestions for names a person typed (functions, flags, config keys,
 * environment variables, commands): the one helper every layer uses, so they suggest alike.
 */

/** Longest input compared; longer strings are never "close" to anything (bounds the work). */
const MAX_LENGTH = 256;

/**
 * Edit distance with adjacent transpositions (optimal string alignment): insertions,
 * deletions, substitutions and swaps of two neighbouring characters each cost 1, so the
 * typical typo `prot` is one edit from `port`.
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  // Three rolling rows: the one before the previous is needed for transpositions.
  let before = new Array<number>(b.length + 1).fill(0);
  let prev = new Array<number>(b.length + 1);
  let cur = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a.charCodeAt(i - 1) === b.charCodeAt(j - 2) && a.charCodeAt(i - 2) === b.charCodeAt(j - 1)) {
        d = Math.min(d, before[j - 2]! + 1);
      }
      cur[j] = d;
    }
    [before, prev, cur] = [prev, cur, before];
  }
  return prev[b.length]!;
}

/**
 * The candidate closest to `input`, or undefined when none is close enough. Close enough: at
 * most a third of the longer string's length in edits (at least 1, at most 3), compared
 * case-insensitively; a candidate that merely differs in case always qualifies. Ties go to the
 * first candidate in order, so the answer is deterministic.
 *
 * @example didYouMean("ech", ["echo", "echos"]) // "echo"
 */
export function didYouMean(input: string, candidates: Iterable<string>): string | undefined {
  if (input.length > MAX_LENGTH) return undefined;
  const needle = input.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    if (candidate === input || candidate.length > MAX_LENGTH) continue;
    const d = editDistance(needle, candidate.toLowerCase());
    const limit = Math.min(3, Math.max(1, Math.floor(Math.max(needle.length, candidate.length) / 3)));
    if (d <= limit && d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}
