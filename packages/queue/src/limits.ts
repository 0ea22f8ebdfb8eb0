import { MpregError } from "@mpreg/envelope";

/**
 * Bounds of a queue service. Every structure the core keeps is capped by one of these; what
 * happens when a cap is reached is given with each (docs/queue.md, "Limits").
 */
export interface QueueLimits {
  /** Most queues (dead-letter queues included). `create` past it: 1007. Default 10,000. */
  maxQueues: number;
  /** Upper bound of the `max_messages` option. Default 1,000,000. */
  maxMessagesPerQueue: number;
  /** `max_messages` of a queue created without one. Default 100,000. */
  defaultMaxMessages: number;
  /** Most messages held by all queues together; a send past it: 1007. Default 1,000,000. */
  maxTotalMessages: number;
  /** Most body bytes (MessagePack size) held by all queues together; a send past it: 1007. Default 512 MiB. */
  maxTotalBytes: number;
  /** Largest body (MessagePack size); a larger one: 1002 naming `body`. Default 1 MiB. */
  maxBodyBytes: number;
  /** Most long-poll receives waiting at once; one more: 1007. Default 10,000. */
  maxWaiters: number;
  /** Most push subscriptions at once; one more: 1007. Default 10,000. */
  maxSubscriptions: number;
  /** Upper bound of `prefetch`. Default 1,000. */
  maxPrefetch: number;
  /** Most remembered `dedup_id`s per queue; a send with a new one past it: 1007. Default 100,000. */
  maxDedupEntries: number;
  /** Most quorum sends waiting for acks; one more: 1007. Default 10,000. */
  maxPendingQuorum: number;
  /** Upper bound of visibility timeouts, `extend` and `quorum_timeout_ms` (ms). Default 12 h (as SQS). */
  maxVisibilityTimeoutMs: number;
  /** Upper bound of `delay_ms` on create, send and nack (ms). Default 15 min (as SQS). */
  maxDelayMs: number;
  /** Upper bound of `dedup_window_ms` (ms). Default 24 h. */
  maxDedupWindowMs: number;
  /** Upper bound of `max_receives`. Default 1,000. */
  maxMaxReceives: number;
}

/** The default limits. */
export const DEFAULT_LIMITS: Readonly<QueueLimits> = Object.freeze({
  maxQueues: 10_000,
  maxMessagesPerQueue: 1_000_000,
  defaultMaxMessages: 100_000,
  maxTotalMessages: 1_000_000,
  maxTotalBytes: 512 * 1024 * 1024,
  maxBodyBytes: 1024 * 1024,
  maxWaiters: 10_000,
  maxSubscriptions: 10_000,
  maxPrefetch: 1_000,
  maxDedupEntries: 100_000,
  maxPendingQuorum: 10_000,
  maxVisibilityTimeoutMs: 12 * 3600_000,
  maxDelayMs: 15 * 60_000,
  maxDedupWindowMs: 24 * 3600_000,
  maxMaxReceives: 1_000,
});

/**
 * Fills in the defaults and checks each limit once (positive safe integers, and
 * `defaultMaxMessages <= maxMessagesPerQueue`); a bad one is 1002 naming `limits.<name>`.
 */
export function resolveLimits(input: Partial<QueueLimits> | undefined): QueueLimits {
  const out: QueueLimits = { ...DEFAULT_LIMITS };
  if (input === undefined) return out;
  if (typeof input !== "object" || input === null) throw MpregError.invalid("limits must be an object", "limits");
  for (const [k, v] of Object.entries(input)) {
    if (!(k in DEFAULT_LIMITS)) throw MpregError.invalid(`unknown limit ${k}`, `limits.${k}`);
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) {
      throw MpregError.invalid(`limits.${k} must be a positive integer`, `limits.${k}`);
    }
    out[k as keyof QueueLimits] = v;
  }
  if (out.defaultMaxMessages > out.maxMessagesPerQueue) {
    throw MpregError.invalid("limits.defaultMaxMessages must not exceed maxMessagesPerQueue", "limits.defaultMaxMessages");
  }
  return out;
}
