/**
 * The reference best route: every simple path enumerated, the best kept by the documented
 * preference order ({@link compareRoutes}). What both routing modes must converge to on a
 * stable graph without policies.
 */
import { MpregError } from "@mpreg/envelope";
import { compareRoutes } from "../cluster-route.js";
import { graphAdjacency, type ClusterGraph } from "./cluster-graph.js";

/** A route as the reference computes it (a `ClusterRoute` without offers). */
export interface ReferenceRoute {
  readonly destination: string;
  /** `path[1]`: the neighbour to hand a message to. */
  readonly nextHop: string;
  /** From the source cluster (first) to the destination (last); no repeats. */
  readonly path: readonly string[];
  /** Sum of the link costs along the path. */
  readonly metric: number;
}

/** Options of {@link bruteForceBestRoutes}. */
export interface BruteForceOptions {
  /**
   * Clusters no path may cross after the source (as `routesTo(destination, avoid)`): a
   * destination in the set has no route either.
   */
  avoid?: ReadonlySet<string>;
  /**
   * Most paths enumerated before giving up with MpregError 1002 (the count grows factorially
   * with dense graphs). Default 1 000 000: graphs of about ten clusters.
   */
  maxPaths?: number;
}

/**
 * The best route from `from` to every other cluster it can reach, found by enumerating every
 * simple path (depth first) and keeping, per destination, the least under
 * {@link compareRoutes}: lower metric, then fewer hops, then smaller next hop, then the smaller
 * path id by id. The source itself is not in the map.
 * @throws {MpregError} 1002 for a malformed graph or when more than `maxPaths` paths exist.
 */
export function bruteForceBestRoutes(graph: ClusterGraph, from: string, opts: BruteForceOptions = {}): Map<string, ReferenceRoute> {
  const adj = graphAdjacency(graph);
  const avoid = opts.avoid ?? new Set<string>();
  const maxPaths = opts.maxPaths ?? 1_000_000;
  const best = new Map<string, ReferenceRoute>();
  if (!adj.has(from)) return best;
  let paths = 0;
  const path = [from];
  const onPath = new Set(path);
  const walk = (cost: number): void => {
    const last = path[path.length - 1] as string;
    if (path.length > 1) {
      if (++paths > maxPaths) throw MpregError.invalid(`more than ${maxPaths} simple paths: graph too large for brute force`, "maxPaths");
      const r: ReferenceRoute = { destination: last, nextHop: path[1] as string, path: path.slice(), metric: cost };
      const cur = best.get(last);
      if (cur === undefined || compareRoutes(r, cur) < 0) best.set(last, r);
    }
    for (const [n, c] of adj.get(last) as Map<string, number>) {
      if (onPath.has(n) || avoid.has(n)) continue;
      path.push(n);
      onPath.add(n);
      walk(cost + c);
      path.pop();
      onPath.delete(n);
    }
  };
  walk(0);
  return best;
}

/** The best route from `from` to `to` ({@link bruteForceBestRoutes}); undefined when none. */
export function bruteForceBestRoute(graph: ClusterGraph, from: string, to: string, opts: BruteForceOptions = {}): ReferenceRoute | undefined {
  return bruteForceBestRoutes(graph, from, opts).get(to);
}
