/** Locators: where each command of a request runs. */
import { ErrorCode, MpregError, didYouMean } from "@mpreg/envelope";
import { parseConstraint, type Constraint, type FunctionEntry, type FunctionQuery } from "@mpreg/catalog";
import { selectEndpoint, type PlanCommand } from "@mpreg/router";
import type { Location, Locator } from "./executor.js";
import type { FunctionRegistry } from "./registry.js";

/** Options of {@link createLocalLocator}. */
export interface LocalLocatorOptions {
  /** Resources of the node, added to every function's own resources when matching `locs`. */
  nodeResources?: readonly string[];
  /** This node's cluster: a command with another `target_cluster` has no candidate (1001). */
  clusterId?: string;
}

/**
 * A locator for a single node: every command runs locally on the highest registered version
 * that matches its function_id, version constraint and `locs`; otherwise 1001
 * (`{command, fun, reason}`). A malformed version constraint is 1002.
 */
export function createLocalLocator<Ctx>(registry: FunctionRegistry<Ctx>, options: LocalLocatorOptions = {}): Locator<Ctx> {
  const nodeResources = new Set(options.nodeResources ?? []);
  return (cmd: PlanCommand): Location<Ctx> => {
    const notFound = (reason: string) =>
      new MpregError(ErrorCode.NOT_FOUND, reason, { command: cmd.name, fun: cmd.fun, reason });
    if (cmd.target_cluster !== undefined && cmd.target_cluster !== null && cmd.target_cluster !== options.clusterId) {
      throw notFound(`no endpoint of ${cmd.fun} in cluster ${cmd.target_cluster}`);
    }
    // Node resources satisfy part of `locs`; the function must offer the rest.
    const locs = cmd.locs?.filter((r) => !nodeResources.has(r));
    const fn = registry.find(cmd.fun, {
      function_id: cmd.function_id ?? undefined,
      version_constraint: cmd.version_constraint ?? undefined,
      resources: locs,
    });
    if (fn === null) {
      throw notFound(
        registry.has(cmd.fun)
          ? `no version of ${cmd.fun} matches the function_id, version constraint and resources`
          : unknownFunction(cmd.fun, registry.list().map((f) => f.name), options.clusterId),
      );
    }
    return { kind: "local", fn };
  };
}

/** Options of {@link createCatalogLocator}. */
export interface CatalogLocatorOptions<Ctx> {
  /** The routing catalog (only `queryFunctions` is used). */
  catalog: { queryFunctions(q: FunctionQuery): FunctionEntry[] };
  /** This node's registry: commands routed to this node run from it. */
  registry: FunctionRegistry<Ctx>;
  selfNodeId: string;
  selfClusterId: string;
  /** In-flight requests of a node; undefined when unknown. */
  load: (nodeId: string) => number | undefined;
  /** Uniform in [0, 1): breaks ties between equally good nodes. */
  random: () => number;
  /** Whether other clusters may run commands (federation). Default true. */
  allowOtherClusters?: boolean;
  /** Resources of this node (counted toward `locs` for local functions, as in the catalog). */
  nodeResources?: readonly string[];
  /** Current time for the catalog's expiry filter. Default: no filter. */
  now?: () => number;
  /** Nodes not to choose (e.g. suspected down), consulted per command. */
  exclude?: () => ReadonlySet<string> | undefined;
  /**
   * A number that changes whenever the catalog does (e.g. counted from the port's
   * `onCatalogChange`). Given, a plain command whose only candidate is another node is
   * remembered while this number, the registry, and the set `exclude` returns (by identity) are
   * unchanged, for at most {@link REMOTE_MEMO_MS}.
   */
  catalogGeneration?: () => number;
}

/** Longest a remembered remote location is used without looking again. */
export const REMOTE_MEMO_MS = 1000;

interface RemoteMemo<Ctx> {
  loc: Location<Ctx>;
  excluded: ReadonlySet<string> | undefined;
  until: number;
}

/**
 * The cluster locator: candidates from the catalog (function name, function_id, version
 * constraint, `locs` ⊆ resources, `target_cluster`), then `selectEndpoint` from the router
 * (this node first, then its cluster, then other clusters; lower load; random among equals).
 * When this node wins, the command runs from the local registry (highest satisfying version);
 * if the registry disagrees with a stale catalog, the choice is made again without this node.
 * No candidate: 1001 `{command, fun, reason}`; malformed constraint: 1002.
 *
 * A plain command (no function_id, constraint, `locs` or target cluster) that this node can
 * run always runs here (this node ranks first), so that decision is remembered while the
 * registry is unchanged and this node is not excluded.
 */
