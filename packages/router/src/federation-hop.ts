/**
 * The cluster-level forwarding decision for one UnifiedMessage: deliver in this cluster,
 * forward to a neighbour cluster, or drop with a reason. Pure. It uses the envelope's one hop
 * rule ({@link forwardStep}: `routing_path` loop check, `hops_remaining` countdown) and adds
 * only what needs routes: the cluster-level loop check and the choice of route.
 */
import { ErrorCode, MpregError, forwardStep, type UnifiedMessage } from "@mpreg/envelope";
import type { ClusterRoute, ClusterRouteSource } from "./cluster-route.js";
import { serviceAllows, type ServiceKind } from "./service-filter.js";

/**
 * Why a message is not forwarded:
 * - `loop`: this node already relayed it, or it left this cluster before and came back, or every
 *   route to the target passes a cluster it already visited;
 * - `hop_budget_exhausted`: `hops_remaining` ran out, or every loop-free route needs more
 *   relays than remain;
 * - `no_route`: no route to the target cluster;
 * - `denied`: routes exist, but the policies on each let the message's service name through
 *   none of them.
 */
export type FederationDropReason = "no_route" | "loop" | "hop_budget_exhausted" | "denied";

/** The decision of {@link nextClusterHop}. */
export type FederationHopDecision =
  /** The target cluster is this one (or none is set): handle it here; the message is unchanged. */
  | { action: "deliver"; message: UnifiedMessage }
  /** Send `message` (headers already advanced when relaying) to a node of `nextCluster`. */
  | { action: "forward"; nextCluster: string; route: ClusterRoute; message: UnifiedMessage }
  | { action: "drop"; reason: FederationDropReason };

/** Inputs of {@link nextClusterHop}. */
export interface FederationHopInput {
  message: UnifiedMessage;
  /** This node and its cluster. */
  self: { nodeId: string; clusterId: string };
  /** The route table (path-vector) or link-state database. */
  routes: ClusterRouteSource;
  /**
   * True when this node relays a message it received: the header rule is applied first. False
   * when it originates the message (the headers are as `createUnifiedMessage` made them).
   */
  relay: boolean;
  /** The service the message is for, when the route's policies must let it through. */
  service?: { kind: ServiceKind; name: string };
}

/**
 * Decides the next cluster hop of a message:
 * 1. no `target_cluster`, or this cluster: `deliver` (intra-cluster delivery is the caller's);
 * 2. when relaying, {@link forwardStep}: a node loop is `loop`, an exhausted budget
 *    `hop_budget_exhausted`;
 * 3. this cluster in `federation_path` before its last entry (it left and came back): `loop`;
 * 4. routes to the target, best first, narrowed step by step: no route at all is `no_route`;
 *    none avoiding the clusters in `federation_path` is `loop`; none needing at most
 *    `hops_remaining` more relays (a route of k cluster hops needs k-1: one per intermediate
 *    cluster) is `hop_budget_exhausted`; none whose offers let `service` through is `denied`;
 * 5. otherwise `forward` along the first route left.
 */
export function nextClusterHop(input: FederationHopInput): FederationHopDecision {
  const { self, routes, service } = input;
  let msg = input.message;
  const target = msg.headers.target_cluster;
  if (target === undefined || target === self.clusterId) return { action: "deliver", message: msg };
  if (input.relay) {
    const step = forwardStep(msg, self.nodeId, self.clusterId);
    if (step.action === "drop") return { action: "drop", reason: step.reason === "loop" ? "loop" : "hop_budget_exhausted" };
    msg = step.message;
  }
  const fed = msg.headers.federation_path;
  const at = fed.indexOf(self.clusterId);
  if (at !== -1 && at < fed.length - 1) return { action: "drop", reason: "loop" };
  const all = routes.routesTo(target);
  if (all.length === 0) return { action: "drop", reason: "no_route" };
  const visited = new Set(fed);
  visited.add(self.clusterId);
  const loopFree = routes.routesTo(target, visited);
  if (loopFree.length === 0) return { action: "drop", reason: "loop" };
  const hops = msg.headers.hops_remaining;
  const inBudget = loopFree.filter((r) => r.path.length - 2 <= hops);
  if (inBudget.length === 0) return { action: "drop", reason: "hop_budget_exhausted" };
  const route = service === undefined ? inBudget[0] : inBudget.find((r) => serviceAllows(r.offers, service.kind, service.name));
  if (route === undefined) return { action: "drop", reason: "denied" };
  return { action: "forward", nextCluster: route.nextHop, route, message: msg };
}

/**
 * The error for a dropped message, to answer its originator: 1005 UNREACHABLE with
 * `{reason, target_cluster}` (PROTOCOL section 2).
 */
export function federationDropError(reason: FederationDropReason, targetCluster: string | undefined): MpregError {
  const details: Record<string, unknown> = { reason };
  if (targetCluster !== undefined) details.target_cluster = targetCluster;
  return new MpregError(ErrorCode.UNREACHABLE, `federation: ${reason.replace(/_/g, " ")}`, details);
}
