/**
 * `@mpreg/router/testing`: what MPREG's own router tests use, for property-testing your own
 * routing (topic subscriptions, federation policies, route announcements, topologies).
 *
 * - fast-check arbitraries, valid by construction: topics and topic patterns, prefix lists and
 *   offers, policy rules, route entries / updates / sequences of updates, connected cluster
 *   graphs with link costs;
 * - reference models sharing no code with the implementation: a brute-force topic matcher,
 *   the naive meaning of prefix lists and policy rules, brute-force best routes, Dijkstra
 *   distances;
 * - {@link FederationSim}: a deterministic discrete-event simulation of whole federations.
 *
 * Needs `fast-check` 4 (a peer dependency) and is not part of the main entry point.
 */
export {
  matchingTopicArb,
  topicArb,
  topicPatternArb,
  topicSegmentArb,
  type TopicArbOptions,
  type TopicPatternArbOptions,
} from "./topic-arbitraries.js";
export { naiveTopicMatch } from "./naive-topic-match.js";
export {
  offersArb,
  prefixListArb,
  prefixWordArb,
  type PrefixListArbOptions,
  type PrefixWordArbOptions,
} from "./service-arbitraries.js";
export {
  naiveChainAllows,
  naiveClusterAllowed,
  naivePrefixAllows,
  type ClusterLists,
  type ServiceLists,
} from "./naive-service-filter.js";
export {
  routePoliciesArb,
  routePolicyRuleArb,
  type RoutePoliciesArbOptions,
  type RoutePolicyRuleArbOptions,
} from "./policy-arbitraries.js";
export {
  routeAnnouncementsArb,
  routeEntryArb,
  routeUpdateArb,
  type RouteAnnouncement,
  type RouteAnnouncementsArbOptions,
  type RouteEntryArbOptions,
  type RouteUpdateArbOptions,
} from "./route-arbitraries.js";
export {
  clusterGraphArb,
  clusterIds,
  graphAdjacency,
  randomClusterGraph,
  shortestDistances,
  type ClusterGraph,
  type ClusterGraphArbOptions,
  type ClusterLink,
  type RandomClusterGraphOptions,
  type RandomSource,
} from "./cluster-graph.js";
export {
  bruteForceBestRoute,
  bruteForceBestRoutes,
  type BruteForceOptions,
  type ReferenceRoute,
} from "./brute-force-routes.js";
export {
  FederationSim,
  type FederationSimOptions,
  type SimMode,
  type SimRunResult,
  type SimSpeaker,
} from "./federation-sim.js";
