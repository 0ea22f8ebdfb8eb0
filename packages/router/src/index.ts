export {};
export {
  planRequest,
  substitute,
  MAX_COMMANDS,
  MAX_NESTING_DEPTH,
  type Plan,
  type PlanCommand,
  type PlannedCommand,
  type ReferenceSite,
  type SubstituteOptions,
} from "./planner.js";
export {
  MAX_SEGMENTS,
  MAX_TOPIC_LENGTH,
  TopicTrie,
  compilePattern,
  isValidPattern,
  matchTopic,
  validatePattern,
  validateTopic,
  type CompiledPattern,
  type TopicTrieOptions,
} from "./topic-pattern.js";
export { selectEndpoint, type SelectContext, type Selection, type SelectionTier } from "./select.js";
export { computeNextHops, type NextHop, type NextHopOptions } from "./next-hop.js";
export {
  LinkOverlay,
  LINKS_KEY_PREFIX,
  MAX_ANNOUNCED_LINKS,
  ROUTE_MAX_HOPS,
  type LinkAnnouncement,
  type LinkOverlayOptions,
} from "./link-state.js";
export {
  ALLOW_ALL,
  ALLOW_NONE,
  MAX_PREFIXES,
  MAX_PREFIX_LENGTH,
  intersectPrefixFilters,
  isAllowAll,
  prefixAllows,
  prefixFilter,
  prefixFilterFits,
  prefixFilterToList,
  samePrefixFilter,
  type PrefixFilter,
  type PrefixList,
} from "./prefix-filter.js";
export {
  CACHE_TOPIC_PREFIX,
  OFFER_ALL,
  SERVICE_KINDS,
  cacheServiceName,
  catalogEntryAllowed,
  intersectServiceFilters,
  sameServiceFilter,
  serviceAllows,
  serviceFilter,
  serviceFilterFits,
  serviceFilterToOffers,
  type Offers,
  type ServiceFilter,
  type ServiceKind,
} from "./service-filter.js";
export {
  MAX_POLICY_CLUSTERS,
  MAX_POLICY_RULES,
  PASS_RULE,
  RoutePolicySet,
  applyRule,
  type CompiledRule,
  type PolicyResult,
  type RoutePolicies,
  type RoutePolicyRule,
} from "./route-policy.js";
export {
  DEFAULT_MAX_PATH_LENGTH,
  DEFAULT_MAX_UPDATE_ENTRIES,
  MAX_CLUSTER_ID_LENGTH,
  MAX_METRIC,
  MAX_TTL_MS,
  ROUTE_UPDATE_VERSION,
  isClusterId,
  validateRouteUpdate,
  validateSignature,
  type RouteEntry,
  type RouteSignature,
  type RouteUpdate,
  type RouteUpdateLimits,
} from "./route-update.js";
export {
  RouteSigner,
  generateRouteKey,
  importPublicKey,
  routeKeyId,
  routeUpdateSigningBytes,
  verifyBytes,
  type GeneratedRouteKey,
} from "./route-signing.js";
export {
  KeyRegistry,
  keyAnnouncementSigningBytes,
  signKeyAnnouncement,
  type KeyAnnouncement,
  type KeyAnnouncementRefusal,
  type KeyAnnouncementResult,
  type KeyRegistryOptions,
  type KeyRegistryStats,
  type RegisteredKey,
  type TrustedKey,
  type VerifyOutcome,
} from "./key-registry.js";
export { DEFAULT_DAMPING, FlapDamper, dampingConfig, type DampingConfig } from "./route-damping.js";
export {
  compareRoutes,
  pathTouches,
  sameRoute,
  type BestRouteChange,
  type ClusterRoute,
  type ClusterRouteSource,
  type RouteOrderKey,
} from "./cluster-route.js";
export {
  RouteTable,
  type EntryRefusal,
  type OutboundRouteUpdate,
  type RouteReceiveResult,
  type RouteTableOptions,
  type RouteTableOutput,
  type RouteTableStats,
  type UpdateRefusal,
} from "./route-table.js";
export {
  ClusterLinkState,
  adjacencySigningBytes,
  validateAdjacency,
  type AdjacencyAnnouncement,
  type AdjacencyLink,
  type AdjacencyRefusal,
  type ClusterLinkStateOptions,
  type LinkStateOutput,
  type LinkStateStats,
  type OutboundAdjacency,
} from "./cluster-link-state.js";
export {
  federationDropError,
  nextClusterHop,
  type FederationDropReason,
  type FederationHopDecision,
  type FederationHopInput,
} from "./federation-hop.js";
export {
  MAX_CONFIGURED_LINKS,
  createFederation,
  validateFederationConfig,
  type Federation,
  type FederationConfig,
  type FederationKeysConfig,
  type FederationLinkConfig,
} from "./federation-config.js";
