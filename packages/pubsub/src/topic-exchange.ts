import type { CatalogChange, LocalEntryInput, TopicEntry } from "@mpreg/catalog";
import {
  MAX_PATTERNS_PER_SUBSCRIPTION,
  MAX_PUBSUB_BATCH,
  MpregError,
  createLogger,
  type PubsubMessage,
  type PubsubNotification,
  type PubsubNotificationBatch,
  type PubsubNotificationMessage,
  type SubscriptionBacklog,
  type SubscriptionRequest,
} from "@mpreg/envelope";
import { type CompiledPattern, TopicTrie, compilePattern, validateTopic } from "@mpreg/router";
import { BoundedIdSet } from "./bounded-id-set.js";
import { type ExchangeOptions, type ResolvedExchangeOptions, resolveExchangeOptions } from "./exchange-options.js";
import { type InterestChange, LocalInterest, MAX_ADVERTISED_PATTERN_LENGTH, topicEntryFor } from "./local-interest.js";
import { checkId, checkPublishedMessage, checkRemoteMessage } from "./message-check.js";
import { NotificationQueue, type QueueBudget } from "./notification-queue.js";
import { RemoteInterestIndex } from "./remote-interest.js";
import { RetentionStore } from "./retention-store.js";

const log = createLogger("pubsub");

/**
 * Where the notifications of one owner (a connection) go. The exchange writes to it only while
 * `canWrite()` is true; otherwise they wait in the subscription's bounded queue until the
 * driver calls `flush(owner)` (e.g. when the connection's buffer drained).
 */
export interface NotificationSink {
  /** True when the owner can take another notification now (e.g. buffered bytes under a mark). */
  canWrite(): boolean;
  /** Takes one notification (encode and send it). A throw counts it as dropped and stops the flush. */
  write(notification: PubsubNotification): void;
  /**
   * Takes several notifications of one subscription in one frame (2 to
   * {@link MAX_NOTIFICATION_BATCH} messages, at most {@link MAX_NOTIFICATION_BATCH_BYTES}
   * estimated bytes unless the first alone is larger). Used only for subscriptions made with
   * `batch: true`; a sink without it gets their notifications one by one. A throw counts the
   * batch as dropped and stops the flush.
   */
  writeBatch?(batch: PubsubNotificationBatch): void;
}

/** Most notifications in one `pubsub-notification-batch` (the fabric's delivery batch bound too). */
export const MAX_NOTIFICATION_BATCH = MAX_PUBSUB_BATCH;
/** A notification batch stops before its messages pass this many (estimated) bytes. */
export const MAX_NOTIFICATION_BATCH_BYTES = 256 * 1024;

/** The outcome of `publish`. */
export interface PublishResult {
  /** The message as delivered (`message_id`, `publisher`, `timestamp`, `headers` completed). */
  readonly message: PubsubNotificationMessage;
  /** True when `message_id` was seen before: nothing was delivered, retained or forwarded. */
  readonly duplicate: boolean;
  /** Local subscriptions the message was handed to (written to a sink or queued). */
  readonly delivered: number;
  /** Other nodes to send the message to (each has a matching pattern): each once. */
  readonly forwardTo: readonly string[];
  /** Estimated bytes of the message (payload, headers, topic, ids), as the limits count them. */
  readonly size: number;
}

/** The outcome of `deliverRemote`. */
export interface RemoteDeliveryResult {
  readonly message: PubsubNotificationMessage;
  readonly duplicate: boolean;
  readonly delivered: number;
}

/** The outcome of `subscribe`. */
export interface SubscribeResult {
  readonly subscription_id: string;
  /** Retained messages queued for it (sent by the next `flush(owner)`, after the ack). */
  readonly backlog: number;
  /** True when an existing subscription of the same owner got new patterns. */
  readonly replaced: boolean;
}

