import { MpregError, newId } from "@mpreg/envelope";
import type { RetentionLimits } from "./retention-store.js";

/**
 * Tunables of a {@link TopicExchange}. Every limit says what happens when it is reached; all
 * are validated once by the constructor (1002 naming the option).
 */
export interface ExchangeOptions {
  /** This node's id: the `publisher` of messages accepted here. Its own catalog entries are ignored. */
  readonly nodeId: string;
  /** Clock in milliseconds since the Unix epoch (notification `timestamp`, retention age). */
  readonly now: () => number;
  /** Makes a message or subscription id when the client gave none. Default: ULID (`newId`). */
  readonly newId?: () => string;
  /**
   * Largest payload of one message, in estimated bytes (see `estimateBytes`). Larger: the
   * publish is refused with 1002. Default 1 MiB (the transport accepts 20 MiB frames; a
   * pub/sub message is copied into queues and retention, so it is held to less).
   */
  readonly maxPayloadBytes?: number;
  /** Largest `headers` object of one message, in estimated bytes; larger is 1002. Default 16 KiB. */
  readonly maxHeaderBytes?: number;
  /** Most subscriptions on this node; one more is refused with 1007. Default 10 000. */
  readonly maxSubscriptions?: number;
  /** Most subscriptions of one owner (connection); one more is refused with 1007. Default 1 000. */
  readonly maxSubscriptionsPerOwner?: number;
  /**
   * Most (pattern, subscription) pairs on this node (the local matcher's size); a subscribe
   * that would pass it is refused with 1007. Default 100 000.
   */
  readonly maxPatternEntries?: number;
  /**
   * Most distinct patterns over all subscriptions of this node. Each is one catalog entry, so
   * this bounds what the node advertises; a subscribe adding a new pattern beyond it is
   * refused with 1007. Default 4 096 (keep it below the catalog's `maxLocalEntries`).
   */
  readonly maxDistinctPatterns?: number;
  /**
   * Most notifications waiting for one subscription's owner. When full, the OLDEST waiting
   * notification is dropped (counted in `dropped`): a slow subscriber loses messages, the
   * publisher never waits. Default 1 024. Also caps how many backlog messages one subscribe gets.
   */
  readonly maxQueuedPerSubscription?: number;
  /** Most estimated bytes waiting for one subscription; past it its oldest are dropped. Default 4 MiB. */
  readonly maxQueuedBytesPerSubscription?: number;
  /**
   * Most estimated bytes waiting over all subscriptions of the node. Past it, the subscription
   * being pushed to drops its own oldest notifications (the slow ones are the ones holding
   * bytes), or the new notification when it holds none. Default 256 MiB.
   */
  readonly maxQueuedBytes?: number;
  /**
   * Message ids the node remembers to drop a message seen again (a client retry, a second path
   * through the mesh): at least the last `dedupWindow`, at most twice as many (older ones are
   * forgotten a generation at a time). Default 65 536.
   */
  readonly dedupWindow?: number;
  /**
   * Message ids remembered per subscription, the same way (at least this many, at most twice):
   * a backstop for the node window, and what keeps a re-subscribe of the same id with backlog
   * from repeating what it already got. 0 turns it off. Default 128.
   */
  readonly subscriptionDedupWindow?: number;
  /** Retention (backlog) limits: age in ms (default 1 h), messages (default 10 000, 0 = off), bytes (default 64 MiB). */
  readonly retention?: Partial<RetentionLimits>;
  /**
   * Most (node, pattern) pairs indexed from other nodes' catalog entries. Beyond it a remote
   * pattern is not indexed (counted in `remoteRefused`): messages are not forwarded for it.
   * Default 100 000 (the catalog's own bound on remote entries).
   */
  readonly maxRemotePatterns?: number;
}

/** Options with every default filled in. */
export interface ResolvedExchangeOptions {
  readonly nodeId: string;
  readonly now: () => number;
  readonly newId: () => string;
  readonly maxPayloadBytes: number;
  readonly maxHeaderBytes: number;
  readonly maxSubscriptions: number;
  readonly maxSubscriptionsPerOwner: number;
  readonly maxPatternEntries: number;
  readonly maxDistinctPatterns: number;
  readonly maxQueuedPerSubscription: number;
  readonly maxQueuedBytesPerSubscription: number;
  readonly maxQueuedBytes: number;
  readonly dedupWindow: number;
  readonly subscriptionDedupWindow: number;
  readonly retention: RetentionLimits;
  readonly maxRemotePatterns: number;
}

