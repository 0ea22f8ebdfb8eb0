/**
 * fast-check arbitraries of valid frames, for the envelope's own property tests. Not exported
 * from the package (fast-check is a dev dependency); imported only by `*.test.ts`.
 */
import fc from "fast-check";
import type { Frame, Role, UnifiedMessage } from "./schemas.js";

/** Object keys: anything but `__proto__`, which the codec refuses on purpose. */
const key = fc.string({ maxLength: 8, unit: "grapheme" }).filter((k) => k !== "__proto__");
const text = fc.string({ maxLength: 16, unit: "grapheme" });
const nonEmpty = fc.string({ minLength: 1, maxLength: 16, unit: "grapheme" });

/** Plain wire data (what JSON and MessagePack both carry), a few levels deep. */
export const wireValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", maxDepth: 4 },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    text,
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(key, tie("value"), { maxKeys: 4 }),
  ),
})).value;

export const wireObject: fc.Arbitrary<Record<string, unknown>> = fc.dictionary(key, wireValue, { maxKeys: 4 });
const wireError = fc.record({ code: fc.integer({ min: 1000, max: 1999 }), message: text, details: wireObject });
const count = fc.nat({ max: 1000 });
const ms = fc.double({ min: 0, max: 1e9, noNaN: true });
const epoch = fc.integer({ min: 0, max: 4_102_444_800_000 });

const rpcCommand = fc.record(
  {
    name: nonEmpty,
    fun: nonEmpty,
    args: fc.array(wireValue, { maxLength: 4 }),
    kwargs: wireObject,
    locs: fc.array(text, { maxLength: 3 }),
    function_id: text,
    version_constraint: text,
    target_cluster: text,
  },
  { requiredKeys: ["name", "fun"] },
);

const intermediateResult = fc.record({
  level_index: count,
  level_results: wireObject,
  accumulated_results: wireObject,
  total_levels: count,
  completed_levels: count,
  execution_time_ms: ms,
  timestamp: epoch,
});

const executionSummary = fc.record({
  total_execution_time_ms: ms,
  total_levels: count,
  level_execution_times: fc.array(ms, { maxLength: 4 }),
  bottleneck_level_index: fc.integer({ min: -1, max: 100 }),
  commands_executed: count,
  remote_commands: count,
  cross_cluster_commands: count,
});

const topic = fc
  .array(fc.stringMatching(/^[a-z0-9_-]{1,8}$/), { minLength: 1, maxLength: 4 })
  .map((s) => s.join("."));

const peerIdentity = {
  node_id: nonEmpty,
  cluster_id: nonEmpty,
  region: text,
  urls: fc.array(text, { maxLength: 3 }),
  protocol_version: fc.integer({ min: 1, max: 5 }),
  nonce: nonEmpty,
  mac: fc.stringMatching(/^[0-9a-f]{64}$/),
};

/** A valid UnifiedMessage (paths and hop budget consistent with the forwarding rule). */
export const unifiedMessage: fc.Arbitrary<UnifiedMessage> = fc
  .record(
    {
      message_id: nonEmpty,
      topic: text,
      message_type: fc.constantFrom("rpc", "pubsub", "queue", "cache", "control", "data" as const),
      delivery: fc.constantFrom("fire_and_forget", "at_least_once", "broadcast", "quorum" as const),
      payload: wireValue,
      timestamp: epoch,
      headers: fc.record(
        {
          correlation_id: text,
          trace_id: text,
          source_node: nonEmpty,
          source_cluster: nonEmpty,
          target_cluster: text,
          target_node: text,
          routing_path: fc.array(text, { maxLength: 6 }),
          federation_path: fc.array(text, { maxLength: 6 }),
          hops_remaining: fc.integer({ min: 0, max: 255 }),
          priority: fc.integer({ min: -10, max: 10 }),
        },
        { requiredKeys: ["correlation_id", "trace_id", "source_node", "source_cluster", "routing_path", "federation_path", "hops_remaining", "priority"] },
      ),
    },
    { requiredKeys: ["message_id", "topic", "message_type", "delivery", "payload", "timestamp", "headers"] },
  )
  .map((m) => m as UnifiedMessage);

const opt = <T>(arb: fc.Arbitrary<T>) => arb;

