/**
 * TypeBox schemas of every MPREG wire frame. Each schema constant has a `Static` type of the
 * same name (`RpcRequest` is both the schema and the TypeScript type of an `rpc` frame). Field
 * names are the snake_case wire names. Unknown fields are ignored, never rejected, so peers may
 * add fields without breaking older nodes.
 *
 * The per-role validators are compiled once, at module load (see {@link FRAME_VALIDATORS}).
 */
import { Type, type Static, type TSchema } from "typebox";
import { Compile } from "typebox/compile";

// ---------------------------------------------------------------------------------------------
// Limits (documented in docs/protocol.md)
// ---------------------------------------------------------------------------------------------

/** Version of the node-to-node protocol announced in `peer-hello` / `peer-welcome`. */
export const PROTOCOL_VERSION = 1;
/** Default whole-request timeout of an `rpc` frame when `timeout_ms` is absent. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Largest accepted `timeout_ms` (one hour); larger values are error 1002. */
export const MAX_TIMEOUT_MS = 3_600_000;
/** Most commands accepted in one `rpc` frame; more is error 1002. */
export const MAX_COMMANDS_PER_REQUEST = 1000;
/** Most patterns in one `pubsub-subscribe` frame; more is error 1002. */
export const MAX_PATTERNS_PER_SUBSCRIPTION = 1024;
/**
 * Most messages in one `pubsub-publish-batch` (more is error 1002) and in one
 * `pubsub-notification-batch` a node sends.
 */
export const MAX_PUBSUB_BATCH = 256;
/** Largest `hops_remaining` a UnifiedMessage may carry. */
export const MAX_HOPS = 255;

// ---------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------

/**
 * Any non-array, non-null object. Deliberately not `Type.Record`, whose compiled check walks
 * every key (with a regex); an object of arbitrary values needs only the shape test.
 */
const JsonObject = Type.Unsafe<Record<string, unknown>>({ type: "object" });
const NonEmptyString = Type.String({ minLength: 1 });
const NonNegativeInteger = Type.Integer({ minimum: 0 });
const NonNegativeNumber = Type.Number({ minimum: 0 });

/** The error object of a reply: `{code, message, details}`. */
export const WireErrorSchema = Type.Object({
  code: Type.Integer(),
  message: Type.String(),
  details: JsonObject,
});

// ---------------------------------------------------------------------------------------------
// RPC (section 3)
// ---------------------------------------------------------------------------------------------

/** One call inside an `rpc` frame. `name` labels it inside the request, `fun` is the function. */
export const RpcCommand = Type.Object({
  name: NonEmptyString,
  fun: NonEmptyString,
  args: Type.Optional(Type.Array(Type.Unknown())),
  kwargs: Type.Optional(JsonObject),
  locs: Type.Optional(Type.Array(Type.String())),
  function_id: Type.Optional(Type.String()),
  version_constraint: Type.Optional(Type.String()),
  target_cluster: Type.Optional(Type.String()),
});
export type RpcCommand = Static<typeof RpcCommand>;

/** `rpc`: a client request of one or more commands. */
export const RpcRequest = Type.Object({
  role: Type.Literal("rpc"),
  u: Type.String(),
  cmds: Type.Array(RpcCommand, { minItems: 1, maxItems: MAX_COMMANDS_PER_REQUEST }),
  timeout_ms: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TIMEOUT_MS })),
  return_all: Type.Optional(Type.Boolean()),
  return_intermediate_results: Type.Optional(Type.Boolean()),
  include_execution_summary: Type.Optional(Type.Boolean()),
  stream_progress: Type.Optional(Type.Boolean()),
  /**
   * W3C Trace Context `traceparent` (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`):
   * the request joins that trace; absent or malformed, the node starts a new one (docs/protocol.md).
   */
  traceparent: Type.Optional(Type.String({ maxLength: 256 })),
});
export type RpcRequest = Static<typeof RpcRequest>;

