/**
 * Cluster graphs for federation tests: a fast-check arbitrary of connected random graphs with
 * link costs, the same from a seeded generator (for simulations and benchmarks), and shortest
 * distances as a reference.
 */
import { MpregError } from "@mpreg/envelope";
import fc from "fast-check";
import { MAX_METRIC } from "../route-update.js";

/** An undirected link between two clusters with its cost (an integer >= 0). */
export interface ClusterLink {
  readonly a: string;
  readonly b: string;
  readonly cost: number;
}

/** A federation's topology: cluster ids and at most one link per pair of them. */
export interface ClusterGraph {
  readonly clusters: readonly string[];
  readonly links: readonly ClusterLink[];
}

/** Options of {@link clusterGraphArb}. */
export interface ClusterGraphArbOptions {
  /** Fewest clusters. Default 2. */
  minClusters?: number;
  /** Most clusters. Default 7 (brute-force route enumeration stays cheap). */
  maxClusters?: number;
  /** Lowest link cost. Default 0 (zero-cost links make ties, which test the tie-breaks). */
  minCost?: number;
  /** Highest link cost. Default 3. */
  maxCost?: number;
  /** Most links beyond the spanning tree (duplicates and self-links are dropped). Default: the cluster count. */
  maxExtraLinks?: number;
  /**
   * False: no spanning tree, only the random links (the graph may fall apart, to test
   * unreachable clusters). Default true.
   */
  connected?: boolean;
}

/** Options of {@link randomClusterGraph}. */
export interface RandomClusterGraphOptions {
  /** Average links per cluster to aim for (a spanning tree, then random extra links). Default 3. */
  avgDegree?: number;
  /** Lowest link cost. Default 1. */
  minCost?: number;
  /** Highest link cost. Default 1. */
  maxCost?: number;
}

/**
 * The randomness {@link randomClusterGraph} needs: `int(n)` an integer in [0, n). The testkit's
 * `SeededRandom` fits.
 */
export interface RandomSource {
  int(n: number): number;
}

