import {
  type CreateUnifiedMessageInput,
  MpregError,
  type PubsubAck,
  type PubsubNotificationMessage,
  type PubsubPublish,
  type PubsubPublishBatch,
  type PubsubSubscribe,
  type PubsubUnsubscribe,
  type UnifiedHeadersInput,
  type UnifiedMessage,
  createUnifiedMessage,
  isMpregError,
  pubsubErrorAck,
} from "@mpreg/envelope";
import type { PublishResult, SubscribeResult, TopicExchange } from "./topic-exchange.js";

/** The client frames the exchange answers. */
export type PubsubRequestFrame = PubsubPublish | PubsubPublishBatch | PubsubSubscribe | PubsubUnsubscribe;

/**
 * What the node does after a pub/sub request: send `ack` (always exactly one), then for an
 * accepted publish forward `publish.message` to each node of `publish.forwardTo`, and for a
 * subscribe call `exchange.flush(owner)` (the backlog waits for the ack). After any of them,
 * `exchange.takeInterestChanges()` tells what to change in the catalog.
 */
export interface PubsubReply {
  readonly ack: PubsubAck;
  readonly publish?: PublishResult;
  /** An accepted `pubsub-publish-batch`: each message's result, in order (forward each as `publish`). */
  readonly publishes?: readonly PublishResult[];
  readonly subscribe?: SubscribeResult;
}

function errorReply(u: string, err: unknown, ids: { subscription_id?: string | undefined }): PubsubReply {
  if (!isMpregError(err)) throw err;
  const ack: PubsubAck = pubsubErrorAck(u, err);
  return { ack: ids.subscription_id === undefined ? ack : { ...ack, subscription_id: ids.subscription_id } };
}

/** `pubsub-publish` → ack `{success: true, message_id}` or the error (1002 naming the field). */
export function handlePublish(exchange: TopicExchange, frame: PubsubPublish): PubsubReply {
  try {
    const publish = exchange.publish(frame.message);
    return { ack: { role: "pubsub-ack", u: frame.u, success: true, message_id: publish.message.message_id }, publish };
  } catch (e) {
    return errorReply(frame.u, e, {});
  }
}

/**
 * `pubsub-publish-batch` → one ack `{success: true, message_ids}` (in the order of the
 * messages), or the error of the first bad message (1002 naming `messages[i]…`, with
 * `details.index`): all or nothing, nothing is published then.
 */
export function handlePublishBatch(exchange: TopicExchange, frame: PubsubPublishBatch): PubsubReply {
  try {
    const publishes = exchange.publishBatch(frame.messages);
    const message_ids = publishes.map((p) => p.message.message_id);
    return { ack: { role: "pubsub-ack", u: frame.u, success: true, message_ids }, publishes };
  } catch (e) {
    return errorReply(frame.u, e, {});
  }
}

/** `pubsub-subscribe` → ack `{success: true, subscription_id}` or the error (1002, 1007). */
export function handleSubscribe(exchange: TopicExchange, frame: PubsubSubscribe, owner: string): PubsubReply {
  try {
    const subscribe = exchange.subscribe(owner, frame.subscription);
    return { ack: { role: "pubsub-ack", u: frame.u, success: true, subscription_id: subscribe.subscription_id }, subscribe };
  } catch (e) {
    const id = frame.subscription?.subscription_id;
    return errorReply(frame.u, e, { subscription_id: typeof id === "string" ? id : undefined });
  }
}

/** `pubsub-unsubscribe` → ack `{success: true, subscription_id}`, or 1001 for an id this owner does not hold. */
export function handleUnsubscribe(exchange: TopicExchange, frame: PubsubUnsubscribe, owner: string): PubsubReply {
  try {
    exchange.unsubscribe(owner, frame.subscription_id);
    return { ack: { role: "pubsub-ack", u: frame.u, success: true, subscription_id: frame.subscription_id } };
  } catch (e) {
    const id = frame.subscription_id;
    return errorReply(frame.u, e, { subscription_id: typeof id === "string" ? id : undefined });
  }
}

/**
 * Answers one decoded (schema-checked) pub/sub request of connection `owner`. Never throws for
 * bad input: every refusal is an error ack with its wire code.
 */
export function handlePubsubRequest(exchange: TopicExchange, frame: PubsubRequestFrame, owner: string): PubsubReply {
  switch (frame.role) {
    case "pubsub-publish":
      return handlePublish(exchange, frame);
    case "pubsub-publish-batch":
      return handlePublishBatch(exchange, frame);
    case "pubsub-subscribe":
      return handleSubscribe(exchange, frame, owner);
    case "pubsub-unsubscribe":
      return handleUnsubscribe(exchange, frame, owner);
    default: {
      // Only reachable when the caller skipped the schema: answer, never throw.
      const f = frame as { role?: unknown; u?: unknown };
      const u = typeof f.u === "string" ? f.u : "";
      return { ack: pubsubErrorAck(u, MpregError.invalid(`role ${JSON.stringify(f.role)} is not a pub/sub request`, "role")) };
    }
  }
}

/**
 * The fabric message that carries an accepted message to another node: `message_type`
 * `pubsub`, the message's topic, the whole notification message as payload (the receiver
 * passes `payload` to `deliverRemote`). The fabric message gets its own id: one pub/sub
 * message travels as one fabric message per target node, and a relay must not take those
 * for duplicates of each other (pub/sub dedup uses the payload's `message_id`). `headers` names the source (and, for a
 * directed send, `target_node`).
 */
export function pubsubFabricMessage(
  message: PubsubNotificationMessage,
  headers: UnifiedHeadersInput,
  options: Pick<CreateUnifiedMessageInput, "maxHops" | "timestamp"> = {},
): UnifiedMessage {
  return createUnifiedMessage({
    topic: message.topic,
    message_type: "pubsub",
    delivery: "fire_and_forget",
    payload: message,
    headers,
    ...options,
  });
}
