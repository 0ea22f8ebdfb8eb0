export {
  TopicExchange,
  type ExchangeStats,
  MAX_NOTIFICATION_BATCH,
  MAX_NOTIFICATION_BATCH_BYTES,
  type NotificationSink,
  type PublishResult,
  type RemoteDeliveryResult,
  type SubscribeResult,
  type SubscriptionInfo,
} from "./topic-exchange.js";
export {
  EXCHANGE_DEFAULTS,
  resolveExchangeOptions,
  type ExchangeOptions,
  type ResolvedExchangeOptions,
} from "./exchange-options.js";
export {
  LocalInterest,
  MAX_ADVERTISED_PATTERN_LENGTH,
  applyInterestChange,
  topicEntryFor,
  topicEntryKey,
  type AppliedInterest,
  type InterestChange,
} from "./local-interest.js";
export { RemoteInterestIndex, type RemoteInterestStats } from "./remote-interest.js";
export { RetentionStore, type RetainedMessage, type RetentionLimits, type RetentionStats } from "./retention-store.js";
export { NotificationQueue } from "./notification-queue.js";
export { BoundedIdSet } from "./bounded-id-set.js";
export { estimateBytes } from "./message-size.js";
export { MAX_ID_LENGTH, checkPublishedMessage, checkRemoteMessage, type CheckedMessage, type MessageLimits } from "./message-check.js";
export {
  handlePublish,
  handlePublishBatch,
  handlePubsubRequest,
  handleSubscribe,
  handleUnsubscribe,
  pubsubFabricMessage,
  type PubsubReply,
  type PubsubRequestFrame,
} from "./wire-adapter.js";
export { MAX_DELIVERY_BATCH, MAX_DELIVERY_BATCH_BYTES, PubsubService, PUBSUB_DELIVER_TOPIC, type PubsubServiceOptions } from "./pubsub-service.js";