/** Cluster ids `c000`, `c001`, … (zero-padded to at least three digits, so they sort by number). */
export function clusterIds(n: number, prefix = "c"): string[] {
  if (!Number.isInteger(n) || n < 0) throw MpregError.invalid("n must be an integer >= 0", "n");
  const width = Math.max(3, String(Math.max(0, n - 1)).length);
  return Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(width, "0")}`);
}

function intOpt(v: number | undefined, dflt: number, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const x = v ?? dflt;
  if (!Number.isSafeInteger(x) || x < min || x > max) throw MpregError.invalid(`${name} must be an integer in ${min}..${max}`, name);
  return x;
}

/** Collects links, normalised (`a < b`), without self-links or a second link per pair. */
class LinkSet {
  readonly links: ClusterLink[] = [];
  private readonly keys = new Set<string>();
  add(x: string, y: string, cost: number): void {
    if (x === y) return;
    const [a, b] = x < y ? [x, y] : [y, x];
    const k = JSON.stringify([a, b]);
    if (this.keys.has(k)) return;
    this.keys.add(k);
    this.links.push({ a, b, cost });
  }
  get size(): number {
    return this.links.length;
  }
}

/**
 * A connected random graph of `minClusters..maxClusters` clusters (ids from {@link clusterIds})
 * with random integer link costs: a random spanning tree (each cluster, in a random order,
 * links to a random earlier one) plus random extra links (only those with `connected: false`).
 * Shrinks toward fewer clusters and fewer extra links.
 */
export function clusterGraphArb(opts: ClusterGraphArbOptions = {}): fc.Arbitrary<ClusterGraph> {
  const minClusters = intOpt(opts.minClusters, 2, "minClusters", 1, 10_000);
  const maxClusters = intOpt(opts.maxClusters, Math.max(7, minClusters), "maxClusters", minClusters, 10_000);
  const minCost = intOpt(opts.minCost, 0, "minCost", 0, MAX_METRIC);
  const maxCost = intOpt(opts.maxCost, Math.max(3, minCost), "maxCost", minCost, MAX_METRIC);
  if (opts.maxExtraLinks !== undefined) intOpt(opts.maxExtraLinks, 0, "maxExtraLinks", 0);
  const cost = fc.integer({ min: minCost, max: maxCost });
  return fc.integer({ min: minClusters, max: maxClusters }).chain((n) => {
    const ids = clusterIds(n);
    return fc
      .record({
        order: fc.shuffledSubarray(ids, { minLength: n, maxLength: n }),
        parents: fc.array(fc.nat(), { minLength: n - 1, maxLength: n - 1 }),
        treeCosts: fc.array(cost, { minLength: n - 1, maxLength: n - 1 }),
        extra: fc.array(fc.tuple(fc.nat({ max: n - 1 }), fc.nat({ max: n - 1 }), cost), { maxLength: opts.maxExtraLinks ?? n }),
      })
      .map(({ order, parents, treeCosts, extra }): ClusterGraph => {
        const set = new LinkSet();
        if (opts.connected !== false) for (let i = 1; i < n; i++) set.add(order[i] as string, order[(parents[i - 1] as number) % i] as string, treeCosts[i - 1] as number);
        for (const [x, y, c] of extra) set.add(ids[x] as string, ids[y] as string, c);
        return { clusters: ids, links: set.links };
      });
  });
}

/**
 * A connected random graph over `clusters` from a seeded generator: a random spanning tree
 * (clusters shuffled, each linked to a random earlier one), then random extra links until the
 * average degree reaches `avgDegree`. Same generator state, same graph.
 */
export function randomClusterGraph(clusters: readonly string[], random: RandomSource, opts: RandomClusterGraphOptions = {}): ClusterGraph {
  const avgDegree = opts.avgDegree ?? 3;
  if (typeof avgDegree !== "number" || !(avgDegree >= 0)) throw MpregError.invalid("avgDegree must be a number >= 0", "avgDegree");
  const minCost = intOpt(opts.minCost, 1, "minCost", 0, MAX_METRIC);
  const maxCost = intOpt(opts.maxCost, minCost, "maxCost", minCost, MAX_METRIC);
  // Equal bounds draw nothing, so unit-cost graphs keep the generator's sequence short.
  const cost = (): number => (minCost === maxCost ? minCost : minCost + random.int(maxCost - minCost + 1));
  const pick = (): string => clusters[random.int(clusters.length)] as string;
  const order = clusters.slice();
  for (let i = order.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [order[i], order[j]] = [order[j] as string, order[i] as string];
  }
  const set = new LinkSet();
  for (let i = 1; i < order.length; i++) set.add(order[i] as string, order[random.int(i)] as string, cost());
  const target = Math.floor((avgDegree * clusters.length) / 2);
  for (let tries = 0; set.size < target && tries < target * 20; tries++) set.add(pick(), pick(), cost());
  return { clusters: clusters.slice(), links: set.links };
}

/**
 * Checks that a graph is well formed: unique cluster ids, links between known distinct
 * clusters, at most one link per pair, integer costs in 0..MAX_METRIC. Returns the adjacency
 * (cluster → neighbour → cost).
 * @throws {MpregError} 1002 naming the bad element.
 */
export function graphAdjacency(graph: ClusterGraph): Map<string, Map<string, number>> {
  const adj = new Map<string, Map<string, number>>();
  graph.clusters.forEach((c, i) => {
    if (typeof c !== "string" || c.length === 0) throw MpregError.invalid(`clusters[${i}] must be a non-empty string`, `clusters[${i}]`);
    if (adj.has(c)) throw MpregError.invalid(`clusters[${i}] (${c}) appears twice`, `clusters[${i}]`);
    adj.set(c, new Map());
  });
  graph.links.forEach((l, i) => {
    const p = `links[${i}]`;
    const ea = adj.get(l.a);
    const eb = adj.get(l.b);
    if (ea === undefined || eb === undefined || l.a === l.b) throw MpregError.invalid(`${p} must join two distinct listed clusters`, p);
    if (ea.has(l.b)) throw MpregError.invalid(`${p}: a second link between ${l.a} and ${l.b}`, p);
    if (!Number.isSafeInteger(l.cost) || l.cost < 0 || l.cost > MAX_METRIC) throw MpregError.invalid(`${p}.cost must be an integer in 0..${MAX_METRIC}`, `${p}.cost`);
    ea.set(l.b, l.cost);
    eb.set(l.a, l.cost);
  });
  return adj;
}

/**
 * Shortest distances (sums of link costs) from `from` to every cluster it can reach (itself at
 * 0), by a plain O(V²) Dijkstra: the reference for route metrics in simulations too large for
 * {@link bruteForceBestRoutes}.
 */
export function shortestDistances(graph: ClusterGraph, from: string): Map<string, number> {
  const adj = graphAdjacency(graph);
  const dist = new Map<string, number>();
  if (!adj.has(from)) return dist;
  dist.set(from, 0);
  const done = new Set<string>();
  for (;;) {
    let u: string | undefined;
    for (const [id, d] of dist) if (!done.has(id) && (u === undefined || d < (dist.get(u) as number))) u = id;
    if (u === undefined) break;
    done.add(u);
    const du = dist.get(u) as number;
    for (const [v, c] of adj.get(u) as Map<string, number>) if (du + c < (dist.get(v) ?? Infinity)) dist.set(v, du + c);
  }
  return dist;
}
