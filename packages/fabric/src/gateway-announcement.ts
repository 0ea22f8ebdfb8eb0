/**
 * What a gateway (a node with federation links) tells the other nodes of its cluster, as one
 * gossip item `fed/<node id>`: the routes to other clusters it holds and those clusters'
 * exported catalog entries as it received them. Nodes without a federation link route
 * cross-cluster traffic to the gateway with the best route and serve other clusters' entries
 * to their services from it. The item comes from gossip, so it is validated like wire input.
 */
import { normalizeEntry, type CatalogEntry } from "@mpreg/catalog";
import { MpregError } from "@mpreg/envelope";
import { MAX_METRIC, isClusterId, serviceFilter, type Offers } from "@mpreg/router";

/** Gossip key prefix of gateway announcements (`fed/<node id>`). */
export const GATEWAY_KEY_PREFIX = "fed/";

/**
 * Catalog entry kinds that cross cluster boundaries (nodes stay in their cluster; cache entries
 * cross only for namespaces that federate, see {@link isExportedEntry}).
 */
export const EXPORTED_KINDS: ReadonlySet<CatalogEntry["kind"]> = new Set(["function", "queue", "topic", "cache"]);

/** The `scope` of the cache entry a node announces for a namespace replicated across clusters. */
export const FEDERATED_CACHE_SCOPE = "federated";

/**
 * Whether a catalog entry crosses to other clusters: functions, queues and topic subscriptions,
 * and cache entries whose scope is `federated` (a namespace configured with `federate: true`).
 */
export function isExportedEntry(e: CatalogEntry): boolean {
  return e.kind === "cache" ? e.scope === FEDERATED_CACHE_SCOPE : EXPORTED_KINDS.has(e.kind);
}

/** One route of a gateway, as its table holds it (path from this cluster to the destination). */
export interface GatewayRoute {
  destination: string;
  path: string[];
  metric: number;
  /** What the route lets through; absent: everything. */
  offers?: Offers;
}

/** The exported entries of one other cluster. */
export interface ClusterCatalog {
  cluster_id: string;
  entries: CatalogEntry[];
}

/** The data of a `fed/<node id>` gossip item. */
export interface GatewayAnnouncement {
  v: 1;
  routes: GatewayRoute[];
  catalogs: ClusterCatalog[];
}

/** Bounds of what a gateway announcement (or a catalog export between clusters) may hold. */
export interface GatewayLimits {
  /** Most routes (destinations). */
  maxRoutes: number;
  /** Most clusters' catalogs. */
  maxClusters: number;
  /** Most entries of one cluster. */
  maxEntries: number;
  /** Longest route path. */
  maxPathLength: number;
}

/** An announcement holding nothing (a node that lost its last federation link). */
export const EMPTY_GATEWAY: GatewayAnnouncement = Object.freeze({ v: 1, routes: [], catalogs: [] }) as GatewayAnnouncement;

function obj(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw MpregError.invalid(`${path} must be an object`, path);
  return v as Record<string, unknown>;
}

function list(v: unknown, path: string, max: number): unknown[] {
  if (!Array.isArray(v) || v.length > max) throw MpregError.invalid(`${path} must be an array of at most ${max} items`, path);
  return v;
}

/**
 * Checks the entries exported by cluster `clusterId`: at most `max`, each a valid entry of an
 * exported kind that belongs to that cluster. Returns them normalised.
 * @throws {MpregError} 1002 naming the offending path.
 */
export function validateClusterEntries(raw: unknown, clusterId: string, max: number, path: string): CatalogEntry[] {
  return list(raw, path, max).map((e, i) => {
    const entry = normalizeEntry(e, `${path}[${i}]`);
    if (!isExportedEntry(entry)) throw MpregError.invalid(`${path}[${i}].kind ${entry.kind} is not exported`, `${path}[${i}].kind`);
    if (entry.cluster_id !== clusterId) throw MpregError.invalid(`${path}[${i}].cluster_id is not ${clusterId}`, `${path}[${i}].cluster_id`);
    return entry;
  });
}

/**
 * Checks a gateway announcement of a node of cluster `localCluster` (every path starts there).
 * @throws {MpregError} 1002 naming the offending path.
 */
export function validateGatewayAnnouncement(raw: unknown, localCluster: string, limits: GatewayLimits): GatewayAnnouncement {
  const o = obj(raw, "gateway");
  if (o.v !== 1) throw MpregError.invalid("gateway.v must be 1", "gateway.v");
  const routes = list(o.routes, "gateway.routes", limits.maxRoutes).map((r, i): GatewayRoute => {
    const p = `gateway.routes[${i}]`;
    const x = obj(r, p);
    if (!isClusterId(x.destination) || x.destination === localCluster) throw MpregError.invalid(`${p}.destination must be another cluster's id`, `${p}.destination`);
    const path = list(x.path, `${p}.path`, limits.maxPathLength);
    if (path.length < 2 || path[0] !== localCluster || path[path.length - 1] !== x.destination || !path.every(isClusterId) || new Set(path).size !== path.length) {
      throw MpregError.invalid(`${p}.path must run from ${localCluster} to the destination without repeats`, `${p}.path`);
    }
    if (typeof x.metric !== "number" || !Number.isSafeInteger(x.metric) || x.metric < 0 || x.metric > MAX_METRIC) {
      throw MpregError.invalid(`${p}.metric must be an integer in 0..${MAX_METRIC}`, `${p}.metric`);
    }
    const route: GatewayRoute = { destination: x.destination, path: path as string[], metric: x.metric };
    if (x.offers !== undefined) {
      serviceFilter(x.offers, `${p}.offers`);
      route.offers = x.offers as Offers;
    }
    return route;
  });
  const catalogs = list(o.catalogs, "gateway.catalogs", limits.maxClusters).map((c, i): ClusterCatalog => {
    const p = `gateway.catalogs[${i}]`;
    const x = obj(c, p);
    if (!isClusterId(x.cluster_id) || x.cluster_id === localCluster) throw MpregError.invalid(`${p}.cluster_id must be another cluster's id`, `${p}.cluster_id`);
    return { cluster_id: x.cluster_id, entries: validateClusterEntries(x.entries, x.cluster_id, limits.maxEntries, `${p}.entries`) };
  });
  return { v: 1, routes, catalogs };
}