/** Counters of the exchange (monotonic unless said otherwise). */
export interface ExchangeStats {
  /** Messages accepted by `publish` (duplicates excluded). */
  readonly published: number;
  /** Messages accepted from other nodes by `deliverRemote` (duplicates excluded). */
  readonly received: number;
  /** Notifications handed to a sink or taken by `take`. */
  readonly delivered: number;
  /** Notifications dropped because a subscription's queue was full (slow subscriber) or its sink threw. */
  readonly dropped: number;
  /** Notifications still queued when their subscription ended. */
  readonly discarded: number;
  /** Sends decided for other nodes (one per target node per message). */
  readonly forwarded: number;
  /** Messages or notifications suppressed because their message_id was seen already. */
  readonly deduplicated: number;
  /** Sink writes that threw. */
  readonly sinkErrors: number;
  /** Now: subscriptions, owners holding any, notifications queued, distinct local patterns. */
  readonly subscriptions: number;
  readonly owners: number;
  readonly queued: number;
  /** Now: estimated bytes queued over all subscriptions (at most `maxQueuedBytes`). */
  readonly queuedBytes: number;
  readonly distinctPatterns: number;
  /** Now: other nodes and (node, pattern) pairs in the forwarding index; patterns it refused (monotonic). */
  readonly remoteNodes: number;
  readonly remotePatterns: number;
  readonly remoteRefused: number;
  /** Now: retained messages and their estimated bytes; evicted is monotonic. */
  readonly retainedCount: number;
  readonly retainedBytes: number;
  readonly retentionEvicted: number;
}

/** One subscription, for inspection. */
export interface SubscriptionInfo {
  readonly subscription_id: string;
  readonly owner: string;
  readonly patterns: readonly string[];
  readonly queued: number;
  readonly queuedBytes: number;
  readonly delivered: number;
  readonly dropped: number;
}

interface Sub {
  readonly id: string;
  readonly owner: Owner;
  patterns: string[];
  readonly queue: NotificationQueue;
  /** Asked for `pubsub-notification-batch` pushes (`subscription.batch`). */
  batch: boolean;
  dedup: BoundedIdSet | undefined;
  delivered: number;
  dropped: number;
  /** In `owner.pending` (its queue is not empty). */
  pending: boolean;
}

interface Owner {
  readonly id: string;
  sink: NotificationSink | undefined;
  readonly subs: Map<string, Sub>;
  /** Subscriptions with queued notifications, in the order they became non-empty. */
  readonly pending: Set<Sub>;
}

/** Notifications written per subscription per round of a flush: an owner's subscriptions take turns. */
const FLUSH_BATCH = 64;

/**
 * The AMQP-style topic exchange of one node (PROTOCOL section 4), sans I/O.
 *
 * - Subscriptions belong to an owner (a connection id) and end with it (`closeOwner`).
 * - `publish` checks and completes a message, delivers it to every matching local
 *   subscription once (dedup by `message_id`, per node and per subscription), retains it for
 *   backlog, and returns the other nodes to forward it to (from the catalog's topic entries).
 * - `deliverRemote` takes a message from another node: local delivery only, never forwarded
 *   again (relaying over several hops is the fabric's job).
 * - Delivery goes to the owner's {@link NotificationSink} while it can write; otherwise into the
 *   subscription's bounded queue, whose oldest notifications are dropped when full. The
 *   publisher never waits and memory stays bounded.
 * - The node's interest (its distinct patterns) is reported by `takeInterestChanges()` for the
 *   catalog; other nodes' interest comes in through `applyCatalogChange`.
 *
 * Clock and id generator are injected; nothing here touches a socket or a timer.
 */
export class TopicExchange {
  readonly nodeId: string;
  private readonly o: ResolvedExchangeOptions;
  private readonly trie: TopicTrie<Sub>;
  private readonly subs = new Map<string, Sub>();
  private readonly owners = new Map<string, Owner>();
  private readonly pendingOwners = new Set<Owner>();
  /** Owners whose batched subscriptions got live notifications this turn (see `flushDeferred`). */
  private readonly deferred = new Set<Owner>();
  private readonly local = new LocalInterest();
  private readonly remote: RemoteInterestIndex;
  private readonly seen: BoundedIdSet;
  private readonly retention: RetentionStore;
  /** Bytes queued over all subscriptions, against `maxQueuedBytes`. */
  private readonly budget: QueueBudget;
  private c = { published: 0, received: 0, delivered: 0, dropped: 0, discarded: 0, forwarded: 0, deduplicated: 0, sinkErrors: 0 };