/** Default limits (see {@link ExchangeOptions} for what each means). */
export const EXCHANGE_DEFAULTS = Object.freeze({
  maxPayloadBytes: 1024 * 1024,
  maxHeaderBytes: 16 * 1024,
  maxSubscriptions: 10_000,
  maxSubscriptionsPerOwner: 1_000,
  maxPatternEntries: 100_000,
  maxDistinctPatterns: 4_096,
  maxQueuedPerSubscription: 1_024,
  maxQueuedBytesPerSubscription: 4 * 1024 * 1024,
  maxQueuedBytes: 256 * 1024 * 1024,
  dedupWindow: 65_536,
  subscriptionDedupWindow: 128,
  retentionMaxAgeMs: 3_600_000,
  retentionMaxMessages: 10_000,
  retentionMaxBytes: 64 * 1024 * 1024,
  maxRemotePatterns: 100_000,
});

function int(v: number | undefined, def: number, name: string, min: number): number {
  const x = v ?? def;
  if (!Number.isSafeInteger(x) || x < min) throw MpregError.invalid(`${name} must be an integer >= ${min}`, name);
  return x;
}

function ms(v: number | undefined, def: number, name: string): number {
  const x = v ?? def;
  if (typeof x !== "number" || Number.isNaN(x) || x < 0) throw MpregError.invalid(`${name} must be a number of ms >= 0`, name);
  return x;
}

/** Checks the options once and fills in the defaults; 1002 naming the first bad option. */
export function resolveExchangeOptions(o: ExchangeOptions): ResolvedExchangeOptions {
  if (typeof o !== "object" || o === null) throw MpregError.invalid("options must be an object", "options");
  if (typeof o.nodeId !== "string" || o.nodeId.length === 0) throw MpregError.invalid("nodeId must be a non-empty string", "nodeId");
  if (typeof o.now !== "function") throw MpregError.invalid("now must be a function returning ms", "now");
  if (o.newId !== undefined && typeof o.newId !== "function") throw MpregError.invalid("newId must be a function", "newId");
  const d = EXCHANGE_DEFAULTS;
  const r = o.retention ?? {};
  return {
    nodeId: o.nodeId,
    now: o.now,
    newId: o.newId ?? newId,
    maxPayloadBytes: int(o.maxPayloadBytes, d.maxPayloadBytes, "maxPayloadBytes", 1),
    maxHeaderBytes: int(o.maxHeaderBytes, d.maxHeaderBytes, "maxHeaderBytes", 1),
    maxSubscriptions: int(o.maxSubscriptions, d.maxSubscriptions, "maxSubscriptions", 1),
    maxSubscriptionsPerOwner: int(o.maxSubscriptionsPerOwner, d.maxSubscriptionsPerOwner, "maxSubscriptionsPerOwner", 1),
    maxPatternEntries: int(o.maxPatternEntries, d.maxPatternEntries, "maxPatternEntries", 1),
    maxDistinctPatterns: int(o.maxDistinctPatterns, d.maxDistinctPatterns, "maxDistinctPatterns", 1),
    maxQueuedPerSubscription: int(o.maxQueuedPerSubscription, d.maxQueuedPerSubscription, "maxQueuedPerSubscription", 1),
    maxQueuedBytesPerSubscription: int(
      o.maxQueuedBytesPerSubscription,
      d.maxQueuedBytesPerSubscription,
      "maxQueuedBytesPerSubscription",
      1,
    ),
    maxQueuedBytes: int(o.maxQueuedBytes, d.maxQueuedBytes, "maxQueuedBytes", 1),
    dedupWindow: int(o.dedupWindow, d.dedupWindow, "dedupWindow", 1),
    subscriptionDedupWindow: int(o.subscriptionDedupWindow, d.subscriptionDedupWindow, "subscriptionDedupWindow", 0),
    retention: {
      maxAgeMs: ms(r.maxAgeMs, d.retentionMaxAgeMs, "retention.maxAgeMs"),
      maxMessages: int(r.maxMessages, d.retentionMaxMessages, "retention.maxMessages", 0),
      maxBytes: int(r.maxBytes, d.retentionMaxBytes, "retention.maxBytes", 0),
    },
    maxRemotePatterns: int(o.maxRemotePatterns, d.maxRemotePatterns, "maxRemotePatterns", 1),
  };
}
