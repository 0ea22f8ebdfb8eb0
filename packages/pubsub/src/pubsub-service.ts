import { createLogger, type PubsubAck, type PubsubNotificationMessage, type UnifiedMessage } from "@mpreg/envelope";
import type { ServicePort } from "@mpreg/fabric";
import type { ExchangeOptions } from "./exchange-options.js";
import { topicEntryFor, topicEntryKey } from "./local-interest.js";
import { TopicExchange, type NotificationSink } from "./topic-exchange.js";
import { handlePubsubRequest, type PubsubRequestFrame } from "./wire-adapter.js";

const log = createLogger("pubsub");

/** Fabric topic of a publish forwarded to a node with matching interest. */
export const PUBSUB_DELIVER_TOPIC = "mpreg.pubsub.deliver";

/**
 * Most pub/sub messages carried in one fabric message to one node. Messages forwarded to the
 * same node in one event-loop turn travel together: one frame, one set of routing headers and
 * one decode for the lot instead of one per message (docs/pubsub.md "Performance").
 */
export const MAX_DELIVERY_BATCH = 256;
/** A batch whose messages add up to this many (estimated) bytes is sent at once. */
export const MAX_DELIVERY_BATCH_BYTES = 256 * 1024;

/** Messages waiting for the end of the turn to be forwarded to one node. */
interface Outbox {
  messages: PubsubNotificationMessage[];
  bytes: number;
}

/** Options of {@link PubsubService}. */
export interface PubsubServiceOptions {
  /** The node's fabric (or any implementation of the service port). */
  port: ServicePort;
  /** Limits of the exchange (see `ExchangeOptions`); `nodeId` comes from the port. */
  exchange?: Omit<ExchangeOptions, "nodeId" | "now">;
  /** Clock; default `Date.now`. */
  now?: () => number;
  /**
   * While some owner has notifications waiting (its connection could not take them), they are
   * retried this often. Default 5 ms.
   */
  retryFlushMs?: number;
}

/**
 * Pub/sub as a fabric service: the topic exchange of this node, its interest advertised in the
 * catalog (one `topic` entry per distinct pattern), publishes forwarded once to each node with a
 * matching pattern, and publishes from other nodes delivered to the local subscriptions.
 *
 * The node's duties: `attach(connId, sink)` when a connection opens, `handle(connId, frame,
 * sendAck)` for each `pubsub-*` request, `closeOwner(connId)` when it closes, `close()` at stop.
 */
export class PubsubService {
  readonly exchange: TopicExchange;
  private readonly detach: (() => void)[] = [];
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly retryFlushMs: number;
  /** Publishes to forward at the end of this turn, by target node. */
  private readonly outbox = new Map<string, Outbox>();
  private forwardScheduled = false;

  constructor(private readonly opts: PubsubServiceOptions) {
    const { port } = opts;
    this.retryFlushMs = opts.retryFlushMs ?? 5;
    this.exchange = new TopicExchange({ ...(opts.exchange ?? {}), nodeId: port.nodeId, now: opts.now ?? Date.now });
    this.exchange.resetRemoteInterest(port.catalog.topics());
    this.detach.push(
      port.handle(
        PUBSUB_DELIVER_TOPIC,
        (msg) => {
          // One message, or (from nodes of this cluster that batch) an array of them in publish order.
          const payload = msg.payload;
          if (Array.isArray(payload)) for (const m of payload) this.deliverRemote(m, msg);
          else this.deliverRemote(payload, msg);
          // Pending notifications of batched subscriptions are the deferred flush's (it re-arms).
          if (!this.scheduleDeferred()) this.armRetry();
        },
        // From another cluster: only topics this cluster offers to the cluster it came through
        // (such publishes are never batched, see `forward`).
        { acceptForeign: (msg) => ({ kind: "topic", name: String((msg.payload as { topic?: unknown } | null)?.topic) }) },
      ),
      port.onCatalogChange((change) => this.exchange.applyCatalogChange(change)),
    );
  }

  /** Where the connection `owner`'s notifications go. */
  attach(owner: string, sink: NotificationSink): void {
    this.exchange.attach(owner, sink);
  }

  /**
   * Answers one pub/sub request of connection `owner`: the ack first (through `sendAck`), then
   * the forwards of an accepted publish and the backlog of a new subscription.
   */
  handle(owner: string, frame: PubsubRequestFrame, sendAck: (ack: PubsubAck) => void): void {
    const reply = handlePubsubRequest(this.exchange, frame, owner);
    sendAck(reply.ack);
    const pub = reply.publish;
    if (pub !== undefined && !pub.duplicate) {
      for (const nodeId of pub.forwardTo) this.forward(nodeId, pub.message, pub.size);
    }
    const pubs = reply.publishes;
    if (pubs !== undefined) {
      for (const p of pubs) if (!p.duplicate) for (const nodeId of p.forwardTo) this.forward(nodeId, p.message, p.size);
    }
    if (reply.subscribe !== undefined) this.exchange.flush(owner);
    const deferred = this.scheduleDeferred();
    this.syncInterest();
    if (!deferred) this.armRetry();
  }

  private deferredScheduled = false;
  private readonly flushDeferredTask = (): void => {
    this.deferredScheduled = false;
    this.exchange.flushDeferred();
    this.armRetry();
  };

