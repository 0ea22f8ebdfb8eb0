export { ErrorCode, MpregError, errorCodeName, isMpregError, type WireError } from "./errors.js";
export { createLogger, type Logger } from "./logger.js";
export { newTraceId, traceIdFromTraceparent } from "./trace-context.js";
export type { BuiltinContext, ServiceBuiltin } from "./builtin.js";
export { idTime, newId } from "./ids.js";
export { estimateEncodedSize, tallyEncodedSize, type SizeTally } from "./encoded-size.js";
export * from "./schemas.js";
export {
  CLIENT_ROLES,
  PEER_ROLES,
  MAX_FRAME_ELEMENTS,
  MAX_NESTING_DEPTH,
  decodeFrame,
  encodeCallRequest,
  encodeFrame,
  encodeRpcResult,
  isClientRole,
  isPeerRole,
  pubsubErrorAck,
  rpcErrorReply,
  validateFrame,
  type ClientRole,
  type DecodeLimits,
  type DecodeResult,
  type Encoding,
  type PeerRole,
} from "./codec.js";
export { encodeFabricMessage } from "./fabric-codec.js";
export { encodeNotification, encodeNotificationBatch, encodePlainPublish, encodePubsubAck, encodePublish, encodePublishBatch } from "./pubsub-codec.js";
export {
  DEFAULT_MAX_HOPS,
  createUnifiedMessage,
  forwardStep,
  hasVisited,
  peerHelloSigningString,
  peerWelcomeSigningString,
  peerConfirmSigningString,
  type CreateUnifiedMessageInput,
  type ForwardDecision,
  type PeerHelloFields,
  type PeerWelcomeFields,
  type UnifiedHeadersInput,
} from "./headers.js";
export {
  INTERNAL_TOPIC_PREFIXES,
  MAX_TOPIC_LENGTH,
  MAX_TOPIC_SEGMENTS,
  TOPIC_PREFIX,
  TOPIC_SEPARATOR,
  internalTopic,
  isReservedTopic,
  validateTopic,
  type InternalTopicKind,
} from "./topics.js";
export { didYouMean, editDistance } from "./did-you-mean.js";