/** One arbitrary of valid frames per role. */
export const frameArbitraries: { [R in Role]: fc.Arbitrary<Frame> } = {
  rpc: fc.record(
    {
      role: fc.constant("rpc" as const),
      u: text,
      cmds: fc.array(rpcCommand, { minLength: 1, maxLength: 4 }),
      timeout_ms: fc.integer({ min: 1, max: 3_600_000 }),
      return_all: fc.boolean(),
      return_intermediate_results: fc.boolean(),
      include_execution_summary: fc.boolean(),
      stream_progress: fc.boolean(),
    },
    { requiredKeys: ["role", "u", "cmds"] },
  ),
  "rpc-response": fc.record(
    {
      role: fc.constant("rpc-response" as const),
      u: fc.option(text, { nil: null }),
      r: fc.option(wireObject, { nil: null }),
      error: fc.option(wireError, { nil: null }),
      intermediate_results: fc.array(intermediateResult, { maxLength: 3 }),
      execution_summary: executionSummary,
    },
    { requiredKeys: ["role", "u", "r", "error"] },
  ),
  "rpc-progress": fc.record({
    role: fc.constant("rpc-progress" as const),
    u: text,
    intermediate_result: intermediateResult,
  }),
  "pubsub-publish": fc.record({
    role: fc.constant("pubsub-publish" as const),
    u: text,
    message: fc.record(
      { topic, payload: wireValue, headers: wireObject, message_id: nonEmpty },
      { requiredKeys: ["topic", "payload"] },
    ),
  }),
  "pubsub-subscribe": fc.record({
    role: fc.constant("pubsub-subscribe" as const),
    u: text,
    subscription: fc.record(
      {
        subscription_id: nonEmpty,
        patterns: fc.array(nonEmpty, { minLength: 1, maxLength: 4 }),
        backlog: fc.record({ seconds: opt(ms), max: count }, { requiredKeys: [] }),
        batch: fc.boolean(),
      },
      { requiredKeys: ["patterns"] },
    ),
  }),
  "pubsub-unsubscribe": fc.record({
    role: fc.constant("pubsub-unsubscribe" as const),
    u: text,
    subscription_id: nonEmpty,
  }),
  "pubsub-ack": fc.record(
    {
      role: fc.constant("pubsub-ack" as const),
      u: text,
      success: fc.boolean(),
      error: fc.option(wireError, { nil: null }),
      message_id: text,
      subscription_id: text,
      message_ids: fc.array(text, { maxLength: 3 }),
    },
    { requiredKeys: ["role", "u", "success"] },
  ),
  "pubsub-notification": fc.record({
    role: fc.constant("pubsub-notification" as const),
    subscription_id: text,
    message: fc.record({
      topic,
      payload: wireValue,
      headers: wireObject,
      message_id: nonEmpty,
      publisher: text,
      timestamp: epoch,
    }),
  }),
  "pubsub-publish-batch": fc.record({
    role: fc.constant("pubsub-publish-batch" as const),
    u: text,
    messages: fc.array(
      fc.record({ topic, payload: wireValue, headers: wireObject, message_id: nonEmpty }, { requiredKeys: ["topic", "payload"] }),
      { minLength: 1, maxLength: 3 },
    ),
  }),
  "pubsub-notification-batch": fc.record({
    role: fc.constant("pubsub-notification-batch" as const),
    subscription_id: text,
    messages: fc.array(
      fc.record({ topic, payload: wireValue, headers: wireObject, message_id: nonEmpty, publisher: text, timestamp: epoch }),
      { minLength: 1, maxLength: 3 },
    ),
  }),
  "queue-delivery": fc.record({
    role: fc.constant("queue-delivery" as const),
    subscription_id: text,
    message: fc.record(
      {
        message_id: nonEmpty,
        receipt: nonEmpty,
        body: wireValue,
        receive_count: count,
        sent_at: epoch,
        group_id: text,
        priority: fc.integer(),
      },
      { requiredKeys: ["message_id", "receipt", "body", "receive_count", "sent_at"] },
    ),
  }),
  "kv-event": fc.record(
    {
      role: fc.constant("kv-event" as const),
      watch_id: text,
      events: fc.array(
        fc.record(
          { type: fc.constantFrom("put" as const, "delete" as const), key: text, value: wireValue, mod_revision: count },
          { requiredKeys: ["type", "key", "mod_revision"] },
        ),
        { maxLength: 3 },
      ),
      error: wireError,
    },
    { requiredKeys: ["role", "watch_id", "events"] },
  ),
  "peer-hello": fc.record(
    { role: fc.constant("peer-hello" as const), ...peerIdentity },
    { requiredKeys: ["role", "node_id", "cluster_id", "region", "urls", "protocol_version", "nonce"] },
  ),
  "peer-welcome": fc.record(
    { role: fc.constant("peer-welcome" as const), ...peerIdentity },
    { requiredKeys: ["role", "node_id", "cluster_id", "region", "urls", "protocol_version", "nonce"] },
  ),
  "peer-confirm": fc.record({ role: fc.constant("peer-confirm" as const), mac: text }, { requiredKeys: ["role"] }),
  "fabric-gossip": fc.record({ role: fc.constant("fabric-gossip" as const), payload: wireValue }),
  "fabric-message": fc.record({ role: fc.constant("fabric-message" as const), payload: unifiedMessage }),
  "peer-goodbye": fc.record({ role: fc.constant("peer-goodbye" as const), reason: text }, { requiredKeys: ["role"] }),
} as { [R in Role]: fc.Arbitrary<Frame> };