/** The results of one level, as reported in `intermediate_results` and `rpc-progress`. */
export const IntermediateResult = Type.Object({
  level_index: NonNegativeInteger,
  level_results: JsonObject,
  accumulated_results: JsonObject,
  total_levels: NonNegativeInteger,
  completed_levels: NonNegativeInteger,
  execution_time_ms: NonNegativeNumber,
  /** Milliseconds since the Unix epoch. */
  timestamp: Type.Number(),
});
export type IntermediateResult = Static<typeof IntermediateResult>;

/** Timing summary of a whole request (`include_execution_summary`). */
export const ExecutionSummary = Type.Object({
  total_execution_time_ms: NonNegativeNumber,
  total_levels: NonNegativeInteger,
  level_execution_times: Type.Array(Type.Number()),
  /** Index of the slowest level; -1 when the request had no level. */
  bottleneck_level_index: Type.Integer({ minimum: -1 }),
  commands_executed: NonNegativeInteger,
  remote_commands: NonNegativeInteger,
  cross_cluster_commands: NonNegativeInteger,
});
export type ExecutionSummary = Static<typeof ExecutionSummary>;

/**
 * `rpc-response`: the one reply to an `rpc` frame, and the error reply to any frame that could
 * not be decoded or validated (`u` is null when it could not be read).
 */
export const RpcResponse = Type.Object({
  role: Type.Literal("rpc-response"),
  u: Type.Union([Type.String(), Type.Null()]),
  r: Type.Union([JsonObject, Type.Null()]),
  error: Type.Union([WireErrorSchema, Type.Null()]),
  intermediate_results: Type.Optional(Type.Array(IntermediateResult)),
  execution_summary: Type.Optional(ExecutionSummary),
});
export type RpcResponse = Static<typeof RpcResponse>;

/** `rpc-progress`: pushed after each level when the request asked for `stream_progress`. */
export const RpcProgress = Type.Object({
  role: Type.Literal("rpc-progress"),
  u: Type.String(),
  intermediate_result: IntermediateResult,
});
export type RpcProgress = Static<typeof RpcProgress>;

// ---------------------------------------------------------------------------------------------
// Pub/sub (section 4)
// ---------------------------------------------------------------------------------------------

/** The message of a `pubsub-publish` frame, as the publisher sends it. */
export const PubsubMessage = Type.Object({
  topic: NonEmptyString,
  payload: Type.Unknown(),
  headers: Type.Optional(JsonObject),
  message_id: Type.Optional(NonEmptyString),
});
export type PubsubMessage = Static<typeof PubsubMessage>;

/** The message of a `pubsub-notification`: completed by the node that accepted the publish. */
export const PubsubNotificationMessage = Type.Object({
  topic: NonEmptyString,
  payload: Type.Unknown(),
  headers: JsonObject,
  message_id: NonEmptyString,
  /** Node id of the node that accepted the publish. */
  publisher: Type.String(),
  /** Milliseconds since the Unix epoch, set by the accepting node. */
  timestamp: Type.Number(),
});
export type PubsubNotificationMessage = Static<typeof PubsubNotificationMessage>;

/** `pubsub-publish`. */
export const PubsubPublish = Type.Object({
  role: Type.Literal("pubsub-publish"),
  u: Type.String(),
  message: PubsubMessage,
});
export type PubsubPublish = Static<typeof PubsubPublish>;

/**
 * `pubsub-publish-batch` (an addition, docs/protocol.md): 1 to {@link MAX_PUBSUB_BATCH}
 * messages answered by one `pubsub-ack` with `message_ids` in the same order. All or nothing:
 * one bad message refuses the batch (1002 naming `messages[i]`) and nothing is published.
 */
export const PubsubPublishBatch = Type.Object({
  role: Type.Literal("pubsub-publish-batch"),
  u: Type.String(),
  messages: Type.Array(PubsubMessage, { minItems: 1, maxItems: MAX_PUBSUB_BATCH }),
});
export type PubsubPublishBatch = Static<typeof PubsubPublishBatch>;

/** Retained messages asked for by a new subscription. */
export const SubscriptionBacklog = Type.Object({
  seconds: Type.Optional(NonNegativeNumber),
  max: Type.Optional(NonNegativeInteger),
});
export type SubscriptionBacklog = Static<typeof SubscriptionBacklog>;

