/**
 * Next-hop routes over a cluster's peer-link overlay: which direct neighbour to hand a message
 * to so that it reaches a node this node has no link to. Pure and deterministic: the same graph
 * gives the same table whatever the order of the map and of its lists.
 */

/** Where to send a message for one target. */
export interface NextHop {
  /** The direct neighbour of self to hand the message to (the target itself when linked). */
  next: string;
  /** Links on the path, 1 for a direct neighbour. */
  hops: number;
}

export interface NextHopOptions {
  /** Longest path (in links) kept; farther targets are absent from the table. Default: no limit. */
  maxHops?: number;
}

/**
 * Shortest-path next hops from `self`, by breadth-first search over the link graph.
 *
 * - `adjacency.get(self)` is self's own set of open links: taken as the truth, as is.
 * - Any other edge u–v is used only when BOTH u lists v and v lists u. A link is bidirectional;
 *   a one-sided claim is a stale or not-yet-confirmed announcement (one side saw it close, or
 *   the other side's announcement has not arrived), and routing over it would lose messages.
 * - Among equally short paths, the lowest next-hop id (string order) wins, so the choice does
 *   not depend on map or list order.
 * - Self and targets without a path (or farther than `maxHops`) are absent from the result.
 *
 * Cost O(V + E) over the ids in `adjacency`; the caller bounds the map (the cluster keeps one
 * entry per live member).
 */
export function computeNextHops(
  self: string,
  adjacency: ReadonlyMap<string, readonly string[]>,
  opts: NextHopOptions = {},
): Map<string, NextHop> {
  const maxHops = opts.maxHops ?? Number.POSITIVE_INFINITY;
  const out = new Map<string, NextHop>();
  if (!(maxHops >= 1)) return out;
  // Claimed neighbours of every node, as sets for the mutual check.
  const claims = new Map<string, Set<string>>();
  for (const [id, list] of adjacency) claims.set(id, new Set(list));
  const visited = new Set<string>([self]);
  // Level 1: self's own links, without confirmation.
  let frontier = new Map<string, string>();
  for (const n of claims.get(self) ?? []) {
    if (n === self || frontier.has(n)) continue;
    frontier.set(n, n);
  }
  let hops = 1;
  while (frontier.size > 0) {
    for (const [id, next] of frontier) {
      visited.add(id);
      out.set(id, { next, hops });
    }
    if (hops >= maxHops) break;
    // Next level: each newly reached node takes the lowest next hop among its predecessors.
    const level = new Map<string, string>();
    for (const [u, next] of frontier) {
      for (const v of claims.get(u) ?? []) {
        if (visited.has(v) || !claims.get(v)?.has(u)) continue;
        const cur = level.get(v);
        if (cur === undefined || next < cur) level.set(v, next);
      }
    }
    frontier = level;
    hops++;
  }
  return out;
}