  /** @throws {MpregError} 1002 naming the first bad option. */
  constructor(options: ExchangeOptions) {
    this.o = resolveExchangeOptions(options);
    this.nodeId = this.o.nodeId;
    this.trie = new TopicTrie<Sub>({ maxEntries: this.o.maxPatternEntries });
    this.remote = new RemoteInterestIndex(this.nodeId, this.o.maxRemotePatterns);
    this.seen = new BoundedIdSet(this.o.dedupWindow);
    this.retention = new RetentionStore(this.o.retention);
    this.budget = { bytes: 0, max: this.o.maxQueuedBytes };
  }

  // -------------------------------------------------------------------------------------------
  // Publishing
  // -------------------------------------------------------------------------------------------

  /**
   * Accepts a message published on this node: checks it, completes `message_id` (a new id when
   * absent), `publisher` (this node), `timestamp` (now) and `headers` ({} when absent), delivers
   * it to the matching local subscriptions, retains it, and returns the other nodes to forward
   * it to. A `message_id` seen before is a duplicate: accepted (the publish is idempotent) but
   * not delivered, retained or forwarded again.
   *
   * @throws {MpregError} 1002 naming the problem (topic with a wildcard or an empty segment,
   *   missing payload, payload or headers over the limit, bad message_id).
   */
  publish(input: PubsubMessage): PublishResult {
    return this.accept(checkPublishedMessage(input, this.o));
  }

  /**
   * `publish` of several messages, all or nothing: every message is checked first, and the
   * first bad one refuses the lot (nothing is delivered, retained or forwarded); then each is
   * accepted in order exactly as `publish` would (dedup by `message_id` included).
   *
   * @throws {MpregError} 1002 naming `messages[i]…` of the first bad message (`details.index`
   *   is `i`), or `messages` itself when it is not an array of 1 to {@link MAX_PUBSUB_BATCH}.
   */
  publishBatch(inputs: readonly PubsubMessage[]): PublishResult[] {
    if (!Array.isArray(inputs) || inputs.length === 0 || inputs.length > MAX_PUBSUB_BATCH) {
      throw MpregError.invalid(`messages must be an array of 1 to ${MAX_PUBSUB_BATCH} messages`, "messages");
    }
    const checked: ReturnType<typeof checkPublishedMessage>[] = new Array(inputs.length);
    for (let i = 0; i < inputs.length; i++) {
      try {
        checked[i] = checkPublishedMessage(inputs[i], this.o, `messages[${i}]`);
      } catch (e) {
        if (e instanceof MpregError) throw new MpregError(e.code, e.message, { ...e.details, index: i });
        throw e;
      }
    }
    const out: PublishResult[] = new Array(checked.length);
    for (let i = 0; i < checked.length; i++) out[i] = this.accept(checked[i]!);
    return out;
  }

  private accept(checked: ReturnType<typeof checkPublishedMessage>): PublishResult {
    const m = checked.message;
    const message: PubsubNotificationMessage = {
      topic: m.topic,
      payload: m.payload,
      headers: m.headers ?? {},
      message_id: m.message_id ?? this.o.newId(),
      publisher: this.nodeId,
      timestamp: this.o.now(),
    };
    if (!this.seen.add(message.message_id)) {
      this.c.deduplicated++;
      return { message, duplicate: true, delivered: 0, forwardTo: [], size: checked.size };
    }
    this.c.published++;
    this.retention.add(message, checked.size, message.timestamp);
    const delivered = this.deliverLocal(message, checked.segments, checked.size);
    const forwardTo = this.remote.targets(checked.segments);
    this.c.forwarded += forwardTo.length;
    return { message, duplicate: false, delivered, forwardTo, size: checked.size };
  }

