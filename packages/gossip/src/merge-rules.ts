import type { MemberStatus, MemberUpdate } from "./types.js";

const RANK: Record<MemberStatus, number> = { alive: 0, suspect: 1, dead: 2, left: 3 };

/**
 * SWIM precedence as a total order on (incarnation, status rank): a higher incarnation always
 * wins (that is how a live member refutes suspicion or death), and at equal incarnation
 * suspect beats alive, dead beats suspect and left beats dead. Because this is a max over a
 * total order, merging facts is commutative, associative and idempotent: every member that
 * hears the same facts in any order ends with the same view.
 * Returns > 0 when `a` supersedes `b`, 0 when equivalent, < 0 otherwise.
 */
export function compareUpdates(a: Pick<MemberUpdate, "inc" | "status">, b: Pick<MemberUpdate, "inc" | "status">): number {
  if (a.inc !== b.inc) return a.inc > b.inc ? 1 : -1;
  return RANK[a.status] - RANK[b.status];
}

/** True when `incoming` should replace `current` (strictly newer by {@link compareUpdates}). */
export function supersedes(incoming: Pick<MemberUpdate, "inc" | "status">, current: Pick<MemberUpdate, "inc" | "status"> | undefined): boolean {
  return current === undefined || compareUpdates(incoming, current) > 0;
}

/** Merges a batch of facts into a map (pure helper used by property tests and state sync). */
export function mergeAll(into: Map<string, MemberUpdate>, updates: Iterable<MemberUpdate>): Map<string, MemberUpdate> {
  for (const u of updates) {
    if (supersedes(u, into.get(u.id))) into.set(u.id, u);
  }
  return into;
}
