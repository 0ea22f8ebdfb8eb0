/**
 * Choosing the endpoint that runs one RPC command (PROTOCOL "Routing of each command").
 * Pure: the load table and the random source are injected.
 *
 * 1. Candidates are the catalog's endpoints for the command (`Catalog.queryFunctions` with the
 *    function name, function_id, version constraint and resources). Here they are narrowed again
 *    by `targetCluster`, `exclude` and, when given, `versionConstraint` (cheap, and it keeps this
 *    function correct on any candidate list).
 * 2. Each node is ranked by tier: this node (0), another node of this cluster (1), a node of
 *    another cluster (2, only with `allowOtherClusters`). The best tier present wins.
 * 3. Within it, the node with the lowest load (in-flight requests) wins; a node whose load is
 *    unknown ranks after every known load.
 * 4. Nodes still equal are ordered by node_id and one is drawn with `random()`, so equal nodes
 *    share the work and the choice is reproducible for a seeded source.
 * 5. On the chosen node, its highest version wins (ties between function_ids: the smallest id).
 */
import type { Constraint, FunctionEntry, Version } from "@mpreg/catalog";
import { compareVersions, functionVersion, parseConstraint, satisfies } from "@mpreg/catalog";

/** Where the chosen node sits relative to the ingress node. */
export type SelectionTier = "self" | "cluster" | "remote";

/** Inputs of `selectEndpoint` besides the candidates. */
export interface SelectContext {
  /** The ingress node. */
  readonly selfNodeId: string;
  readonly selfClusterId: string;
  /** In-flight requests of a node; undefined when unknown (ranks after every known load). */
  readonly load: (nodeId: string) => number | undefined;
  /** Uniform in [0, 1), e.g. `Math.random` or a seeded generator's `next`. */
  readonly random: () => number;
  /** Whether nodes of other clusters may be chosen (federation). Default true. */
  readonly allowOtherClusters?: boolean;
  /** The command's `target_cluster`: only that cluster's endpoints. */
  readonly targetCluster?: string;
  /** The command's constraint (text or parsed); the chosen version must satisfy it. */
  readonly versionConstraint?: string | Constraint;
  /** Nodes not to choose (e.g. known to be down or draining). */
  readonly exclude?: ReadonlySet<string>;
}

/** The outcome of `selectEndpoint`. */
export interface Selection {
  /** The chosen endpoint: the highest satisfying version on the chosen node. */
  readonly endpoint: FunctionEntry;
  readonly nodeId: string;
  readonly clusterId: string;
  readonly tier: SelectionTier;
  /** The load used for the decision (Infinity when unknown). */
  readonly load: number;
  /** How many nodes were equally good (1 when there was no tie). */
  readonly tiedWith: number;
}

function tierOf(e: FunctionEntry, ctx: SelectContext): 0 | 1 | 2 {
  if (e.node_id === ctx.selfNodeId) return 0;
  return e.cluster_id === ctx.selfClusterId ? 1 : 2;
}

const TIERS: readonly SelectionTier[] = ["self", "cluster", "remote"];

function loadOf(ctx: SelectContext, nodeId: string): number {
  const l = ctx.load(nodeId);
  return typeof l === "number" && !Number.isNaN(l) ? Math.max(0, l) : Infinity;
}

function better(a: FunctionEntry, av: Version, b: FunctionEntry, bv: Version): boolean {
  const d = compareVersions(av, bv);
  if (d !== 0) return d > 0;
  return a.function_id < b.function_id;
}

/**
 * Chooses the endpoint for one command, or null when no candidate qualifies (the caller answers
 * 1001). A malformed `versionConstraint` text throws MpregError 1002.
 */
export function selectEndpoint(candidates: Iterable<FunctionEntry>, ctx: SelectContext): Selection | null {
  const constraint =
    ctx.versionConstraint === undefined
      ? undefined
      : typeof ctx.versionConstraint === "string"
        ? parseConstraint(ctx.versionConstraint, "version_constraint")
        : ctx.versionConstraint;
  const allowOther = ctx.allowOtherClusters ?? true;

  // Best endpoint per node, and the best tier seen.
  const perNode = new Map<string, { e: FunctionEntry; v: Version; tier: 0 | 1 | 2 }>();
  let bestTier = 3;
  for (const e of candidates) {
    if (ctx.targetCluster !== undefined && e.cluster_id !== ctx.targetCluster) continue;
    if (ctx.exclude?.has(e.node_id) === true) continue;
    const tier = tierOf(e, ctx);
    if (tier === 2 && !allowOther) continue;
    const v = functionVersion(e);
    if (constraint !== undefined && !satisfies(v, constraint)) continue;
    const cur = perNode.get(e.node_id);
    if (cur === undefined || better(e, v, cur.e, cur.v)) perNode.set(e.node_id, { e, v, tier });
    if (tier < bestTier) bestTier = tier;
  }
  if (perNode.size === 0) return null;

  let bestLoad = Infinity;
  let tied: string[] = [];
  for (const [nodeId, c] of perNode) {
    if (c.tier !== bestTier) continue;
    const l = loadOf(ctx, nodeId);
    if (tied.length === 0 || l < bestLoad) {
      bestLoad = l;
      tied = [nodeId];
    } else if (l === bestLoad) {
      tied.push(nodeId);
    }
  }
  // Sorted so the draw depends only on the set of equal nodes, not on candidate order.
  tied.sort();
  let i = 0;
  if (tied.length > 1) {
    const r = ctx.random();
    i = Number.isFinite(r) ? Math.min(tied.length - 1, Math.max(0, Math.floor(r * tied.length))) : 0;
  }
  const nodeId = tied[i] as string;
  const chosen = perNode.get(nodeId) as { e: FunctionEntry; tier: 0 | 1 | 2 };
  return {
    endpoint: chosen.e,
    nodeId,
    clusterId: chosen.e.cluster_id,
    tier: TIERS[chosen.tier] as SelectionTier,
    load: bestLoad,
    tiedWith: tied.length,
  };
}