  /**
   * Accepts a message forwarded by another node (the payload of its pub/sub fabric message):
   * delivered to local subscriptions and retained, never forwarded again by the exchange. A
   * message_id already seen (published here, or arrived by another path) is dropped.
   *
   * @throws {MpregError} 1002 when `raw` is not a complete, valid notification message.
   */
  deliverRemote(raw: unknown): RemoteDeliveryResult {
    const checked = checkRemoteMessage(raw, this.o);
    const message = checked.message;
    if (!this.seen.add(message.message_id)) {
      this.c.deduplicated++;
      return { message, duplicate: true, delivered: 0 };
    }
    this.c.received++;
    this.retention.add(message, checked.size, this.o.now());
    return { message, duplicate: false, delivered: this.deliverLocal(message, checked.segments, checked.size) };
  }

  /** The other nodes a message on `topic` would be forwarded to (1002 when the topic is malformed). */
  forwardTargets(topic: string): string[] {
    return [...this.remote.targets(validateTopic(topic, "topic"))];
  }

  private deliverLocal(message: PubsubNotificationMessage, segments: readonly string[], size: number): number {
    if (this.trie.size === 0) return 0;
    let n = 0;
    for (const sub of this.trie.matchSegments(segments)) if (this.offer(sub, message, size, true)) n++;
    return n;
  }

  /**
   * Hands one message to one subscription: straight to the sink when nothing of this
   * subscription waits and the sink can write (keeps publish order), else to its queue.
   * `live` false (backlog) only queues, so the subscribe ack can be sent first. A batched
   * subscription whose sink can write queues it too, until `flushDeferred` at the end of the
   * turn sends what gathered in as few frames as the batch bounds allow; what waits is sent
   * first when one more would pass those bounds or the queue's limits, so nothing is dropped
   * for the wait.
   */
  private offer(sub: Sub, message: PubsubNotificationMessage, size: number, live: boolean): boolean {
    if (this.o.subscriptionDedupWindow > 0) {
      sub.dedup ??= new BoundedIdSet(this.o.subscriptionDedupWindow);
      if (!sub.dedup.add(message.message_id)) {
        this.c.deduplicated++;
        return false;
      }
    }
    const owner = sub.owner;
    const frame: PubsubNotification = { role: "pubsub-notification", subscription_id: sub.id, message };
    const sink = owner.sink;
    const deferred = live && sink !== undefined && sub.batch && sink.writeBatch !== undefined && sink.canWrite();
    if (deferred) {
      const q = sub.queue;
      if (q.length > 0 && (q.length >= MAX_NOTIFICATION_BATCH || q.bytes + size > MAX_NOTIFICATION_BATCH_BYTES || q.wouldDrop(size))) {
        this.flushOwner(owner);
      }
      this.deferred.add(owner);
    } else if (live && sub.queue.length === 0 && sink !== undefined && sink.canWrite()) {
      this.write(sink, sub, frame);
      return true;
    }
    const dropped = sub.queue.push(frame, size);
    if (dropped > 0) {
      sub.dropped += dropped;
      this.c.dropped += dropped;
    }
    // Empty only when the node's queue budget refused this very notification.
    if (sub.queue.length === 0) return true;
    if (!sub.pending) {
      sub.pending = true;
      owner.pending.add(sub);
      this.pendingOwners.add(owner);
    }
    if (live && !deferred && sink !== undefined && sink.canWrite()) this.flushOwner(owner);
    return true;
  }

