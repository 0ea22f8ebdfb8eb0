export {
  CloseCode,
  ConnectionEvents,
  HandlerList,
  checkClose,
  connectionClosedError,
  isSendableCloseCode,
  type CloseHandler,
  type Connection,
  type FrameData,
  type MessageHandler,
  type Unsubscribe,
} from "./connection.js";
export {
  WsConnection,
  DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_COALESCE_MAX_BYTES,
  DEFAULT_COALESCE_MAX_FRAMES,
  DEFAULT_HIGH_WATER_MARK_BYTES,
  DEFAULT_MAX_BUFFERED_BYTES,
  type WsConnectionLimits,
} from "./ws-connection.js";
export {
  createWsListener,
  CLOSE_FIRST_FRAME_TIMEOUT,
  DEFAULT_FIRST_FRAME_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_PING_INTERVAL_MS,
  DEFAULT_PROBATION_TIMEOUT_MS,
  DEFAULT_RESERVED_PEER_SLOTS,
  type ConnectionHandler,
  type ListenAddress,
  type ListenerStats,
  type UpgradeInfo,
  type WsListener,
  type WsListenerOptions,
} from "./ws-listener.js";
export { OutboundBudget, DEFAULT_MAX_TOTAL_BUFFERED_BYTES, type BudgetMember } from "./outbound-budget.js";
export { addressKey } from "./address-key.js";
export { InflightLimiter, DEFAULT_INFLIGHT_LIMIT } from "./inflight-limiter.js";
export { backoffCap, backoffDelay, DEFAULT_BACKOFF, type BackoffOptions, type RandomSource } from "./backoff.js";
export { BrowserWsConnection, type WhatwgWebSocket, type WhatwgWebSocketCtor } from "./browser-connection.js";
export {
  ClientConnection,
  connectWs,
  type ClientCloseHandler,
  type ClientConnectionState,
  type ConnectOptions,
  type ReconnectOptions,
} from "./client-connection.js";
export {
  checkClientTlsShape,
  checkListenerTlsShape,
  type ClientTlsOptions,
  type ListenerTlsOptions,
  type PemInput,
} from "./tls-options.js";
export { checkClientTls, checkListenerTls } from "./tls.js";
export { createMemoryConnectionPair, type MemoryPairOptions } from "./memory-connection.js";