/** The subscription of a `pubsub-subscribe` frame. */
export const SubscriptionRequest = Type.Object({
  subscription_id: Type.Optional(NonEmptyString),
  patterns: Type.Array(NonEmptyString, { minItems: 1, maxItems: MAX_PATTERNS_PER_SUBSCRIPTION }),
  backlog: Type.Optional(SubscriptionBacklog),
  /**
   * Ask for `pubsub-notification-batch` pushes (an addition, docs/protocol.md). A node that
   * does not know the field ignores it and sends `pubsub-notification`s: a client takes both.
   */
  batch: Type.Optional(Type.Boolean()),
});
export type SubscriptionRequest = Static<typeof SubscriptionRequest>;

/** `pubsub-subscribe`. Pattern syntax is checked by the topic matcher, not here. */
export const PubsubSubscribe = Type.Object({
  role: Type.Literal("pubsub-subscribe"),
  u: Type.String(),
  subscription: SubscriptionRequest,
});
export type PubsubSubscribe = Static<typeof PubsubSubscribe>;

/** `pubsub-unsubscribe`. */
export const PubsubUnsubscribe = Type.Object({
  role: Type.Literal("pubsub-unsubscribe"),
  u: Type.String(),
  subscription_id: NonEmptyString,
});
export type PubsubUnsubscribe = Static<typeof PubsubUnsubscribe>;

/** `pubsub-ack`: the one reply to each pub/sub request. `error` may be absent or null on success. */
export const PubsubAck = Type.Object({
  role: Type.Literal("pubsub-ack"),
  u: Type.String(),
  success: Type.Boolean(),
  error: Type.Optional(Type.Union([WireErrorSchema, Type.Null()])),
  message_id: Type.Optional(Type.String()),
  subscription_id: Type.Optional(Type.String()),
  /** The ids of an accepted `pubsub-publish-batch`, in the order of its messages. */
  message_ids: Type.Optional(Type.Array(Type.String())),
});
export type PubsubAck = Static<typeof PubsubAck>;

/** `pubsub-notification`: a push to the connection that owns `subscription_id`. */
export const PubsubNotification = Type.Object({
  role: Type.Literal("pubsub-notification"),
  subscription_id: Type.String(),
  message: PubsubNotificationMessage,
});
export type PubsubNotification = Static<typeof PubsubNotification>;

/**
 * `pubsub-notification-batch` (an addition, docs/protocol.md): several notifications of one
 * subscription in one push, in delivery order; sent only to a subscription made with
 * `batch: true`.
 */
export const PubsubNotificationBatch = Type.Object({
  role: Type.Literal("pubsub-notification-batch"),
  subscription_id: Type.String(),
  messages: Type.Array(PubsubNotificationMessage, { minItems: 1 }),
});
export type PubsubNotificationBatch = Static<typeof PubsubNotificationBatch>;

// ---------------------------------------------------------------------------------------------
// Queues (section 5)
// ---------------------------------------------------------------------------------------------

/** A queue message as returned by `mpreg.queue.receive` and pushed by `queue-delivery`. */
export const QueueMessage = Type.Object({
  message_id: NonEmptyString,
  receipt: NonEmptyString,
  body: Type.Unknown(),
  receive_count: NonNegativeInteger,
  /** Milliseconds since the Unix epoch. */
  sent_at: Type.Number(),
  group_id: Type.Optional(Type.String()),
  priority: Type.Optional(Type.Number()),
  /** On a message in a dead-letter queue: where it came from and why (docs/queue.md). */
  dead_letter: Type.Optional(
    Type.Object({
      reason: Type.String(),
      source_queue: Type.String(),
      receive_count: NonNegativeInteger,
      last_return: Type.String(),
      dead_lettered_at: Type.Number(),
    }),
  ),
});
export type QueueMessage = Static<typeof QueueMessage>;

/** `queue-delivery`: a push to the connection that owns the queue subscription. */
export const QueueDelivery = Type.Object({
  role: Type.Literal("queue-delivery"),
  subscription_id: Type.String(),
  message: QueueMessage,
});
export type QueueDelivery = Static<typeof QueueDelivery>;

