export { GossipNode, type ClaimRefusal, type GossipNodeOptions, type GossipOutput, type GossipStats } from "./gossip-node.js";
export { DEFAULT_GOSSIP_CONFIG, resolveConfig, type GossipConfig } from "./config.js";
export { compareUpdates, supersedes, mergeAll } from "./merge-rules.js";
export { checkMessage, type WireLimits } from "./validate.js";
export { redirectable } from "./redirect.js";
export type {
  AckMessage,
  GossipEvent,
  GossipItem,
  GossipMessage,
  GossipPushMessage,
  GossipRandom,
  MemberInfo,
  MemberStatus,
  MemberUpdate,
  Outgoing,
  Piggyback,
  PingMessage,
  PingReqMessage,
  SyncPushMessage,
  SyncReplyMessage,
  SyncRequestMessage,
} from "./types.js";