export function createCatalogLocator<Ctx>(options: CatalogLocatorOptions<Ctx>): Locator<Ctx> {
  const nodeResources = new Set(options.nodeResources ?? []);
  const self = options.selfNodeId;
  // "Runs here" decisions of plain commands, by function name. A plain command has no filter
  // the catalog could fail for this node, and selection puts this node before every other,
  // so only a registry change (the function gone here) or this node being excluded can change
  // the answer. The full lookup was ~10% of a trivial request's CPU and ~30% of its
  // allocations. Remote decisions are never remembered (they spread load and draw ties at
  // random). Bounded by the number of registered function names: cleared on every registry
  // change.
  const memo = new Map<string, Location<Ctx>>();
  let memoGeneration = -1;
  // Remote decisions of plain commands with a single candidate (no load to balance, no tie to
  // draw): the catalog query and selection were ~17% of a remote call's allocations on the
  // ingress. Bounded by the catalog's function names; cleared on every catalog or registry change.
  const catalogGeneration = options.catalogGeneration;
  const remoteMemo = new Map<string, RemoteMemo<Ctx>>();
  let remoteCatalogGen = -1;
  let remoteRegistryGen = -1;
  return (cmd: PlanCommand): Location<Ctx> => {
    const plain =
      cmd.function_id == null &&
      cmd.version_constraint == null &&
      cmd.target_cluster == null &&
      (cmd.locs == null || cmd.locs.length === 0);
    if (plain) {
      if (memoGeneration !== options.registry.generation) {
        memo.clear();
        memoGeneration = options.registry.generation;
      } else {
        const hit = memo.get(cmd.fun);
        if (hit !== undefined && options.exclude?.()?.has(self) !== true) return hit;
      }
      if (catalogGeneration !== undefined) {
        const gen = catalogGeneration();
        if (gen !== remoteCatalogGen || memoGeneration !== remoteRegistryGen) {
          remoteMemo.clear();
          remoteCatalogGen = gen;
          remoteRegistryGen = memoGeneration;
        } else {
          const m = remoteMemo.get(cmd.fun);
          if (m !== undefined) {
            if (m.excluded === options.exclude?.() && m.until > Date.now()) return m.loc;
            remoteMemo.delete(cmd.fun);
          }
        }
      }
    }
    const constraint: Constraint | undefined =
      cmd.version_constraint === undefined || cmd.version_constraint === null
        ? undefined
        : parseConstraint(cmd.version_constraint, "version_constraint");
    const targetCluster = cmd.target_cluster ?? undefined;
    const query: FunctionQuery = {
      name: cmd.fun,
      ...(cmd.function_id == null ? {} : { function_id: cmd.function_id }),
      ...(constraint === undefined ? {} : { version_constraint: constraint }),
      ...(cmd.locs == null || cmd.locs.length === 0 ? {} : { resources: cmd.locs }),
      ...(targetCluster === undefined ? {} : { cluster_id: targetCluster }),
      ...(options.now === undefined ? {} : { now: options.now() }),
    };
    const candidates = options.catalog.queryFunctions(query);
    const excluded = options.exclude?.();
    const select = (exclude: ReadonlySet<string> | undefined) =>
      selectEndpoint(candidates, {
        selfNodeId: self,
        selfClusterId: options.selfClusterId,
        load: options.load,
        random: options.random,
        ...(options.allowOtherClusters === undefined ? {} : { allowOtherClusters: options.allowOtherClusters }),
        ...(targetCluster === undefined ? {} : { targetCluster }),
        ...(constraint === undefined ? {} : { versionConstraint: constraint }),
        ...(exclude === undefined ? {} : { exclude }),
      });
    let sel = select(excluded);
    if (sel !== null && sel.nodeId === self) {
      const fn = options.registry.find(cmd.fun, {
        function_id: cmd.function_id ?? undefined,
        version_constraint: constraint,
        resources: cmd.locs?.filter((r) => !nodeResources.has(r)),
      });
      if (fn !== null) {
        const loc: Location<Ctx> = { kind: "local", fn };
        if (plain) memo.set(cmd.fun, loc);
        return loc;
      }
      sel = select(new Set([...(excluded ?? []), self]));
    }
    if (sel === null) {
      const now = options.now === undefined ? {} : { now: options.now() };
      const inScope = { ...(targetCluster === undefined ? {} : { cluster_id: targetCluster }), ...now };
      const reason =
        candidates.length > 0
          ? `no reachable endpoint of ${cmd.fun}`
          : options.catalog.queryFunctions({ name: cmd.fun, ...inScope }).length === 0
            ? unknownFunction(cmd.fun, options.catalog.queryFunctions(inScope).map((f) => f.name), targetCluster ?? options.selfClusterId)
            : `no endpoint of ${cmd.fun} matches the function_id, version constraint, resources and cluster`;
      throw new MpregError(ErrorCode.NOT_FOUND, reason, { command: cmd.name, fun: cmd.fun, reason });
    }
    const loc: Location<Ctx> = { kind: "remote", node_id: sel.nodeId, cluster_id: sel.clusterId };
    if (plain && catalogGeneration !== undefined && candidates.length === 1) remoteMemo.set(cmd.fun, { loc, excluded, until: Date.now() + REMOTE_MEMO_MS });
    return loc;
  };
}

/**
 * The words for a function name nobody serves: "no function `ech` in cluster `default`; did
 * you mean `echo`?" (computed on the error path only).
 */
function unknownFunction(fun: string, known: Iterable<string>, clusterId: string | undefined): string {
  const where = clusterId === undefined ? "on this node" : `in cluster \`${clusterId}\``;
  const close = didYouMean(fun, new Set(known));
  return `no function \`${fun}\` ${where}${close === undefined ? "" : `; did you mean \`${close}\`?`}`;
}