// ---------------------------------------------------------------------------------------------
// Replicated key-value store (section 10)
// ---------------------------------------------------------------------------------------------

/** One change a watch reports: `value` only on puts. */
export const KvWatchEvent = Type.Object({
  type: Type.Union([Type.Literal("put"), Type.Literal("delete")]),
  key: Type.String(),
  value: Type.Optional(Type.Unknown()),
  mod_revision: NonNegativeInteger,
});
export type KvWatchEvent = Static<typeof KvWatchEvent>;

/**
 * `kv-event`: a push to the connection that owns the watch (`mpreg.kv.watch`). A frame with
 * `error` is the last one of a watch that ended on its own (e.g. its history was compacted).
 */
export const KvEvent = Type.Object({
  role: Type.Literal("kv-event"),
  watch_id: Type.String(),
  events: Type.Array(KvWatchEvent),
  error: Type.Optional(WireErrorSchema),
});
export type KvEvent = Static<typeof KvEvent>;

// ---------------------------------------------------------------------------------------------
// Node to node (section 8)
// ---------------------------------------------------------------------------------------------

const peerIdentity = {
  node_id: NonEmptyString,
  cluster_id: NonEmptyString,
  region: Type.String(),
  urls: Type.Array(Type.String()),
  protocol_version: Type.Integer({ minimum: 1 }),
  /** Fresh random string chosen by the sender (binds the other side's `mac`). */
  nonce: NonEmptyString,
  /** HMAC-SHA256 (lowercase hex) of the signing string, when a cluster secret is configured. */
  mac: Type.Optional(Type.String()),
};

/** `peer-hello`: the first frame of a node-to-node link, sent by the dialing node. */
export const PeerHello = Type.Object({ role: Type.Literal("peer-hello"), ...peerIdentity });
export type PeerHello = Static<typeof PeerHello>;

/** `peer-welcome`: the answer to `peer-hello`, with the answering node's identity. */
export const PeerWelcome = Type.Object({ role: Type.Literal("peer-welcome"), ...peerIdentity });
export type PeerWelcome = Static<typeof PeerWelcome>;

/**
 * `peer-confirm`: the dialer's answer to `peer-welcome`, completing the mutual handshake. Its
 * `mac` covers both node ids and both nonces, so a recorded hello cannot be replayed: the
 * listener's fresh welcome nonce must be signed too. No peer frame is accepted before it.
 */
export const PeerConfirm = Type.Object({
  role: Type.Literal("peer-confirm"),
  mac: Type.Optional(Type.String()),
});
export type PeerConfirm = Static<typeof PeerConfirm>;

/** `fabric-gossip`: control-plane traffic; the payload belongs to the gossip layer. */
export const FabricGossip = Type.Object({
  role: Type.Literal("fabric-gossip"),
  payload: Type.Unknown(),
});
export type FabricGossip = Static<typeof FabricGossip>;

export const MessageType = Type.Enum(["rpc", "pubsub", "queue", "cache", "control", "data"]);
export type MessageType = Static<typeof MessageType>;

export const DeliveryMode = Type.Enum(["fire_and_forget", "at_least_once", "broadcast", "quorum"]);
export type DeliveryMode = Static<typeof DeliveryMode>;

/** Routing headers of a UnifiedMessage; see the forwarding rule in `headers.ts`. */
export const RoutingHeaders = Type.Object({
  correlation_id: Type.String(),
  trace_id: Type.String(),
  source_node: NonEmptyString,
  source_cluster: NonEmptyString,
  target_cluster: Type.Optional(Type.String()),
  target_node: Type.Optional(Type.String()),
  routing_path: Type.Array(Type.String(), { maxItems: MAX_HOPS + 1 }),
  federation_path: Type.Array(Type.String(), { maxItems: MAX_HOPS + 1 }),
  hops_remaining: Type.Integer({ minimum: 0, maximum: MAX_HOPS }),
  priority: Type.Integer(),
});
export type RoutingHeaders = Static<typeof RoutingHeaders>;

