export {
  MpregClient,
  DEFAULT_DEADLINE_GRACE_MS,
  DEFAULT_MAX_PENDING,
  type CallOptions,
  type ClientOptions,
  type ClientState,
  type PushFrame,
  type RequestOptions,
} from "./client.js";
