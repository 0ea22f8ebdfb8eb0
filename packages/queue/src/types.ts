/** The public value types of `@mpreg/queue` (wire shapes are snake_case, as in PROTOCOL section 5). */

import type { QueueMessage } from "@mpreg/envelope";

/** `standard`: FIFO by send order, best effort; `fifo`: ordered per group, one in flight per group; `priority`: higher first. */
export type QueueType = "standard" | "fifo" | "priority";

/** How one message is delivered (see docs/queue.md for the guarantees of each). */
export type DeliveryMode = "at_least_once" | "at_most_once" | "broadcast" | "quorum";

/** A queue's options with every default filled in (what `create` stores and compares). */
export interface QueueOptions {
  type: QueueType;
  /** How long a received message stays invisible before it is offered again (ms). */
  visibility_timeout_ms: number;
  /** Receives after which an unacked message moves to the dead-letter queue. */
  max_receives: number;
  /** Where exhausted messages go; `null`: they are discarded (still counted in `dead_lettered`). */
  dead_letter_queue: string | null;
  /** Default delay of a sent message (ms). */
  delay_ms: number;
  /** How long a `dedup_id` is remembered (ms). */
  dedup_window_ms: number;
  /** Most messages held (visible, delayed, in flight); a send past it is 1007. */
  max_messages: number;
  /** Persisted through the storage backend (default true when the service has one). */
  durable: boolean;
}

/** Per-message options of `send`. */
export interface SendOptions {
  delay_ms?: number;
  /** Priority queues only: higher first, FIFO among equals. */
  priority?: number;
  /** FIFO queues only: ordering group (default: the one group `""`). */
  group_id?: string;
  /** A `dedup_id` seen within the queue's dedup window is answered `duplicate: true` and not enqueued. */
  dedup_id?: string;
  delivery?: DeliveryMode;
  /** Quorum only: acks needed before `send` is answered (default 1). */
  quorum?: number;
  /** Quorum only: how long to wait for the acks (default: the queue's visibility timeout). */
  quorum_timeout_ms?: number;
}

/** The answer to `send`. */
export interface SendResult {
  message_id: string;
  duplicate: boolean;
}

/** The answer to `create`. */
export interface CreateResult {
  name: string;
  created: boolean;
}

/** Options of `receive`. */
export interface ReceiveOptions {
  /** Most messages returned, 1..100 (default 1). */
  max?: number;
  /** Long poll: wait up to this long for a message when none is visible, 0..20000 (default 0). */
  wait_ms?: number;
  /** Overrides the queue's visibility timeout for these messages. */
  visibility_timeout_ms?: number;
}

/** Options of `nack`. */
export interface NackOptions {
  /** The message becomes visible again after this delay (default 0). */
  delay_ms?: number;
}

/** Options of `subscribe`. */
export interface SubscribeOptions {
  /** Most unacked deliveries outstanding for the subscription (default 10). */
  prefetch?: number;
}

/** Why a leased message came back without an ack. */
export type ReturnReason = "visibility_timeout" | "nack" | "owner_closed" | "unsubscribed" | "restart";

/** Kept on a message in a dead-letter queue: why and after how many receives it was moved. */
export interface DeadLetterInfo {
  reason: "max_receives";
  source_queue: string;
  receive_count: number;
  last_return: ReturnReason;
  dead_lettered_at: number;
}

/** A received message: the wire `QueueMessage`, plus `dead_letter` for messages of a dead-letter queue. */
export type ReceivedMessage = QueueMessage & { dead_letter?: DeadLetterInfo };

/** Counts of one queue (PROTOCOL section 5). */
export interface QueueStats {
  visible: number;
  in_flight: number;
  delayed: number;
  /** Messages moved out after `max_receives` (to the DLQ, or discarded without one), since creation. */
  dead_lettered: number;
  /** Messages accepted by `send` (duplicates not counted), since creation. */
  sent: number;
  /** Deliveries settled: acks, plus at-most-once deliveries (removed when delivered), since creation. */
  acked: number;
}

/** One row of `list`. */
export interface QueueInfo extends QueueStats {
  name: string;
  type: QueueType;
  durable: boolean;
}

/** The answer to `delete`: the counts at the moment it was deleted. */
export interface DeleteResult extends QueueStats {
  deleted: true;
}

/** The answer to `purge`: how many messages were removed, and the counts after. */
export interface PurgeResult extends QueueStats {
  purged: number;
}

/** A message pushed to a subscription (the core's output; the service turns it into a `queue-delivery` frame). */
export interface Delivery {
  subscription_id: string;
  /** The connection that owns the subscription. */
  owner: string;
  message: ReceivedMessage;
}