/** The data-plane message carried between nodes by `fabric-message`. */
export const UnifiedMessage = Type.Object({
  message_id: NonEmptyString,
  topic: Type.String(),
  message_type: MessageType,
  delivery: DeliveryMode,
  payload: Type.Unknown(),
  /** Milliseconds since the Unix epoch, set by the originator. */
  timestamp: Type.Number(),
  headers: RoutingHeaders,
});
export type UnifiedMessage = Static<typeof UnifiedMessage>;

/** `fabric-message`: data-plane traffic between nodes. */
export const FabricMessage = Type.Object({
  role: Type.Literal("fabric-message"),
  payload: UnifiedMessage,
});
export type FabricMessage = Static<typeof FabricMessage>;

/** `peer-goodbye`: the sender leaves the cluster on purpose (not a failure). */
export const PeerGoodbye = Type.Object({
  role: Type.Literal("peer-goodbye"),
  reason: Type.Optional(Type.String()),
});
export type PeerGoodbye = Static<typeof PeerGoodbye>;

// ---------------------------------------------------------------------------------------------
// All frames
// ---------------------------------------------------------------------------------------------

/** Schema of each role, keyed by the role string. */
export const FRAME_SCHEMAS = {
  rpc: RpcRequest,
  "rpc-response": RpcResponse,
  "rpc-progress": RpcProgress,
  "pubsub-publish": PubsubPublish,
  "pubsub-subscribe": PubsubSubscribe,
  "pubsub-unsubscribe": PubsubUnsubscribe,
  "pubsub-ack": PubsubAck,
  "pubsub-notification": PubsubNotification,
  "pubsub-publish-batch": PubsubPublishBatch,
  "pubsub-notification-batch": PubsubNotificationBatch,
  "queue-delivery": QueueDelivery,
  "kv-event": KvEvent,
  "peer-hello": PeerHello,
  "peer-welcome": PeerWelcome,
  "peer-confirm": PeerConfirm,
  "fabric-gossip": FabricGossip,
  "fabric-message": FabricMessage,
  "peer-goodbye": PeerGoodbye,
} as const satisfies Record<string, TSchema>;

/** Every role string of the protocol. */
export type Role = keyof typeof FRAME_SCHEMAS;
/** Every role string of the protocol, as a list. */
export const ROLES = Object.freeze(Object.keys(FRAME_SCHEMAS)) as readonly Role[];

/** Any frame of the protocol, discriminated by `role`. */
export const Frame = Type.Union([
  RpcRequest,
  RpcResponse,
  RpcProgress,
  PubsubPublish,
  PubsubSubscribe,
  PubsubUnsubscribe,
  PubsubAck,
  PubsubNotification,
  PubsubPublishBatch,
  PubsubNotificationBatch,
  QueueDelivery,
  KvEvent,
  PeerHello,
  PeerWelcome,
  PeerConfirm,
  FabricGossip,
  FabricMessage,
  PeerGoodbye,
]);
export type Frame = Static<typeof Frame>;

/** The frame type of a given role, e.g. `FrameOf<"rpc">` is `RpcRequest`. */
export type FrameOf<R extends Role> = Extract<Frame, { role: R }>;

type CompiledValidator = ReturnType<typeof Compile>;

/**
 * The compiled validator of each role, built once when this module loads. Validation on the
 * hot path is a single call of generated code; never compile a schema per call.
 */
export const FRAME_VALIDATORS: { readonly [R in Role]: CompiledValidator } = Object.freeze(
  Object.fromEntries(Object.entries(FRAME_SCHEMAS).map(([role, schema]) => [role, Compile(schema)])),
) as { readonly [R in Role]: CompiledValidator };

/** True when `role` is a role of the protocol. */
export function isRole(role: unknown): role is Role {
  return typeof role === "string" && Object.prototype.hasOwnProperty.call(FRAME_SCHEMAS, role);
}

const unifiedMessageValidator = Compile(UnifiedMessage);

/** Compiled check of a bare UnifiedMessage (the payload of `fabric-message`). */
export function isUnifiedMessage(value: unknown): value is UnifiedMessage {
  return unifiedMessageValidator.Check(value);
}