  /**
   * Sends one frame of `sub`'s queued notifications: a batch as large as the bounds allow, or
   * a single notification when only one waits. Returns how many were written, -1 when the sink
   * threw (they count as dropped).
   */
  private writeBatch(sink: NotificationSink, sub: Sub): number {
    const q = sub.queue;
    if (q.length === 1) return this.write(sink, sub, q.shift() as PubsubNotification) ? 1 : -1;
    const messages: PubsubNotificationMessage[] = [];
    let bytes = 0;
    while (q.length > 0 && messages.length < MAX_NOTIFICATION_BATCH) {
      const size = q.peekSize();
      if (messages.length > 0 && bytes + size > MAX_NOTIFICATION_BATCH_BYTES) break;
      bytes += size;
      messages.push((q.shift() as PubsubNotification).message);
    }
    const k = messages.length;
    try {
      sink.writeBatch!({ role: "pubsub-notification-batch", subscription_id: sub.id, messages });
    } catch (e) {
      sub.dropped += k;
      this.c.dropped += k;
      this.c.sinkErrors++;
      log.warn(`notification sink of ${sub.owner.id} threw; ${k} notifications dropped`, e);
      return -1;
    }
    sub.delivered += k;
    this.c.delivered += k;
    return k;
  }

  private write(sink: NotificationSink, sub: Sub, frame: PubsubNotification): boolean {
    try {
      sink.write(frame);
    } catch (e) {
      sub.dropped++;
      this.c.dropped++;
      this.c.sinkErrors++;
      log.warn(`notification sink of ${sub.owner.id} threw; notification dropped`, e);
      return false;
    }
    sub.delivered++;
    this.c.delivered++;
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // Subscriptions
  // -------------------------------------------------------------------------------------------

  /**
   * Adds a subscription owned by `owner` (a connection id). Without `subscription_id` a new id
   * is made. An id already owned by the same owner is replaced (its patterns updated, its
   * queue kept); an id owned by another owner is refused. With `backlog`, the retained
   * messages matching the patterns (younger than `seconds`, the newest `max`, at most
   * `maxQueuedPerSubscription`) are queued for it: send the ack, then call `flush(owner)`.
   *
   * @throws {MpregError} 1002 for a malformed request or pattern (naming it), 1007 when a
   *   limit (subscriptions, per owner, patterns) is reached.
   */
  subscribe(owner: string, request: SubscriptionRequest): SubscribeResult {
    checkId(owner, "owner", true);
    const req = request as unknown as Record<string, unknown>;
    if (typeof req !== "object" || req === null) throw MpregError.invalid("subscription must be an object", "subscription");
    const id = checkId(req.subscription_id, "subscription.subscription_id", false) ?? this.o.newId();
    const patterns = checkPatterns(req.patterns);
    const backlog = checkBacklog(req.backlog);
    if (req.batch !== undefined && req.batch !== null && typeof req.batch !== "boolean") {
      throw MpregError.invalid("subscription.batch must be a boolean", "subscription.batch");
    }
    const batch = req.batch === true;

    const existing = this.subs.get(id);
    if (existing !== undefined && existing.owner.id !== owner) {
      throw MpregError.invalid(`subscription_id ${JSON.stringify(id)} is in use by another connection`, "subscription.subscription_id");
    }
    const ownerState = this.owners.get(owner);
    if (existing === undefined) {
      if (this.subs.size >= this.o.maxSubscriptions) {
        throw MpregError.overloaded(`this node holds ${this.o.maxSubscriptions} subscriptions`);
      }
      if (ownerState !== undefined && ownerState.subs.size >= this.o.maxSubscriptionsPerOwner) {
        throw MpregError.overloaded(`this connection holds ${this.o.maxSubscriptionsPerOwner} subscriptions`);
      }
    }
    const old = existing?.patterns ?? [];
    const oldSet = new Set(old);
    const added = patterns.filter((p) => !oldSet.has(p));
    const newSet = new Set(patterns);
    const removed = old.filter((p) => !newSet.has(p));
    if (this.trie.size + added.length - removed.length > this.o.maxPatternEntries) {
      throw MpregError.overloaded(`this node holds ${this.o.maxPatternEntries} subscription patterns`);
    }
    const fresh = added.filter((p) => !this.local.has(p)).length;
    if (fresh > 0 && this.local.distinct + fresh > this.o.maxDistinctPatterns) {
      throw MpregError.overloaded(`this node advertises ${this.o.maxDistinctPatterns} distinct patterns`);
    }

    // Checked: from here on nothing throws.
    let sub = existing;
    if (sub === undefined) {
      const o = ownerState ?? this.ownerFor(owner);
      sub = {
        id,
        owner: o,
        patterns: [],
        queue: new NotificationQueue(this.o.maxQueuedPerSubscription, this.o.maxQueuedBytesPerSubscription, this.budget),
        batch,
        dedup: undefined,
        delivered: 0,
        dropped: 0,
        pending: false,
      };
      this.subs.set(id, sub);
      o.subs.set(id, sub);
    }
    for (const p of added) {
      this.trie.add(p, sub);
      this.local.add(p);
    }
    for (const p of removed) {
      this.trie.remove(p, sub);
      this.local.remove(p);
    }
    sub.patterns = patterns;
    sub.batch = batch;

    let queued = 0;
    if (backlog !== undefined) {
      const now = this.o.now();
      const since = backlog.seconds === undefined ? -Infinity : now - backlog.seconds * 1000;
      const max = Math.min(backlog.max ?? Infinity, this.o.maxQueuedPerSubscription);
      const compiled: CompiledPattern[] = patterns.map((p) => compilePattern(p));
      for (const r of this.retention.query(compiled, since, max, now)) {
        if (this.offer(sub, r.message, r.size, false)) queued++;
      }
    }
    return { subscription_id: id, backlog: queued, replaced: existing !== undefined };
  }

  /**
   * Ends one subscription of `owner`; its queued notifications are discarded.
   *
   * @throws {MpregError} 1001 when `owner` has no subscription with this id.
   */
  unsubscribe(owner: string, subscriptionId: string): void {
    const sub = typeof subscriptionId === "string" ? this.subs.get(subscriptionId) : undefined;
    if (sub === undefined || sub.owner.id !== owner) {
      throw MpregError.notFound(`no subscription ${JSON.stringify(subscriptionId)} on this connection`, {
        subscription_id: subscriptionId,
      });
    }
    this.removeSub(sub);
    const o = sub.owner;
    if (o.subs.size === 0 && o.sink === undefined) this.owners.delete(o.id);
  }

  /**
   * The owner (connection) closed: ends all its subscriptions and forgets its sink. Returns
   * how many subscriptions ended. Unknown owners are fine (0).
   */
  closeOwner(owner: string): number {
    const o = this.owners.get(owner);
    if (o === undefined) return 0;
    const n = o.subs.size;
    for (const sub of [...o.subs.values()]) this.removeSub(sub);
    this.pendingOwners.delete(o);
    this.deferred.delete(o);
    this.owners.delete(owner);
    return n;
  }

  private removeSub(sub: Sub): void {
    for (const p of sub.patterns) {
      this.trie.remove(p, sub);
      this.local.remove(p);
    }
    this.c.discarded += sub.queue.clear();
    const o = sub.owner;
    if (sub.pending) {
      sub.pending = false;
      o.pending.delete(sub);
      if (o.pending.size === 0) this.pendingOwners.delete(o);
    }
    o.subs.delete(sub.id);
    this.subs.delete(sub.id);
  }

  private ownerFor(id: string): Owner {
    let o = this.owners.get(id);
    if (o === undefined) this.owners.set(id, (o = { id, sink: undefined, subs: new Map(), pending: new Set() }));
    return o;
  }

  // -------------------------------------------------------------------------------------------
  // Draining
  // -------------------------------------------------------------------------------------------

  /**
   * Sets where `owner`'s notifications go (replacing an earlier sink) and flushes what waits.
   * Without a sink, an owner's notifications wait (bounded) until `take` or a sink comes.
   */
  attach(owner: string, sink: NotificationSink): void {
    checkId(owner, "owner", true);
    const o = this.ownerFor(owner);
    o.sink = sink;
    this.flushOwner(o);
  }

  /**
   * Writes `owner`'s queued notifications to its sink while it can write; returns how many.
   * Call it when the owner's connection drained, and right after sending a subscribe ack (the
   * backlog waits for it).
   */
  flush(owner: string): number {
    const o = this.owners.get(owner);
    return o === undefined ? 0 : this.flushOwner(o);
  }

  /** `flush` for every owner with queued notifications (for a driver's periodic tick). */
  flushAll(): number {
    let n = 0;
    for (const o of [...this.pendingOwners]) n += this.flushOwner(o);
    return n;
  }

  /**
   * Sends what batched subscriptions gathered during this turn (one frame per subscription
   * and batch bound). Call it at the end of each event-loop turn in which messages were
   * published or delivered (`PubsubService` does, in a microtask); `flush`/`flushAll` send it
   * too. Returns how many notifications were written.
   */
  flushDeferred(): number {
    if (this.deferred.size === 0) return 0;
    let n = 0;
    for (const o of this.deferred) n += this.flushOwner(o);
    this.deferred.clear();
    return n;
  }

  /** True when batched notifications wait for `flushDeferred`. */
  hasDeferred(): boolean {
    return this.deferred.size > 0;
  }

  /** Owners with queued notifications (their sink could not write, or they have none). */
  pendingOwnerIds(): string[] {
    return [...this.pendingOwners].map((o) => o.id);
  }

  /** True when some owner has notifications waiting (`pendingOwnerIds()` is not empty). */
  hasPendingOwners(): boolean {
    return this.pendingOwners.size > 0;
  }

  /**
   * Pull instead of push: removes and returns up to `max` queued notifications of `owner`
   * (its subscriptions take turns; each subscription's order is kept).
   */
  take(owner: string, max: number): PubsubNotification[] {
    const out: PubsubNotification[] = [];
    const o = this.owners.get(owner);
    if (o === undefined) return out;
    while (out.length < max && o.pending.size > 0) {
      for (const sub of o.pending) {
        for (let k = 0; k < FLUSH_BATCH && out.length < max; k++) {
          const f = sub.queue.shift();
          if (f === undefined) break;
          out.push(f);
          sub.delivered++;
          this.c.delivered++;
        }
        if (sub.queue.length === 0) this.settle(o, sub);
        if (out.length >= max) break;
      }
    }
    return out;
  }

  private flushOwner(o: Owner): number {
    const sink = o.sink;
    if (sink === undefined) return 0;
    let n = 0;
    const batching = sink.writeBatch !== undefined;
    while (o.pending.size > 0) {
      for (const sub of o.pending) {
        if (sub.batch && batching) {
          // One frame per round: the owner's subscriptions still take turns.
          if (sub.queue.length > 0) {
            if (!sink.canWrite()) return n;
            const k = this.writeBatch(sink, sub);
            if (k < 0) {
              if (sub.queue.length === 0) this.settle(o, sub);
              return n;
            }
            n += k;
          }
          if (sub.queue.length === 0) this.settle(o, sub);
          continue;
        }
        for (let k = 0; k < FLUSH_BATCH; k++) {
          if (sub.queue.length === 0) break;
          if (!sink.canWrite()) return n;
          const f = sub.queue.shift() as PubsubNotification;
          if (!this.write(sink, sub, f)) {
            if (sub.queue.length === 0) this.settle(o, sub);
            return n;
          }
          n++;
        }
        if (sub.queue.length === 0) this.settle(o, sub);
      }
    }
    return n;
  }

  /** A subscription's queue became empty. */
  private settle(o: Owner, sub: Sub): void {
    sub.pending = false;
    o.pending.delete(sub);
    if (o.pending.size === 0) this.pendingOwners.delete(o);
  }

  // -------------------------------------------------------------------------------------------
  // Interest (catalog)
  // -------------------------------------------------------------------------------------------

  /**
   * The net change of this node's distinct patterns since the last call: register a catalog
   * `topic` entry for each `added`, unregister each `removed` (see `applyInterestChange`).
   */
  takeInterestChanges(): InterestChange {
    return this.local.take();
  }

  /** The catalog entries this node should hold now: one per distinct pattern. */
  localTopicEntries(): LocalEntryInput[] {
    return this.local.patterns().map(topicEntryFor);
  }

  /** Feeds one catalog change (added/updated/removed entry) into the forwarding index. */
  applyCatalogChange(change: CatalogChange): void {
    this.remote.applyChange(change);
  }

  /** `applyCatalogChange` for each change (e.g. the result of `catalog.expire(now)`). */
  applyCatalogChanges(changes: Iterable<CatalogChange>): void {
    for (const ch of changes) this.remote.applyChange(ch);
  }

  /** Rebuilds the forwarding index from a full list (e.g. `catalog.topics()` at start). */
  resetRemoteInterest(entries: Iterable<TopicEntry>): void {
    this.remote.reset(entries);
  }

  /** Forgets a node's interest (it left the fabric). */
  removeNode(nodeId: string): void {
    this.remote.removeNode(nodeId);
  }

  // -------------------------------------------------------------------------------------------
  // Inspection
  // -------------------------------------------------------------------------------------------

  stats(): ExchangeStats {
    this.retention.evictExpired(this.o.now());
    let queued = 0;
    for (const o of this.pendingOwners) for (const s of o.pending) queued += s.queue.length;
    const r = this.retention.stats();
    const ri = this.remote.stats();
    return {
      ...this.c,
      subscriptions: this.subs.size,
      owners: this.owners.size,
      queued,
      queuedBytes: this.budget.bytes,
      distinctPatterns: this.local.distinct,
      remoteNodes: ri.nodes,
      remotePatterns: ri.patterns,
      remoteRefused: ri.refused,
      retainedCount: r.count,
      retainedBytes: r.bytes,
      retentionEvicted: r.evicted,
    };
  }

  /** One subscription's state, or undefined when unknown. */
  subscription(subscriptionId: string): SubscriptionInfo | undefined {
    const s = this.subs.get(subscriptionId);
    if (s === undefined) return undefined;
    return {
      subscription_id: s.id,
      owner: s.owner.id,
      patterns: [...s.patterns],
      queued: s.queue.length,
      queuedBytes: s.queue.bytes,
      delivered: s.delivered,
      dropped: s.dropped,
    };
  }

  /** Ids of `owner`'s subscriptions. */
  subscriptionsOf(owner: string): string[] {
    return [...(this.owners.get(owner)?.subs.keys() ?? [])];
  }
}

function checkPatterns(v: unknown): string[] {
  if (!Array.isArray(v) || v.length === 0) {
    throw MpregError.invalid("subscription.patterns must be a non-empty array of patterns", "subscription.patterns");
  }
  if (v.length > MAX_PATTERNS_PER_SUBSCRIPTION) {
    throw MpregError.invalid(`subscription.patterns has more than ${MAX_PATTERNS_PER_SUBSCRIPTION} patterns`, "subscription.patterns");
  }
  const out = new Set<string>();
  for (let i = 0; i < v.length; i++) {
    const p: unknown = v[i];
    const path = `subscription.patterns[${i}]`;
    compilePattern(p as string, path);
    if ((p as string).length > MAX_ADVERTISED_PATTERN_LENGTH) {
      throw MpregError.invalid(`topic pattern longer than ${MAX_ADVERTISED_PATTERN_LENGTH} characters cannot be advertised`, path);
    }
    out.add(p as string);
  }
  return [...out];
}

function checkBacklog(v: unknown): SubscriptionBacklog | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) throw MpregError.invalid("subscription.backlog must be an object", "subscription.backlog");
  const b = v as Record<string, unknown>;
  if (b.seconds !== undefined && (typeof b.seconds !== "number" || !(b.seconds >= 0))) {
    throw MpregError.invalid("subscription.backlog.seconds must be a number >= 0", "subscription.backlog.seconds");
  }
  if (b.max !== undefined && (typeof b.max !== "number" || !Number.isInteger(b.max) || b.max < 0)) {
    throw MpregError.invalid("subscription.backlog.max must be an integer >= 0", "subscription.backlog.max");
  }
  return {
    ...(b.seconds !== undefined ? { seconds: b.seconds as number } : {}),
    ...(b.max !== undefined ? { max: b.max as number } : {}),
  };
}
