import { MpregError } from "@mpreg/envelope";

/**
 * Tunables of a GossipNode. Defaults follow memberlist's LAN profile (probe 1 s, timeout
 * 500 ms, 3 indirect checks, gossip 200 ms to 3 nodes, suspicion 4·log10(n), retransmit
 * 4·⌈log10(n+1)⌉) with a shorter anti-entropy period (10 s instead of 30 s).
 */
export interface GossipConfig {
  /** One member is probed per interval (scaled by local health). Default 1000 ms. */
  probeIntervalMs: number;
  /** Wait for a direct ack before asking others (scaled by local health). Default 500 ms. */
  probeTimeoutMs: number;
  /** Members asked to probe indirectly (ping-req). Default 3. */
  indirectChecks: number;
  /** Minimum suspicion = mult · max(1, log10(n)) · probeInterval. Default 4. */
  suspicionMult: number;
  /** Maximum suspicion = this · minimum; confirmations shrink it towards the minimum. Default 6. */
  suspicionMaxTimeoutMult: number;
  /** Each update is sent on at most mult · ⌈log10(n+1)⌉ messages. Default 4. */
  retransmitMult: number;
  /** Period of the push of queued updates. Default 200 ms. */
  gossipIntervalMs: number;
  /** Members pushed to per gossip interval. Default 3. */
  gossipFanout: number;
  /** Period of the digest exchange with one random member. Default 10 000 ms. */
  antiEntropyIntervalMs: number;
  /**
   * While nothing changes (no membership event, no local publish, nothing repaired by
   * anti-entropy; items received by push do not count), each sync period is
   * twice the previous one, up to this multiple of the anti-entropy period; a change brings the
   * next sync back to one period. 1 turns the backoff off. Default 4.
   */
  antiEntropyMaxBackoff: number;
  /** Members declared dead are still gossiped to for this long, so they can refute. Default 30 000 ms. */
  gossipToTheDeadMs: number;
  /** Local health (Lifeguard awareness) ceiling: timeouts grow up to this factor. Default 8. */
  awarenessMax: number;
  /** Updates (members + items) piggybacked on one message at most. Default 16. */
  maxPiggyback: number;
  /**
   * Item bytes per message at most, when the owner gives `itemSize` (otherwise only the count
   * limits apply). An item larger than this still travels, alone. Default 65 536.
   */
  maxMessageBytes: number;
  /** Updates waiting for dissemination at most (oldest-spread dropped beyond). Default 4096. */
  maxBroadcastQueue: number;
  /** Item keys held at most (new keys refused beyond). Default 100 000. */
  maxItems: number;
  /** Members known at most (unknown newcomers ignored beyond; dead/left pruned first). Default 10 000. */
  maxMembers: number;
  /** Digest entries per anti-entropy window. Default 2048. */
  maxDigestEntries: number;
  /** Items per anti-entropy reply or push. Default 512. */
  maxSyncItems: number;
  /** Dead/left members are remembered this long (refutation, reconnect). Default 300 000 ms. */
  tombstoneMs: number;
  /** ping-req relays pending at most. Default 1024. */
  maxPendingRelays: number;
  /** Undrained outgoing messages at most (oldest dropped beyond; gossip tolerates loss). Default 10 000. */
  maxOutbox: number;
  /** Undrained events at most (oldest dropped beyond, counted). Default 10 000. */
  maxEvents: number;
  /** Members told directly about a GOODBYE (besides normal gossip). Default 8. */
  goodbyeFanout: number;
  /**
   * The most a claim learned from someone else may move an incarnation, an integer >= 1.
   * Default 1000. It bounds (a) claims about a member from others: at most this far above the
   * highest incarnation the member announced to this node itself (0 if it never did), and
   * (b) how far this node raises its own incarnation to refute a claim about itself (a claim at
   * most `own + step`). Since (a) keeps every held incarnation within (b), a member can always
   * refute, and a forger burns at most `step + 1` of its 2^53 incarnations per forged message.
   * See docs/cluster.md, "Security".
   */
  maxIncarnationStep: number;
}

/** The defaults (documented in docs/cluster.md). */
export const DEFAULT_GOSSIP_CONFIG: Readonly<GossipConfig> = Object.freeze({
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectChecks: 3,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  retransmitMult: 4,
  gossipIntervalMs: 200,
  gossipFanout: 3,
  antiEntropyIntervalMs: 10_000,
  antiEntropyMaxBackoff: 4,
  gossipToTheDeadMs: 30_000,
  awarenessMax: 8,
  maxPiggyback: 16,
  maxMessageBytes: 65_536,
  maxBroadcastQueue: 4096,
  maxItems: 100_000,
  maxMembers: 10_000,
  maxDigestEntries: 2048,
  maxSyncItems: 512,
  tombstoneMs: 300_000,
  maxPendingRelays: 1024,
  maxOutbox: 10_000,
  maxEvents: 10_000,
  goodbyeFanout: 8,
  maxIncarnationStep: 1000,
});

/** Fills defaults and rejects nonsense with MpregError INVALID_REQUEST. */
export function resolveConfig(partial: Partial<GossipConfig> = {}): GossipConfig {
  const c: GossipConfig = { ...DEFAULT_GOSSIP_CONFIG, ...partial };
  for (const [k, v] of Object.entries(c)) {
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
      throw MpregError.invalid(`gossip config ${k} must be a finite number >= 0, got ${String(v)}`, `config.${k}`);
    }
  }
  const positive: (keyof GossipConfig)[] = [
    "probeIntervalMs",
    "probeTimeoutMs",
    "gossipIntervalMs",
    "antiEntropyIntervalMs",
    "antiEntropyMaxBackoff",
    "awarenessMax",
    "maxPiggyback",
    "maxMessageBytes",
    "maxBroadcastQueue",
    "maxItems",
    "maxMembers",
    "maxDigestEntries",
    "maxSyncItems",
    "maxOutbox",
    "maxEvents",
    "retransmitMult",
    "suspicionMult",
    "maxIncarnationStep",
  ];
  for (const k of positive) if (c[k] <= 0) throw MpregError.invalid(`gossip config ${k} must be > 0`, `config.${k}`);
  if (c.probeTimeoutMs > c.probeIntervalMs) {
    throw MpregError.invalid("gossip config probeTimeoutMs must not exceed probeIntervalMs", "config.probeTimeoutMs");
  }
  if (!Number.isSafeInteger(c.maxIncarnationStep)) {
    throw MpregError.invalid("gossip config maxIncarnationStep must be a safe integer >= 1", "config.maxIncarnationStep");
  }
  if (c.suspicionMaxTimeoutMult < 1) throw MpregError.invalid("gossip config suspicionMaxTimeoutMult must be >= 1", "config.suspicionMaxTimeoutMult");
  return c;
}
