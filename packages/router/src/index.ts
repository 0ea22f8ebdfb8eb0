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
