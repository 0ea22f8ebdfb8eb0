export { QueueCore, LOCAL_OWNER, SETTLED_RECEIPT_PREFIX } from "./queue-core.js";
export type { Completion, QueueCoreConfig, QueueReady, ReceiveOutcome, SendOutcome } from "./queue-core.js";
export { QueueService } from "./queue-service.js";
export type { DeliveryPush, QueueRecovery, QueueServiceOptions, Timers } from "./queue-service.js";
export { queueBuiltins, QUEUE_BUILTIN_PREFIX } from "./builtins.js";
export { DEFAULT_LIMITS, resolveLimits, type QueueLimits } from "./limits.js";
export {
  DEFAULT_PREFETCH,
  MAX_QUEUE_NAME_LENGTH,
  MAX_RECEIVE_BATCH,
  MAX_WAIT_MS,
  parseQueueName,
  parseQueueOptions,
} from "./validate.js";
export { loadStore, storeKeys, type LoadedState } from "./store-codec.js";
export type {
  CreateResult,
  DeadLetterInfo,
  DeleteResult,
  Delivery,
  DeliveryMode,
  NackOptions,
  PurgeResult,
  QueueInfo,
  QueueOptions,
  QueueStats,
  QueueType,
  ReceivedMessage,
  ReceiveOptions,
  ReturnReason,
  SendOptions,
  SendResult,
  SubscribeOptions,
} from "./types.js";
export { advertiseQueues } from "./queue-fabric.js";
export { relaySubscriptions, type RelayOptions, type RelayedBuiltins } from "./relayed-subscriptions.js";