/** Any valid frame. */
export const anyFrame: fc.Arbitrary<Frame> = fc.oneof(...Object.values(frameArbitraries));

/** The wire type a field must have, for the wrong-type property. */
export type FieldKind = "string" | "integer" | "number" | "boolean" | "array" | "object";

/** Required, typed fields of each role (present in every generated frame). */
export const TYPED_FIELDS: { [R in Role]: Array<[path: Array<string | number>, kind: FieldKind]> } = {
  rpc: [[["u"], "string"], [["cmds"], "array"], [["cmds", 0, "name"], "string"], [["cmds", 0, "fun"], "string"]],
  "rpc-response": [[["r"], "object"]],
  "rpc-progress": [[["u"], "string"], [["intermediate_result"], "object"], [["intermediate_result", "level_index"], "integer"]],
  "pubsub-publish": [[["u"], "string"], [["message"], "object"], [["message", "topic"], "string"]],
  "pubsub-subscribe": [[["u"], "string"], [["subscription"], "object"], [["subscription", "patterns"], "array"]],
  "pubsub-unsubscribe": [[["u"], "string"], [["subscription_id"], "string"]],
  "pubsub-ack": [[["u"], "string"], [["success"], "boolean"]],
  "pubsub-notification": [[["subscription_id"], "string"], [["message"], "object"], [["message", "message_id"], "string"], [["message", "timestamp"], "number"]],
  "pubsub-publish-batch": [[["u"], "string"], [["messages"], "array"], [["messages", 0, "topic"], "string"]],
  "pubsub-notification-batch": [[["subscription_id"], "string"], [["messages"], "array"], [["messages", 0, "message_id"], "string"], [["messages", 0, "timestamp"], "number"]],
  "queue-delivery": [[["subscription_id"], "string"], [["message", "receipt"], "string"], [["message", "receive_count"], "integer"]],
  "kv-event": [[["watch_id"], "string"], [["events"], "array"]],
  "peer-hello": [[["node_id"], "string"], [["urls"], "array"], [["protocol_version"], "integer"], [["nonce"], "string"]],
  "peer-welcome": [[["node_id"], "string"], [["urls"], "array"], [["protocol_version"], "integer"], [["nonce"], "string"]],
  "peer-confirm": [],
  "fabric-gossip": [],
  "fabric-message": [[["payload"], "object"], [["payload", "headers", "routing_path"], "array"], [["payload", "headers", "hops_remaining"], "integer"]],
  "peer-goodbye": [],
};

function hasKind(v: unknown, kind: FieldKind): boolean {
  switch (kind) {
    case "string":
      return typeof v === "string";
    case "integer":
      return Number.isInteger(v);
    case "number":
      return typeof v === "number";
    case "boolean":
      return typeof v === "boolean";
    case "array":
      return Array.isArray(v);
    case "object":
      // `r` of rpc-response also takes null: treat null as "of kind object" so it is never used.
      return v === null || (typeof v === "object" && !Array.isArray(v));
  }
}

/** A value that is not of `kind` (never undefined: an absent optional would be valid). */
export function wrongValueFor(kind: FieldKind): fc.Arbitrary<unknown> {
  return fc
    .oneof(
      fc.constant(null),
      fc.boolean(),
      fc.integer(),
      fc.constant(1.5),
      text,
      fc.array(wireValue, { maxLength: 2 }),
      wireObject,
    )
    .filter((v) => !hasKind(v, kind));
}
