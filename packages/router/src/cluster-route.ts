/**
 * A route to a cluster as both routing modes (path-vector {@link RouteTable}, link-state
 * {@link ClusterLinkState}) report it, the one order in which routes are preferred, and the
 * interface the forwarding decision ({@link nextClusterHop}) reads.
 */
import { sameServiceFilter, type ServiceFilter } from "./service-filter.js";

/** A usable route from the local cluster to `destination`. */
export interface ClusterRoute {
  readonly destination: string;
  /** The neighbour cluster to hand a message to; the local cluster for the local route. */
  readonly nextHop: string;
  /** Clusters from the local one (first) to the destination (last); no repeats. */
  readonly path: readonly string[];
  /** Total cost (link costs and policy additions); lower is better. */
  readonly metric: number;
  /** The services the route offers after every policy on its path. */
  readonly offers: ServiceFilter;
}

/** Where routes come from: a route table or a link-state database. */
export interface ClusterRouteSource {
  /**
   * The usable routes to `destination`, best first ({@link compareRoutes}). With `avoid`, only
   * routes whose path after the local cluster holds none of those clusters.
   */
  routesTo(destination: string, avoid?: ReadonlySet<string>): ClusterRoute[];
}

/** A change of the best route to a destination (undefined: none). */
export interface BestRouteChange {
  destination: string;
  previous: ClusterRoute | undefined;
  current: ClusterRoute | undefined;
}

/** The attributes of a route that {@link compareRoutes} reads. */
export type RouteOrderKey = Pick<ClusterRoute, "metric" | "path" | "nextHop">;

/**
 * The preference order of routes, a total order: lower `metric`, then fewer hops (shorter
 * path), then the smaller next-hop cluster id, then the smaller path compared id by id. Ids
 * compare by UTF-16 code units (JavaScript `<`), so every node orders them the same way.
 */
export function compareRoutes(a: RouteOrderKey, b: RouteOrderKey): number {
  if (a.metric !== b.metric) return a.metric - b.metric;
  if (a.path.length !== b.path.length) return a.path.length - b.path.length;
  if (a.nextHop !== b.nextHop) return a.nextHop < b.nextHop ? -1 : 1;
  for (let i = 0; i < a.path.length; i++) {
    const x = a.path[i] as string;
    const y = b.path[i] as string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** True when two routes are the same in every attribute. */
export function sameRoute(a: ClusterRoute | undefined, b: ClusterRoute | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  return (
    a.destination === b.destination &&
    a.metric === b.metric &&
    a.nextHop === b.nextHop &&
    a.path.length === b.path.length &&
    a.path.every((c, i) => c === b.path[i]) &&
    sameServiceFilter(a.offers, b.offers)
  );
}

/** True when the path after the local cluster (index 0) holds a cluster of `avoid`. */
export function pathTouches(route: ClusterRoute, avoid: ReadonlySet<string>): boolean {
  for (let i = 1; i < route.path.length; i++) if (avoid.has(route.path[i] as string)) return true;
  return false;
}
