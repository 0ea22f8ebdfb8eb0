import { createLogger, type PubsubAck } from "@mpreg/envelope";
import type { ServicePort } from "@mpreg/fabric";
import type { ExchangeOptions } from "./exchange-options.js";
import { topicEntryFor, topicEntryKey } from "./local-interest.js";
import { TopicExchange, type NotificationSink } from "./topic-exchange.js";
import { handlePubsubRequest, type PubsubRequestFrame } from "./wire-adapter.js";

const log = createLogger("pubsub");

/** Fabric topic of a publish forwarded to a node with matching interest. */
export const PUBSUB_DELIVER_TOPIC = "mpreg.pubsub.deliver";

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

  constructor(private readonly opts: PubsubServiceOptions) {
    const { port } = opts;
    this.retryFlushMs = opts.retryFlushMs ?? 5;
    this.exchange = new TopicExchange({ ...(opts.exchange ?? {}), nodeId: port.nodeId, now: opts.now ?? Date.now });
    this.exchange.resetRemoteInterest(port.catalog.topics());
    this.detach.push(
      port.handle(
        PUBSUB_DELIVER_TOPIC,
        (msg) => {
          try {
            this.exchange.deliverRemote(msg.payload);
          } catch (e) {
            log.warn(`dropped a malformed publish from ${msg.headers.source_node}: ${(e as Error).message}`);
          }
          this.armRetry();
        },
        // From another cluster: only topics this cluster offers to the cluster it came through.
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
    if (reply.publish !== undefined && !reply.publish.duplicate) {
      const { port } = this.opts;
      for (const nodeId of reply.publish.forwardTo) {
        const msg = port.message({ topic: PUBSUB_DELIVER_TOPIC, message_type: "pubsub", payload: reply.publish.message });
        try {
          // The topic is checked against the policies of a route to another cluster.
          if (!port.send(nodeId, msg, { kind: "topic", name: reply.publish.message.topic })) log.debug(`publish ${reply.publish.message.message_id} not forwarded to ${nodeId}: no route`);
        } catch (e) {
          log.warn(`publish ${reply.publish.message.message_id} not forwarded to ${nodeId}: ${(e as Error).message}`);
        }
      }
    }
    if (reply.subscribe !== undefined) this.exchange.flush(owner);
    this.syncInterest();
    this.armRetry();
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
    for (const d of this.detach.splice(0)) d();
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
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
    if (this.retryTimer !== undefined || this.exchange.pendingOwnerIds().length === 0) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.flushAll();
    }, this.retryFlushMs);
    this.retryTimer.unref?.();
  }
}