  /**
   * Batched subscriptions (`subscription.batch`) gather this turn's notifications: they leave
   * at its end, in a microtask, as few `pubsub-notification-batch` frames as the bounds allow.
   */
  private scheduleDeferred(): boolean {
    if (this.deferredScheduled) return true;
    if (!this.exchange.hasDeferred()) return false;
    this.deferredScheduled = true;
    queueMicrotask(this.flushDeferredTask);
    return true;
  }

  /** The connection `owner` closed: its subscriptions end. */
  closeOwner(owner: string): void {
    if (this.exchange.closeOwner(owner) > 0) this.syncInterest();
  }

  /** Tries again to hand waiting notifications to connections that can take them now. */
  flushAll(): void {
    this.exchange.flushAll();
    this.armRetry();
  }

  close(): void {
    this.sendForwards();
    this.exchange.flushDeferred();
    for (const d of this.detach.splice(0)) d();
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /**
   * Queues `message` for `nodeId` until the end of this turn (a microtask), or sends the batch
   * now when it reached {@link MAX_DELIVERY_BATCH} messages or {@link MAX_DELIVERY_BATCH_BYTES}.
   * Order per node is kept: a batch holds messages in publish order and batches leave in turn.
   */
  private forward(nodeId: string, message: PubsubNotificationMessage, size: number): void {
    // A federating node sends one by one: the export policy of a route to another cluster is
    // checked per topic, which a batch of several topics cannot carry.
    if (this.opts.port.foreign !== undefined) {
      this.sendDelivery(nodeId, message, message.message_id);
      return;
    }
    let box = this.outbox.get(nodeId);
    if (box === undefined) {
      box = { messages: [], bytes: 0 };
      this.outbox.set(nodeId, box);
    }
    box.messages.push(message);
    box.bytes += size;
    if (box.messages.length >= MAX_DELIVERY_BATCH || box.bytes >= MAX_DELIVERY_BATCH_BYTES) {
      this.outbox.delete(nodeId);
      this.sendBatch(nodeId, box.messages);
    } else if (!this.forwardScheduled) {
      this.forwardScheduled = true;
      queueMicrotask(this.sendForwardsTask);
    }
  }

  private readonly sendForwardsTask = (): void => this.sendForwards();

  /** Sends every queued batch. */
  private sendForwards(): void {
    this.forwardScheduled = false;
    if (this.outbox.size === 0) return;
    for (const [nodeId, box] of this.outbox) this.sendBatch(nodeId, box.messages);
    this.outbox.clear();
  }

  /** One fabric message for the lot (one message: the message itself, as older nodes expect). */
  private sendBatch(nodeId: string, messages: PubsubNotificationMessage[]): void {
    if (messages.length === 1) {
      this.sendDelivery(nodeId, messages[0]!, messages[0]!.message_id);
      return;
    }
    // A batch too large for one peer frame is refused by the port: then one by one.
    if (!this.sendDelivery(nodeId, messages, undefined)) for (const m of messages) this.sendDelivery(nodeId, m, m.message_id);
  }

  /** False only when the port refused the message (too large); a missing route is logged. */
  private sendDelivery(nodeId: string, payload: PubsubNotificationMessage | PubsubNotificationMessage[], traceId: string | undefined): boolean {
    const { port } = this.opts;
    const what = Array.isArray(payload) ? `${payload.length} publishes` : `publish ${payload.message_id}`;
    // A single message's trace is its own id (no fresh trace id per message).
    const msg = port.message({ topic: PUBSUB_DELIVER_TOPIC, message_type: "pubsub", payload, ...(traceId === undefined ? {} : { trace_id: traceId }) });
    try {
      // The topic of a single message is checked against the policies of a route to another cluster.
      const service = Array.isArray(payload) ? undefined : ({ kind: "topic", name: payload.topic } as const);
      if (!port.send(nodeId, msg, service)) log.debug(`${what} not forwarded to ${nodeId}: no route`);
      return true;
    } catch (e) {
      if (Array.isArray(payload)) log.debug(`${what} to ${nodeId} refused as one frame (${(e as Error).message}): sent one by one`);
      else log.warn(`${what} not forwarded to ${nodeId}: ${(e as Error).message}`);
      return false;
    }
  }

  private deliverRemote(message: unknown, from: UnifiedMessage): void {
    try {
      this.exchange.deliverRemote(message);
    } catch (e) {
      log.warn(`dropped a malformed publish from ${from.headers.source_node}: ${(e as Error).message}`);
    }
  }

  /** Announces patterns that gained their first subscriber, withdraws those that lost their last. */
  private syncInterest(): void {
    const { port } = this.opts;
    const change = this.exchange.takeInterestChanges();
    for (const p of change.added) {
      try {
        port.announce(topicEntryFor(p));
      } catch (e) {
        log.warn(`cannot advertise pattern ${p}: ${(e as Error).message}`);
      }
    }
    for (const p of change.removed) port.withdraw(topicEntryKey(port.nodeId, p));
  }

  private armRetry(): void {
    if (this.retryTimer !== undefined || !this.exchange.hasPendingOwners()) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.flushAll();
    }, this.retryFlushMs);
    this.retryTimer.unref?.();
  }
}
