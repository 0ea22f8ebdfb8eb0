/**
 * The browser entry of @mpreg/transport (selected by the `browser` export condition): the
 * client side and the in-memory pair, without the listener, which needs `node:http`.
 */
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
  DEFAULT_HIGH_WATER_MARK_BYTES,
  DEFAULT_MAX_BUFFERED_BYTES,
  type WsConnectionLimits,
} from "./ws-connection.js";
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
export { checkClientTlsShape, type ClientTlsOptions, type PemInput } from "./tls-options.js";
export { createMemoryConnectionPair, type MemoryPairOptions } from "./memory-connection.js";
