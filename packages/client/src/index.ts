export {
  MpregClient,
  DEFAULT_DEADLINE_GRACE_MS,
  DEFAULT_DISCOVERY_INTERVAL_MS,
  DEFAULT_DRAIN_TIMEOUT_MS,
  DEFAULT_MAX_PENDING,
  MAX_HELD_PUSHES,
  type CallOptions,
  type ClientOptions,
  type ClientState,
  type FailoverEvent,
  type PublishOptions,
  type PushFrame,
  type RequestOptions,
} from "./client.js";
export type { ClientTlsOptions, PemInput } from "@mpreg/transport";
export type { KvEvent, KvWatchEvent, PubsubNotificationMessage, QueueMessage, SubscriptionBacklog } from "@mpreg/envelope";
export { Subscription, DEDUP_WINDOW, DEFAULT_MAX_BUFFERED, type SubscribeOptions } from "./subscription.js";
export { PushStream, type OverflowPolicy, type PushStreamOptions } from "./push-stream.js";
export { UrlPool, DEFAULT_MAX_URLS, urlKey } from "./url-pool.js";
export {
  QueueClient,
  ReceivedMessage,
  type QueueCreateOptions,
  type QueueReceiveOptions,
  type QueueSendOptions,
  type QueueStats,
} from "./queue-client.js";
export { QueueSubscription, type QueueSubscribeOptions } from "./queue-subscription.js";
export {
  CacheClient,
  type CacheInvalidateOptions,
  type CacheNamespaceOption,
  type CachePutOptions,
  type CacheStats,
} from "./cache-client.js";
export {
  KvClient,
  DEFAULT_ELECTION_PREFIX,
  DEFAULT_LOCK_PREFIX,
  type KvCompare,
  type KvGetResult,
  type KvItem,
  type KvRangeResult,
  type KvTxn,
  type KvTxnOp,
  type KvTxnResult,
} from "./kv-client.js";
export { KvWatch, DEFAULT_WATCH_BUFFER, type KvWatchOptions } from "./kv-watch.js";
export { KvLease, type KvLeaseId } from "./kv-lease.js";
export { KvElection, KvLock, DEFAULT_CAMPAIGN_TTL_MS, type CampaignOptions, type KvLeader } from "./kv-campaign.js";
export { kvPrefixEnd } from "./kv-prefix.js";
