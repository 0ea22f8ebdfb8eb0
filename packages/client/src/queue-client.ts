import { MpregError, type QueueMessage } from "@mpreg/envelope";
import type { ClientCore } from "./client-core.js";
import { QueueSubscription, type QueueSubscribeOptions } from "./queue-subscription.js";

/** Options of `mpreg.queue.create` (PROTOCOL section 5). */
export interface QueueCreateOptions {
  type?: "standard" | "fifo" | "priority";
  visibility_timeout_ms?: number;
  max_receives?: number;
  dead_letter_queue?: string;
  delay_ms?: number;
  dedup_window_ms?: number;
  max_messages?: number;
  durable?: boolean;
}

/** Options of `mpreg.queue.send`. */
export interface QueueSendOptions {
  delay_ms?: number;
  priority?: number;
  group_id?: string;
  dedup_id?: string;
  delivery?: "at_least_once" | "at_most_once" | "broadcast" | "quorum";
  quorum?: number;
}

/** Options of `mpreg.queue.receive`. */
export interface QueueReceiveOptions {
  /** 1..100, default 1. */
  max?: number;
  /** Long poll: wait up to this long for a message (0..20 000 ms). */
  wait_ms?: number;
  visibility_timeout_ms?: number;
}

/** Counts of `mpreg.queue.stats`. */
export interface QueueStats {
  visible: number;
  in_flight: number;
  delayed: number;
  dead_lettered: number;
  sent: number;
  acked: number;
  [field: string]: unknown;
}

/** Extra time given to a call beyond a long poll's `wait_ms`. */
const LONG_POLL_MARGIN_MS = 5000;

/**
 * A received queue message (from `receive` or a queue subscription) with helpers that settle
 * it through its receipt. After a failover the receipt may be stale (the message was released
 * when its connection closed): `ack` then rejects with 1001 and the message comes back.
 */
export class ReceivedMessage implements QueueMessage {
  readonly message_id: string;
  readonly receipt: string;
  readonly body: unknown;
  readonly receive_count: number;
  readonly sent_at: number;
  readonly group_id?: string;
  readonly priority?: number;
  /** On a message of a dead-letter queue: its source queue, why and when it was moved. */
  readonly dead_letter?: QueueMessage["dead_letter"];

  constructor(
    private readonly queue: QueueClient,
    m: QueueMessage,
  ) {
    this.message_id = m.message_id;
    this.receipt = m.receipt;
    this.body = m.body;
    this.receive_count = m.receive_count;
    this.sent_at = m.sent_at;
    if (m.group_id !== undefined) this.group_id = m.group_id;
    if (m.priority !== undefined) this.priority = m.priority;
    if (m.dead_letter !== undefined) this.dead_letter = m.dead_letter;
  }

  /** Deletes the message from the queue. */
  ack(): Promise<void> {
    return this.queue.ack(this.receipt);
  }

  /** Makes the message visible again (after `delay_ms`). */
  nack(options: { delay_ms?: number } = {}): Promise<void> {
    return this.queue.nack(this.receipt, options);
  }

  /** Keeps the message invisible `ms` longer. */
  extend(ms: number): Promise<void> {
    return this.queue.extend(this.receipt, ms);
  }
}

/**
 * One queue (`client.queue(name)`), over the `mpreg.queue.*` built-ins. Reads (`stats`) and
 * `create` (idempotent with the same options) are sent as idempotent requests; the other
 * operations are not, so a connection lost before their reply fails them with 1005.
 */
export class QueueClient {
  /** Use `client.queue(name)`. */
  constructor(
    private readonly core: ClientCore,
    readonly name: string,
  ) {
    if (typeof name !== "string" || name.length === 0) throw MpregError.invalid("a queue name must be a non-empty string", "name");
  }

  /** Creates the queue (same options again: `created: false`). */
  create(options: QueueCreateOptions = {}): Promise<{ name: string; created: boolean }> {
    return this.core.call("mpreg.queue.create", [this.name, options], { idempotent: true }) as Promise<{ name: string; created: boolean }>;
  }

  /** Sends one message; `duplicate` is true when a FIFO queue already saw its `dedup_id`. */
  send(body: unknown, options: QueueSendOptions = {}): Promise<{ message_id: string; duplicate: boolean }> {
    return this.core.call("mpreg.queue.send", [this.name, body, options]) as Promise<{ message_id: string; duplicate: boolean }>;
  }

  /** Receives up to `max` messages, waiting up to `wait_ms` for the first. */
  async receive(options: QueueReceiveOptions = {}): Promise<ReceivedMessage[]> {
    const wait = typeof options.wait_ms === "number" && options.wait_ms > 0 ? options.wait_ms : 0;
    const callOpts = wait > 0 ? { timeout_ms: Math.max(30_000, wait + LONG_POLL_MARGIN_MS) } : {};
    const r = await this.core.call("mpreg.queue.receive", [this.name, options], callOpts);
    if (!Array.isArray(r)) throw MpregError.invalid("mpreg.queue.receive answered something other than a list", "result");
    return (r as QueueMessage[]).map((m) => new ReceivedMessage(this, m));
  }

  /** Deletes a received message; a stale receipt is 1001. */
  async ack(receipt: string): Promise<void> {
    await this.core.call("mpreg.queue.ack", [this.name, receipt]);
  }

  /** Makes a received message visible again (after `delay_ms`). */
  async nack(receipt: string, options: { delay_ms?: number } = {}): Promise<void> {
    await this.core.call("mpreg.queue.nack", [this.name, receipt, options]);
  }

  /** Keeps a received message invisible `ms` longer. */
  async extend(receipt: string, ms: number): Promise<void> {
    await this.core.call("mpreg.queue.extend", [this.name, receipt, ms]);
  }

  /** The queue's counts. */
  stats(): Promise<QueueStats> {
    return this.core.call("mpreg.queue.stats", [this.name], { idempotent: true }) as Promise<QueueStats>;
  }

  /** Removes every message (the queue stays). */
  purge(): Promise<Record<string, unknown>> {
    return this.core.call("mpreg.queue.purge", [this.name]) as Promise<Record<string, unknown>>;
  }

  /** Deletes the queue. */
  delete(): Promise<Record<string, unknown>> {
    return this.core.call("mpreg.queue.delete", [this.name]) as Promise<Record<string, unknown>>;
  }

  /**
   * Consumes the queue: messages are pushed to this connection (at most `prefetch` unacked at
   * once) and read with `for await`; each has `ack()`. Made again on each new connection.
   */
  async subscribe(options: QueueSubscribeOptions = {}): Promise<QueueSubscription> {
    const sub = new QueueSubscription(this.core, this, options);
    await sub.start();
    return sub;
  }
}
