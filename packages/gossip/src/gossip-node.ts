import { MpregError, createLogger } from "@mpreg/envelope";
import { BroadcastQueue } from "./broadcast-queue.js";
import { resolveConfig, type GossipConfig } from "./config.js";
import { ItemStore } from "./item-store.js";
import { supersedes } from "./merge-rules.js";
import type {
  GossipEvent,
  GossipItem,
  GossipMessage,
  GossipRandom,
  MemberInfo,
  MemberStatus,
  MemberUpdate,
  Outgoing,
  Piggyback,
  SyncReplyMessage,
  SyncRequestMessage,
} from "./types.js";
import { checkItem, checkMessage, type WireLimits } from "./validate.js";

const log = createLogger("gossip");

/** Options of {@link GossipNode}. */
export interface GossipNodeOptions {
  /** This node's id (what peers use as `to`). */
  id: string;
  /** Opaque metadata gossiped with this node's alive facts (e.g. its URL). */
  meta?: unknown;
  config?: Partial<GossipConfig>;
  /** Injected randomness (a seeded generator in tests). */
  random: GossipRandom;
  /** Current time in ms (any monotonic origin). */
  now: number;
  /**
   * Estimated wire size of an item in bytes (e.g. its MessagePack length). When given, the
   * items of one message stay under `config.maxMessageBytes`.
   */
  itemSize?: (item: GossipItem) => number;
}

/** What {@link GossipNode.drain} hands back. */
export interface GossipOutput {
  messages: Outgoing[];
  events: GossipEvent[];
}

/**
 * Why a membership claim from the network was refused (see docs/cluster.md, "Security"):
 * - `unsafe_incarnation`: the message held an incarnation that is not a safe integer >= 0 (the
 *   whole message is refused with INVALID_REQUEST);
 * - `incarnation_jump`: a claim about this node more than `maxIncarnationStep` above its own
 *   incarnation, or a claim not from the member more than that above what the member announced
 *   to this node itself (its anchor; 0 if it never spoke here);
 * - `hearsay_raise`: the same for an `alive` claim about a known member, not from that member;
 * - `beyond_announced`: a suspect/dead/left claim at an incarnation above the one this node
 *   knows the member announced (taken at most as a reason to suspect it at the known one).
 */
export type ClaimRefusal = "unsafe_incarnation" | "incarnation_jump" | "hearsay_raise" | "beyond_announced";

/** Counters for metrics and tests. */
export interface GossipStats {
  probes: number;
  probeFailures: number;
  indirectProbes: number;
  suspicionsRaised: number;
  refutations: number;
  deathsDeclared: number;
  itemsApplied: number;
  itemsRefused: number;
  membersRefused: number;
  syncRequests: number;
  outboxDropped: number;
  eventsDropped: number;
  relaysDropped: number;
  misdirectedPings: number;
  /** Nacks sent as a helper of an indirect probe, and received as a prober. */
  nacksSent: number;
  nacksReceived: number;
  /** Messages refused as malformed (handleMessage threw INVALID_REQUEST). */
  messagesRefused: number;
  /** Membership claims refused, by reason (for `/metrics`, one label per reason). */
  claimsRefused: Record<ClaimRefusal, number>;
  /** Hearsay of a death or departure of a live member, taken only as suspicion. */
  hearsayDowngraded: number;
  /** Direct notices to a member of what this node believes about it (suspicion, death). */
  noticesSent: number;
  /** Messages put in the outbox, by type (idle cost, docs/benchmarks.md). */
  sent: Record<GossipMessage["type"], number>;
  /** Member and item updates piggybacked on pings, acks and pushes (anti-entropy not counted). */
  piggybackedSent: number;
}

interface Suspicion {
  start: number;
  confirmers: Set<string>;
  /** Hearsay said the member left: unless it refutes, it is `left` here at this time (0: no). */
  leaveAt: number;
}

interface Member {
  id: string;
  inc: number;
  status: MemberStatus;
  meta: unknown;
  since: number;
  suspicion: Suspicion | undefined;
  /** Last time this node told the member directly what it believes about it (rate limit). */
  toldAt: number;
  /** The highest incarnation the member announced to this node itself (alive or left); 0 if none. */
  anchor: number;
}

interface Probe {
  target: string;
  seq: number;
  timeoutAt: number;
  endAt: number;
  indirectSent: boolean;
  acked: boolean;
  /** Ping-reqs sent (each helper owes an ack or a nack) and nacks received. */
  expectedNacks: number;
  nacks: number;
}

interface Relay {
  from: string;
  seq: number;
  target: string;
  expiresAt: number;
  /** When to tell `from` that `target` did not answer (Lifeguard nack); 0 once sent. */
  nackAt: number;
}

const isLive = (s: MemberStatus): boolean => s === "alive" || s === "suspect";

/** A claim as admitted: possibly turned into a suspicion, possibly with a pending departure. */
interface Admitted {
  fact: MemberUpdate;
  leave: boolean;
}

/**
 * A sans-I/O SWIM member with piggybacked and pushed dissemination of opaque versioned items
 * and periodic anti-entropy. Feed it messages ({@link handleMessage}) and time ({@link tick});
 * take what it wants sent and what happened with {@link drain}. No timers, sockets or
 * ambient randomness inside: the same inputs always give the same outputs.
 */
export class GossipNode {
  readonly id: string;
  readonly config: GossipConfig;
  readonly stats: GossipStats = {
    probes: 0,
    probeFailures: 0,
    indirectProbes: 0,
    suspicionsRaised: 0,
    refutations: 0,
    deathsDeclared: 0,
    itemsApplied: 0,
    itemsRefused: 0,
    membersRefused: 0,
    syncRequests: 0,
    outboxDropped: 0,
    eventsDropped: 0,
    relaysDropped: 0,
    misdirectedPings: 0,
    nacksSent: 0,
    nacksReceived: 0,
    messagesRefused: 0,
    claimsRefused: { unsafe_incarnation: 0, incarnation_jump: 0, hearsay_raise: 0, beyond_announced: 0 },
    hearsayDowngraded: 0,
    noticesSent: 0,
    sent: { ping: 0, ack: 0, "ping-req": 0, nack: 0, gossip: 0, "sync-req": 0, sync: 0, "sync-push": 0 },
    piggybackedSent: 0,
  };

  private readonly random: GossipRandom;
  private now: number;
  private incarnation = 0;
  private meta: unknown;
  private leaving = false;
  private readonly members = new Map<string, Member>();
  /** Live (alive or suspect) members other than self, for O(1) random choice. */
  private readonly live: string[] = [];
  private readonly liveIndex = new Map<string, number>();
  private readonly suspects = new Set<string>();
  /** Members declared dead less than `gossipToTheDeadMs` ago: they still get gossip so they can refute. */
  private recentDead: string[] = [];
  private readonly store: ItemStore;
  private readonly queue: BroadcastQueue;
  private outbox: Outgoing[] = [];
  private events: GossipEvent[] = [];
  private probeOrder: string[] = [];
  private probeIndex = 0;
  private probe: Probe | undefined;
  private seq = 0;
  private readonly relays = new Map<number, Relay>();
  private awareness = 0;
  private nextProbeAt: number;
  private nextGossipAt: number;
  private nextSyncAt: number;
  private nextGcAt: number;
  private syncCursor = "";
  private seeds: string[] = [];
  /** Changes seen so far (membership events, local publishes, repairs by anti-entropy), and that count at the last sync (backoff). */
  private changes = 0;
  private changesAtSync = 0;
  private syncBackoff = 1;
  private nextJoinRetryAt = 0;
  private readonly limits: WireLimits;
  private readonly budget: { bytes: number; sizeOf: (item: GossipItem) => number } | undefined;

  constructor(opts: GossipNodeOptions) {
    if (typeof opts.id !== "string" || opts.id.length === 0) throw MpregError.invalid("GossipNode id must be a non-empty string", "id");
    if (!Number.isFinite(opts.now)) throw MpregError.invalid("GossipNode now must be a finite number", "now");
    this.id = opts.id;
    this.config = resolveConfig(opts.config);
    this.random = opts.random;
    this.now = opts.now;
    this.meta = opts.meta;
    this.store = new ItemStore(this.config.maxItems);
    this.budget = opts.itemSize ? { bytes: this.config.maxMessageBytes, sizeOf: opts.itemSize } : undefined;
    this.queue = new BroadcastQueue(this.config.maxBroadcastQueue);
    this.limits = {
      maxMembers: this.config.maxMembers,
      maxItems: Math.max(this.config.maxSyncItems, this.config.maxPiggyback),
      maxDigest: this.config.maxDigestEntries,
    };
    this.members.set(this.id, { id: this.id, inc: 0, status: "alive", meta: opts.meta, since: opts.now, suspicion: undefined, toldAt: -Infinity, anchor: 0 });
    // Random phases so that nodes started together do not probe and sync in lockstep.
    this.nextProbeAt = opts.now + this.random.next() * this.config.probeIntervalMs;
    this.nextGossipAt = opts.now + this.random.next() * this.config.gossipIntervalMs;
    this.nextSyncAt = opts.now + this.random.next() * this.config.antiEntropyIntervalMs;
    this.nextGcAt = opts.now + this.config.probeIntervalMs;
  }

  // ---------------------------------------------------------------- public API

  /** This node's current incarnation (bumped to refute suspicion and on meta changes). */
  get currentIncarnation(): number {
    return this.incarnation;
  }

  /** Lifeguard local-health score: 0 is healthy; timeouts are multiplied by score + 1. */
  get localHealth(): number {
    return this.awareness;
  }

  /** Number of live members (alive or suspect) including this node: the n of the log(n) rules. */
  get liveCount(): number {
    return this.live.length + 1;
  }

  /** Every member known, this node included (dead and left ones until their tombstone expires). */
  membersView(): MemberInfo[] {
    return [...this.members.values()].map((m) => ({ id: m.id, incarnation: m.inc, status: m.status, meta: m.meta, since: m.since }));
  }

  /** One member, or undefined. */
  member(id: string): MemberInfo | undefined {
    const m = this.members.get(id);
    return m && { id: m.id, incarnation: m.inc, status: m.status, meta: m.meta, since: m.since };
  }

  /** Ids of live members other than this node. */
  liveMembers(): string[] {
    return this.live.slice();
  }

  /** The current item for `key`. */
  item(key: string): GossipItem | undefined {
    return this.store.get(key);
  }

  /** Every item held. */
  items(): GossipItem[] {
    return [...this.store.values()];
  }

  /** Number of items held. */
  get itemCount(): number {
    return this.store.size;
  }

  /** Updates waiting for dissemination. */
  get pendingBroadcasts(): number {
    return this.queue.size;
  }

  /**
   * Publishes a local change. Returns false (and changes nothing) when the store already holds
   * this key at the same or a newer version. Throws INVALID_REQUEST for a malformed item and
   * OVERLOADED when the store is full and the key is new. No event is emitted for local items.
   */
  publish(item: GossipItem): boolean {
    item = checkItem(item, "item");
    const r = this.store.apply(item);
    if (r === "full") throw MpregError.overloaded(`gossip item store is full (${this.config.maxItems} keys)`);
    if (r === "stale") return false;
    this.queue.enqueueItem(item);
    this.changed();
    return true;
  }

  /**
   * Joins through seeds: a full anti-entropy exchange with each (the server calls this once
   * the seed connections are up). After a {@link leave}, joining again starts a new incarnation.
   */
  join(seedIds: readonly string[], now: number = this.now): void {
    this.setNow(now);
    if (this.leaving) {
      this.leaving = false;
      this.incarnation++;
      this.refreshSelf("alive");
      this.queue.enqueueMember(this.selfUpdate());
    }
    this.seeds = seedIds.filter((s) => s !== this.id).slice(0, this.config.maxMembers);
    this.nextJoinRetryAt = this.now + this.config.probeIntervalMs;
    for (const s of this.seeds) this.linkOpened(s, now);
  }

  /**
   * A transport link to `peerId` opened: run a full sync with it (both catalogs and
   * memberships), unless it is a member this node already holds as alive. A node of a forming
   * cluster opens tens of links to members it learned from its seed's full sync: a full exchange
   * on each made joins cost O(N² · items) in total and kept 60 nodes busy for tens of seconds.
   * Between live members, push gossip and the periodic anti-entropy carry the rest; a member
   * coming back from suspected, dead or unknown still gets the full exchange (partition heal).
   */
  linkOpened(peerId: string, now: number = this.now): void {
    this.setNow(now);
    if (peerId === this.id) return;
    if (this.members.get(peerId)?.status === "alive") return;
    this.sendSyncRequest(peerId, true, "");
  }

  /** Runs a full sync (both catalogs and memberships) with `peerId` now, whatever its status. */
  syncWith(peerId: string, now: number = this.now): void {
    this.setNow(now);
    if (peerId === this.id) return;
    this.sendSyncRequest(peerId, true, "");
  }

  /**
   * GOODBYE: marks this node `left` at its current incarnation, tells up to `goodbyeFanout`
   * live members directly and queues the fact for normal gossip. Afterwards the node stops
   * probing and syncing but keeps answering and pushing its queue until the owner stops it.
   */
  leave(now: number = this.now): void {
    this.setNow(now);
    if (this.leaving) return;
    this.leaving = true;
    this.refreshSelf("left");
    const u = this.selfUpdate();
    this.queue.enqueueMember(u);
    for (const to of this.pickLive(this.config.goodbyeFanout, undefined)) {
      this.send(to, { type: "gossip", members: [u], items: [] });
    }
    this.probe = undefined;
  }

  /** Changes this node's metadata: a new incarnation carries it to everyone. */
  updateMeta(meta: unknown, now: number = this.now): void {
    this.setNow(now);
    this.meta = meta;
    this.incarnation++;
    this.refreshSelf(this.leaving ? "left" : "alive");
    this.queue.enqueueMember(this.selfUpdate());
  }

  /** Takes (and clears) the messages to send and the events that happened. */
  drain(): GossipOutput {
    const out = { messages: this.outbox, events: this.events };
    this.outbox = [];
    this.events = [];
    return out;
  }

  /**
   * Advances time: probes, indirect probes, suspicion timeouts, the gossip push and
   * anti-entropy all happen here. Call it often (every 50–100 ms; late calls are handled).
   */
  tick(now: number): void {
    this.setNow(now);
    if (!this.leaving) {
      // A join whose sync was lost leaves us alone: retry the seeds until someone is known.
      if (this.live.length === 0 && this.seeds.length > 0 && now >= this.nextJoinRetryAt) {
        this.nextJoinRetryAt = now + this.config.probeIntervalMs;
        for (const s of this.seeds) this.sendSyncRequest(s, true, "");
      }
      this.runProbe();
      if (this.relays.size > 0) this.sendNacks();
      this.runSuspicions();
      if (now >= this.nextSyncAt && this.members.size > 1) {
        // Nothing changed since the last sync: the next one comes later (up to antiEntropyMaxBackoff periods).
        this.syncBackoff = this.changes === this.changesAtSync ? Math.min(this.syncBackoff * 2, this.config.antiEntropyMaxBackoff) : 1;
        this.changesAtSync = this.changes;
        this.nextSyncAt = now + this.antiEntropyPeriodMs() * this.syncBackoff * (0.5 + this.random.next());
        const peer = this.pickSyncPeer();
        if (peer !== undefined) this.sendSyncRequest(peer, false, this.syncCursor);
      }
    }
    // A push at most once per gossip interval, and only when there is something to push: an
    // update queued while idle goes out at once, and an idle node does not wake to push nothing.
    if (now >= this.nextGossipAt && this.queue.size > 0 && (this.live.length > 0 || this.recentDead.length > 0)) {
      this.nextGossipAt = now + this.config.gossipIntervalMs;
      this.runGossipPush();
    }
    if (now >= this.nextGcAt && this.hasGarbage()) {
      this.nextGcAt = now + this.config.probeIntervalMs;
      this.collectGarbage();
    }
  }

  /**
   * The earliest time at which `tick` has work to do, so an owner can sleep until then instead
   * of ticking on a fixed short period (an idle node then wakes a few times per probe interval).
   * `handleMessage`, `publish`, `join`, `leave` and `linkOpened` can bring it forward: ask again
   * after each. Ticking earlier is always harmless. Infinity when nothing is due: a lone node
   * without seeds (nobody to probe, sync with or push to, nothing to collect) never wakes.
   */
  nextDueAt(): number {
    let t = Infinity;
    // Nothing to collect (no tombstone, no recently dead member, no relay): garbage collection
    // does not wake the node. `members` holds self, the live members and the tombstones.
    if (this.hasGarbage()) t = Math.min(t, this.nextGcAt);
    // Nobody to sync with (a lone node): anti-entropy waits for a member.
    if (this.members.size > 1) t = Math.min(t, this.nextSyncAt);
    const p = this.probe;
    // Nobody to probe and no probe under way: no probe round is due.
    if (p) t = Math.min(t, Math.max(this.nextProbeAt, p.endAt));
    else if (this.live.length > 0) t = Math.min(t, this.nextProbeAt);
    if (p && !p.acked && !p.indirectSent) t = Math.min(t, p.timeoutAt);
    // Nobody to push to (a lone node): the queue waits for a member instead of waking it.
    if (this.queue.size > 0 && (this.live.length > 0 || this.recentDead.length > 0)) t = Math.min(t, this.nextGossipAt);
    if (this.live.length === 0 && this.seeds.length > 0) t = Math.min(t, this.nextJoinRetryAt);
    for (const r of this.relays.values()) if (r.nackAt !== 0) t = Math.min(t, r.nackAt);
    for (const id of this.suspects) {
      const m = this.members.get(id);
      if (m?.suspicion) t = Math.min(t, m.suspicion.start + this.suspicionTimeoutMs(m.suspicion.confirmers.size - 1));
      else t = Math.min(t, this.now);
    }
    return t;
  }

  /**
   * Handles one message from `from`. Throws MpregError INVALID_REQUEST (and changes nothing)
   * when the message is malformed; the owner should count it and may drop the link.
   */
  handleMessage(from: string, raw: unknown, now: number): void {
    if (typeof from !== "string" || from.length === 0) throw MpregError.invalid("gossip sender id must be a non-empty string", "from");
    let msg: GossipMessage;
    try {
      msg = checkMessage(raw, this.limits);
    } catch (e) {
      this.stats.messagesRefused++;
      if (e instanceof MpregError && /\.inc$/.test(String(e.details.path))) this.stats.claimsRefused.unsafe_incarnation++;
      throw e;
    }
    this.setNow(now);
    if (from === this.id) return;
    this.dispatch(from, msg);
    // A member this node holds suspect, dead or left is talking to it: tell it, so it can refute.
    const sender = this.members.get(from);
    if (sender && sender.status !== "alive" && this.now - sender.toldAt >= this.config.probeIntervalMs) this.tellSubject(sender);
  }

  private dispatch(from: string, msg: GossipMessage): void {
    switch (msg.type) {
      case "ping":
        this.absorb(from, msg);
        if (msg.target !== this.id) {
          this.stats.misdirectedPings++;
          return;
        }
        this.send(from, { type: "ack", seq: msg.seq, target: this.id, ...this.piggyback() });
        return;
      case "ack":
        this.absorb(from, msg);
        this.onAck(msg.seq, msg.target);
        return;
      case "ping-req":
        this.absorb(from, msg);
        this.onPingReq(from, msg.seq, msg.target);
        return;
      case "nack":
        this.absorb(from, msg);
        this.onNack(msg.seq, msg.target);
        return;
      case "gossip":
        this.absorb(from, msg);
        return;
      case "sync-req":
      case "sync":
      case "sync-push": {
        const applied = this.stats.itemsApplied;
        if (msg.type === "sync-req") this.onSyncRequest(from, msg);
        else if (msg.type === "sync") this.onSyncReply(from, msg);
        else for (const it of msg.items) this.applyItem(it, from);
        // Anti-entropy had to repair something (here or, asked for by `want`, at the peer).
        if (this.stats.itemsApplied > applied || (msg.type === "sync" && msg.want.length > 0)) this.changed();
        return;
      }
    }
  }

  // ---------------------------------------------------------------- probing

  private mult(): number {
    return this.awareness + 1;
  }

  private runProbe(): void {
    const p = this.probe;
    const now = this.now;
    if (p && !p.acked && !p.indirectSent && now >= p.timeoutAt) this.sendIndirect(p);
    if (now < this.nextProbeAt) return;
    if (p) {
      if (now < p.endAt) return; // indirect probes sent late still get their full window
      this.finishProbe(p);
    }
    this.probe = undefined;
    // Nobody to probe: the round waits (its time passed) and the first member is probed at once.
    if (this.live.length === 0) return;
    this.startProbe();
    this.nextProbeAt = now + this.config.probeIntervalMs * this.mult();
  }

  private startProbe(): void {
    const target = this.nextProbeTarget();
    if (target === undefined) return;
    const m = this.mult();
    const seq = ++this.seq;
    this.probe = {
      target,
      seq,
      timeoutAt: this.now + this.config.probeTimeoutMs * m,
      endAt: this.now + this.config.probeIntervalMs * m,
      indirectSent: false,
      acked: false,
      expectedNacks: 0,
      nacks: 0,
    };
    this.stats.probes++;
    this.send(target, { type: "ping", seq, target, ...this.piggyback() });
  }

  private sendIndirect(p: Probe): void {
    p.indirectSent = true;
    // The helpers get the rest of the probe interval to answer, even if this tick is late.
    p.endAt = Math.max(p.endAt, this.now + (this.config.probeIntervalMs - this.config.probeTimeoutMs) * this.mult());
    for (const helper of this.pickLive(this.config.indirectChecks, p.target)) {
      if (this.members.get(helper)?.status !== "alive") continue;
      this.stats.indirectProbes++;
      p.expectedNacks++;
      this.send(helper, { type: "ping-req", seq: p.seq, target: p.target, ...this.piggyback() });
    }
  }

  private finishProbe(p: Probe): void {
    if (p.acked) {
      if (this.awareness > 0) this.awareness--;
      return;
    }
    const m = this.members.get(p.target);
    if (!m || !isLive(m.status)) return;
    this.stats.probeFailures++;
    // Lifeguard: every helper's nack back means this node is fine and the target is not; each
    // missing one hints that this node is the slow one, and raises its local health score.
    const delta = p.expectedNacks > 0 ? p.expectedNacks - p.nacks : 1;
    this.awareness = Math.min(this.config.awarenessMax - 1, this.awareness + delta);
    this.applyMember({ id: m.id, inc: m.inc, status: "suspect", by: this.id }, this.id);
  }

  private onAck(seq: number, target: string): void {
    const p = this.probe;
    if (p && p.seq === seq && p.target === target) {
      p.acked = true;
      return;
    }
    const r = this.relays.get(seq);
    if (r && r.target === target) {
      this.relays.delete(seq);
      this.send(r.from, { type: "ack", seq: r.seq, target, ...this.piggyback() });
    }
  }

  private onNack(seq: number, target: string): void {
    const p = this.probe;
    if (p && p.seq === seq && p.target === target && p.nacks < p.expectedNacks) {
      p.nacks++;
      this.stats.nacksReceived++;
    }
  }

  /** Helpers of indirect probes: a nack to the asker for each target silent past the timeout. */
  private sendNacks(): void {
    for (const r of this.relays.values()) {
      if (r.nackAt === 0 || this.now < r.nackAt) continue;
      r.nackAt = 0;
      this.stats.nacksSent++;
      this.send(r.from, { type: "nack", seq: r.seq, target: r.target, ...this.piggyback() });
    }
  }

  private onPingReq(from: string, seq: number, target: string): void {
    if (target === this.id) {
      this.send(from, { type: "ack", seq, target: this.id, ...this.piggyback() });
      return;
    }
    if (this.relays.size >= this.config.maxPendingRelays) {
      this.stats.relaysDropped++;
      return;
    }
    const mySeq = ++this.seq;
    this.relays.set(mySeq, {
      from,
      seq,
      target,
      expiresAt: this.now + this.config.probeIntervalMs * 2,
      // Well inside the asker's window for indirect answers (probe interval minus timeout), as
      // memberlist does (80%), so the nack arrives while it still counts.
      nackAt: this.now + 0.8 * Math.min(this.config.probeTimeoutMs, this.config.probeIntervalMs - this.config.probeTimeoutMs),
    });
    this.send(target, { type: "ping", seq: mySeq, target, ...this.piggyback() });
  }

  /** Randomized round-robin: every live member is probed once per pass, in a fresh random order. */
  private nextProbeTarget(): string | undefined {
    for (let attempts = 0; attempts < 2; attempts++) {
      while (this.probeIndex < this.probeOrder.length) {
        const id = this.probeOrder[this.probeIndex++] as string;
        const m = this.members.get(id);
        if (m && isLive(m.status) && id !== this.id) return id;
      }
      this.probeOrder = this.shuffle(this.live);
      this.probeIndex = 0;
      if (this.probeOrder.length === 0) return undefined;
    }
    return undefined;
  }

  // ---------------------------------------------------------------- suspicion

  /** Lifeguard: starts at max and shrinks towards min = mult·max(1, log10 n)·interval as independent confirmations arrive. */
  suspicionTimeoutMs(confirmations: number): number {
    const n = this.liveCount;
    const min = Math.round(this.config.suspicionMult * Math.max(1, Math.log10(Math.max(1, n))) * this.config.probeIntervalMs);
    const max = this.config.suspicionMaxTimeoutMult * min;
    let k = this.config.suspicionMult - 2;
    if (n - 2 < k) k = 0;
    if (k <= 0) return min;
    const frac = Math.log(confirmations + 1) / Math.log(k + 1);
    return Math.max(min, Math.floor(max - (max - min) * frac));
  }

  private runSuspicions(): void {
    if (this.suspects.size === 0) return;
    for (const id of [...this.suspects]) {
      const m = this.members.get(id);
      if (!m || m.status !== "suspect" || !m.suspicion) {
        this.suspects.delete(id);
        continue;
      }
      if (m.suspicion.leaveAt !== 0 && this.now >= m.suspicion.leaveAt) {
        // Hearsay of a GOODBYE that the member did not refute: it left.
        this.applyMember({ id, inc: m.inc, status: "left" }, this.id);
        continue;
      }
      const timeout = this.suspicionTimeoutMs(m.suspicion.confirmers.size - 1);
      if (this.now - m.suspicion.start >= timeout) {
        this.stats.deathsDeclared++;
        log.debug(`${this.id}: ${id} dead after ${this.now - m.suspicion.start} ms of suspicion`);
        this.applyMember({ id, inc: m.inc, status: "dead" }, this.id);
      } else if (this.now - m.toldAt >= this.config.probeIntervalMs * this.mult()) {
        // Ask again (a notice or its answer may have been lost): a live suspect must get to refute.
        this.tellSubject(m);
      }
    }
  }

  /** Tells member `m` directly what this node believes about it (it refutes if it is alive). */
  private tellSubject(m: Member): void {
    m.toldAt = this.now;
    this.stats.noticesSent++;
    const fact: MemberUpdate = { id: m.id, inc: m.inc, status: m.status };
    if (m.status === "suspect") fact.by = this.id;
    this.send(m.id, { type: "gossip", members: [fact], items: [] });
  }

  // ---------------------------------------------------------------- membership merge

  private selfUpdate(): MemberUpdate {
    const u: MemberUpdate = { id: this.id, inc: this.incarnation, status: this.leaving ? "left" : "alive" };
    // No undefined-valued keys on the wire: MessagePack would turn them into nil.
    if (this.meta !== undefined) u.meta = this.meta;
    return u;
  }

  private refreshSelf(status: MemberStatus): void {
    const s = this.members.get(this.id) as Member;
    s.inc = this.incarnation;
    s.status = status;
    s.meta = this.meta;
    s.since = this.now;
  }

  /**
   * A fact about this node: refute suspicion/death with a higher incarnation. Returns true when
   * the sender should be told this node's current fact: after a refutation, and for a stale
   * rumour (suspect/dead/left at an incarnation already overtaken), whose sender lags behind.
   */
  private selfFact(u: MemberUpdate): boolean {
    if (this.leaving) return false;
    // Adopting `u.inc + 1` from someone else's claim is bounded, so that a forged claim cannot
    // push this node to the end of its incarnation space (where it could no longer refute).
    if (u.inc > this.incarnation && (u.inc - this.incarnation > this.config.maxIncarnationStep || !Number.isSafeInteger(u.inc + 1))) {
      this.stats.claimsRefused.incarnation_jump++;
      return false;
    }
    if (u.status === "alive") {
      if (u.inc <= this.incarnation) return false;
      // An alive fact from a previous life of this id: overtake it so our current meta wins.
      this.incarnation = u.inc + 1;
    } else {
      if (u.inc < this.incarnation) return true;
      this.incarnation = u.inc + 1;
      if (u.status === "suspect") this.awareness = Math.min(this.config.awarenessMax - 1, this.awareness + 1);
    }
    this.stats.refutations++;
    this.refreshSelf("alive");
    this.queue.enqueueMember(this.selfUpdate());
    return true;
  }

  private refuse(reason: ClaimRefusal): undefined {
    this.stats.claimsRefused[reason]++;
    return undefined;
  }

  /**
   * The trust rules for a claim about member X received from `from` (docs/cluster.md,
   * "Security"). X speaks for itself: its own alive/left is taken at any safe incarnation.
   * Anyone else's claim is hearsay: it may not go more than `maxIncarnationStep` above what X
   * announced here itself, a suspect/dead/left claim may not name an incarnation above the one
   * held here, and it may not kill a live member — hearsay of death or departure only makes this
   * node suspect X and ask it (X refutes, or this node's own suspicion timeout decides). Returns
   * the claim as admitted, or undefined when refused.
   */
  private admit(u: MemberUpdate, cur: Member | undefined, from: string): Admitted | undefined {
    const direct = from === u.id;
    if (direct && (u.status === "alive" || u.status === "left")) return { fact: u, leave: false };
    // Hearsay is measured against what X announced here itself (its anchor; 0 when X never
    // spoke to this node): X refutes any claim up to its own incarnation + step, and its own is
    // at least its anchor, so nothing admitted here can be out of X's reach.
    if (u.inc > (cur?.anchor ?? 0) + this.config.maxIncarnationStep) {
      return this.refuse(cur !== undefined && u.status === "alive" ? "hearsay_raise" : "incarnation_jump");
    }
    if (!cur) return { fact: u, leave: false };
    const suspicion = (leave: boolean): Admitted => ({ fact: { id: u.id, inc: cur.inc, status: "suspect", by: from }, leave });
    if (u.inc > cur.inc) {
      // A refutation (or a restart) relayed by others: SWIM spreads them as hearsay, and a member
      // this node cannot reach directly (no route yet, a partial overlay) has no other way.
      if (u.status === "alive") return { fact: u, leave: false };
      this.refuse("beyond_announced");
      // Still a hint: X may have refuted at an incarnation not heard here and be failing now.
      return isLive(cur.status) ? suspicion(u.status === "left") : undefined;
    }
    if (u.inc === cur.inc && isLive(cur.status) && (u.status === "dead" || (u.status === "left" && !direct))) {
      this.stats.hearsayDowngraded++;
      return suspicion(u.status === "left");
    }
    return { fact: u, leave: false };
  }

  /** Applies one membership fact; returns true when the sender should hear this node's own fact. */
  private applyMember(claim: MemberUpdate, from: string): boolean {
    if (claim.id === this.id) return this.selfFact(claim);
    const cur = this.members.get(claim.id);
    let u = claim;
    let leave = false;
    // This node's own conclusions (probe failures, suspicion timeouts) need no admission.
    if (from !== this.id) {
      const admitted = this.admit(claim, cur, from);
      if (!admitted) return false;
      u = admitted.fact;
      leave = admitted.leave;
    }
    if (from === claim.id && cur && (claim.status === "alive" || claim.status === "left") && claim.inc > cur.anchor) cur.anchor = claim.inc;
    if (leave && cur?.status === "suspect" && cur.suspicion && cur.inc === u.inc && cur.suspicion.leaveAt === 0) {
      cur.suspicion.leaveAt = this.now + this.config.probeIntervalMs * this.mult();
    }
    if (cur && !supersedes(u, cur)) {
      // Same suspicion from another member: a Lifeguard confirmation that shortens the timeout.
      if (u.status === "suspect" && cur.status === "suspect" && u.inc === cur.inc && cur.suspicion && u.by !== undefined && !cur.suspicion.confirmers.has(u.by)) {
        cur.suspicion.confirmers.add(u.by);
        if (cur.suspicion.confirmers.size <= this.config.suspicionMult) this.queue.enqueueMember(u);
      }
      return false;
    }
    let m = cur;
    if (!m) {
      if (this.members.size >= this.config.maxMembers) {
        this.pruneTombstones(true);
        if (this.members.size >= this.config.maxMembers) {
          this.stats.membersRefused++;
          return false;
        }
      }
      const anchor = from === u.id && (u.status === "alive" || u.status === "left") ? u.inc : 0;
      m = { id: u.id, inc: u.inc, status: u.status, meta: u.meta, since: this.now, suspicion: undefined, toldAt: -Infinity, anchor };
      this.members.set(u.id, m);
    }
    const prev = cur?.status;
    m.inc = u.inc;
    m.status = u.status;
    if (u.meta !== undefined) m.meta = u.meta;
    m.since = this.now;
    m.suspicion =
      u.status === "suspect"
        ? { start: this.now, confirmers: new Set(u.by === undefined ? [from] : [u.by]), leaveAt: leave ? this.now + this.config.probeIntervalMs * this.mult() : 0 }
        : undefined;
    if (u.status === "suspect") this.suspects.add(u.id);
    else this.suspects.delete(u.id);
    if (u.status === "dead") {
      if (!this.recentDead.includes(u.id)) this.recentDead.push(u.id);
    } else if (prev === "dead") {
      this.recentDead = this.recentDead.filter((x) => x !== u.id);
    }
    this.setLive(u.id, isLive(u.status));
    switch (u.status) {
      case "alive":
        if (prev === "alive" || prev === "suspect") this.emit({ type: "member-updated", id: u.id, incarnation: u.inc, meta: m.meta });
        else this.emit({ type: "member-up", id: u.id, incarnation: u.inc, meta: m.meta });
        break;
      case "suspect":
        if (u.by === this.id) this.stats.suspicionsRaised++;
        this.emit({ type: "member-suspect", id: u.id, incarnation: u.inc, by: u.by });
        // The suspect hears it from every member that holds it, not only through gossip: its
        // refutation comes back directly, which is the only way a suspicion is cleared.
        this.tellSubject(m);
        break;
      case "dead":
        this.emit({ type: "member-dead", id: u.id, incarnation: u.inc });
        break;
      case "left":
        this.emit({ type: "member-left", id: u.id, incarnation: u.inc });
        break;
    }
    this.queue.enqueueMember(u.meta === undefined && m.meta !== undefined && u.status === "alive" ? { ...u, meta: m.meta } : u);
    return false;
  }

  private setLive(id: string, live: boolean): void {
    const idx = this.liveIndex.get(id);
    if (live && idx === undefined) {
      this.liveIndex.set(id, this.live.length);
      this.live.push(id);
      // New members enter the current probe pass at a random position (memberlist does the same).
      const pos = this.probeIndex + Math.floor(this.random.next() * (this.probeOrder.length - this.probeIndex + 1));
      this.probeOrder.splice(pos, 0, id);
      // A flapping member could be inserted again and again: start a fresh pass instead.
      if (this.probeOrder.length > 2 * this.live.length + 16) {
        this.probeOrder = this.shuffle(this.live);
        this.probeIndex = 0;
      }
    } else if (!live && idx !== undefined) {
      const last = this.live.pop() as string;
      if (last !== id) {
        this.live[idx] = last;
        this.liveIndex.set(last, idx);
      }
      this.liveIndex.delete(id);
    }
  }

  private absorb(from: string, pb: Piggyback): void {
    let refuted = false;
    for (const u of pb.members) refuted = this.applyMember(u, from) || refuted;
    for (const it of pb.items) this.applyItem(it, from);
    // Tell the member that spread the rumour straight away (Lifeguard's "buddy system").
    if (refuted) this.send(from, { type: "gossip", members: [this.selfUpdate()], items: [] });
  }

  private applyItem(it: GossipItem, from: string): void {
    const r = this.store.apply(it);
    if (r === "applied") {
      this.stats.itemsApplied++;
      this.queue.enqueueItem(it);
      this.emit({ type: "item-updated", key: it.key, version: it.version, data: it.data, from });
    } else if (r === "full") {
      this.stats.itemsRefused++;
    }
  }

  // ---------------------------------------------------------------- dissemination

  private retransmitLimit(): number {
    return this.config.retransmitMult * Math.ceil(Math.log10(this.liveCount + 1));
  }

  private piggyback(): Piggyback {
    return this.queue.take(this.config.maxPiggyback, this.retransmitLimit(), this.budget);
  }

  private runGossipPush(): void {
    if (this.queue.size === 0) return;
    for (const to of this.pickGossipTargets()) {
      const pb = this.piggyback();
      if (pb.members.length === 0 && pb.items.length === 0) break;
      this.send(to, { type: "gossip", ...pb });
    }
  }

  // ---------------------------------------------------------------- anti-entropy

  /**
   * The anti-entropy period, stretched for large clusters the way memberlist scales push/pull:
   * × (⌈log2 n − log2 32⌉ + 1) above 32 members, so per-node sync traffic grows slowly with n.
   */
  antiEntropyPeriodMs(): number {
    const n = this.liveCount;
    if (n <= 32) return this.config.antiEntropyIntervalMs;
    return this.config.antiEntropyIntervalMs * (Math.ceil(Math.log2(n) - 5) + 1);
  }

  private membershipSnapshot(): MemberUpdate[] {
    const out: MemberUpdate[] = [];
    for (const m of this.members.values()) {
      if (m.id === this.id) out.push(this.selfUpdate());
      else out.push(m.meta === undefined ? { id: m.id, inc: m.inc, status: m.status } : { id: m.id, inc: m.inc, status: m.status, meta: m.meta });
    }
    return out;
  }

  /** Live members plus dead ones still remembered: syncing with the "dead" is how partitions heal. */
  private pickSyncPeer(): string | undefined {
    const candidates: string[] = [];
    for (const m of this.members.values()) if (m.id !== this.id && m.status !== "left") candidates.push(m.id);
    if (candidates.length === 0) return undefined;
    return candidates[Math.floor(this.random.next() * candidates.length)];
  }

  private digestWindow(start: string): { digest: [string, number][]; end: string | null } {
    const keys = this.store.sortedKeys();
    const from = this.store.lowerBound(start);
    const to = Math.min(keys.length, from + this.config.maxDigestEntries);
    const digest: [string, number][] = [];
    for (let i = from; i < to; i++) {
      const k = keys[i] as string;
      digest.push([k, (this.store.get(k) as GossipItem).version]);
    }
    return { digest, end: to < keys.length ? (keys[to] as string) : null };
  }

  private sendSyncRequest(peer: string, full: boolean, start: string): void {
    const { digest, end } = this.digestWindow(start);
    if (!full) this.syncCursor = end ?? "";
    this.stats.syncRequests++;
    this.send(peer, { type: "sync-req", full, start, end, digest, members: this.membershipSnapshot() });
  }

  private onSyncRequest(from: string, msg: SyncRequestMessage): void {
    // A refutation lands in our own entry of the membership snapshot sent back below.
    for (const u of msg.members) this.applyMember(u, from);
    const theirs = new Map<string, number>(msg.digest);
    const items: GossipItem[] = [];
    const fits = this.byteCounter();
    let more = false;
    for (const k of this.store.keysInRange(msg.start, msg.end)) {
      const mine = this.store.get(k) as GossipItem;
      const v = theirs.get(k);
      if (v === undefined || v < mine.version) {
        if (items.length >= this.config.maxSyncItems || !fits(mine, items.length)) {
          more = true;
          break;
        }
        items.push(mine);
      }
    }
    const want: string[] = [];
    for (const [k, v] of msg.digest) {
      const mine = this.store.get(k);
      if (mine === undefined || mine.version < v) {
        // The push answering `want` is bounded the same way; `more` makes a full sync ask again.
        if (want.length >= this.config.maxSyncItems) {
          more = true;
          break;
        }
        want.push(k);
      }
    }
    const reply: SyncReplyMessage = { type: "sync", full: msg.full, start: msg.start, end: msg.end, items, want, more, members: this.membershipSnapshot() };
    this.send(from, reply);
  }

  /** A per-message byte budget check: the first item always fits. */
  private byteCounter(): (item: GossipItem, already: number) => boolean {
    const budget = this.budget;
    if (!budget) return () => true;
    let left = budget.bytes;
    return (item, already) => {
      const size = budget.sizeOf(item);
      if (already > 0 && size > left) return false;
      left -= size;
      return true;
    };
  }

  private onSyncReply(from: string, msg: SyncReplyMessage): void {
    let refuted = false;
    for (const u of msg.members) refuted = this.applyMember(u, from) || refuted;
    for (const it of msg.items) this.applyItem(it, from);
    if (refuted) this.send(from, { type: "gossip", members: [this.selfUpdate()], items: [] });
    let pushCut = false;
    if (msg.want.length > 0) {
      const items: GossipItem[] = [];
      const fits = this.byteCounter();
      for (const k of msg.want) {
        const it = this.store.get(k);
        if (!it) continue;
        // What does not fit is wanted again in the answer to the next sync of this window.
        if (items.length >= this.config.maxSyncItems || !fits(it, items.length)) {
          pushCut = true;
          break;
        }
        items.push(it);
      }
      if (items.length > 0) this.send(from, { type: "sync-push", items });
    }
    if (msg.full) {
      // Walk the whole key space: repeat a window that was cut short, else move to the next one.
      if (msg.more || pushCut) this.sendSyncRequest(from, true, msg.start);
      else if (msg.end !== null) this.sendSyncRequest(from, true, msg.end);
    }
  }

  // ---------------------------------------------------------------- housekeeping

  /** Whether `collectGarbage` has anything to look at: relays, recently dead members, tombstones. */
  private hasGarbage(): boolean {
    // `members` holds self, the live members and the dead/left ones (tombstones).
    return this.relays.size > 0 || this.recentDead.length > 0 || this.members.size > this.live.length + 1;
  }

  private collectGarbage(): void {
    this.pruneTombstones(false);
    if (this.recentDead.length > 0) {
      this.recentDead = this.recentDead.filter((id) => {
        const m = this.members.get(id);
        return m !== undefined && m.status === "dead" && this.now - m.since < this.config.gossipToTheDeadMs;
      });
    }
    if (this.relays.size > 0) {
      for (const [k, r] of this.relays) if (r.expiresAt <= this.now) this.relays.delete(k);
    }
  }

  /** Forgets dead/left members after `tombstoneMs` (or, under pressure, the oldest ones now). */
  private pruneTombstones(pressure: boolean): void {
    let oldest: Member | undefined;
    for (const m of this.members.values()) {
      if (m.status !== "dead" && m.status !== "left") continue;
      if (this.now - m.since >= this.config.tombstoneMs) this.members.delete(m.id);
      else if (oldest === undefined || m.since < oldest.since) oldest = m;
    }
    if (pressure && this.members.size >= this.config.maxMembers && oldest) this.members.delete(oldest.id);
  }

  private setNow(now: number): void {
    if (!Number.isFinite(now)) throw MpregError.invalid("gossip time must be a finite number", "now");
    // Time never goes backwards inside the state machine, whatever the caller's clock does.
    if (now > this.now) this.now = now;
  }

  private send(to: string, msg: GossipMessage): void {
    if (this.outbox.length >= this.config.maxOutbox) {
      this.outbox.shift();
      this.stats.outboxDropped++;
    }
    this.outbox.push({ to, msg });
    this.stats.sent[msg.type]++;
    if (msg.type === "ping" || msg.type === "ack" || msg.type === "gossip") this.stats.piggybackedSent += msg.members.length + msg.items.length;
  }

  /** Something changed: anti-entropy returns to its base period from the next sync on, at the latest one period from now. */
  private changed(): void {
    this.changes++;
    if (this.syncBackoff > 1) {
      this.syncBackoff = 1;
      this.nextSyncAt = Math.min(this.nextSyncAt, this.now + this.antiEntropyPeriodMs());
    }
  }

  private emit(e: GossipEvent): void {
    // Membership changes reset the anti-entropy backoff; items received by push do not (an idle
    // cluster's periodic catalog refreshes would keep it at the base period), items that only
    // anti-entropy brought do (see the sync handlers: pushes are being lost).
    if (e.type !== "item-updated") this.changed();
    if (this.events.length >= this.config.maxEvents) {
      this.events.shift();
      this.stats.eventsDropped++;
    }
    this.events.push(e);
  }

  /**
   * Push targets: random live members, and with proportional chance a member declared dead
   * in the last `gossipToTheDeadMs` (memberlist's "gossip to the dead"), so a member that was
   * wrongly declared dead hears it and refutes quickly.
   */
  private pickGossipTargets(): string[] {
    const k = this.config.gossipFanout;
    const dead = this.recentDead;
    if (dead.length === 0) return this.pickLive(k, undefined);
    const out = this.pickLive(k, undefined);
    const total = this.live.length + dead.length;
    const slots = Math.min(k, total);
    for (let i = 0; i < slots; i++) {
      // Slot i goes to a recently dead member with probability |dead| / (|live| + |dead|).
      if (i < out.length && this.random.next() * total >= dead.length) continue;
      const d = dead[Math.floor(this.random.next() * dead.length)] as string;
      if (out.includes(d)) continue;
      if (i < out.length) out[i] = d;
      else out.push(d);
    }
    return out;
  }

  private pickLive(k: number, exclude: string | undefined): string[] {
    const pool = this.live;
    if (k <= 0 || pool.length === 0) return [];
    if (pool.length <= k + 1) return this.shuffle(pool.filter((x) => x !== exclude)).slice(0, k);
    const out: string[] = [];
    const seen = new Set<string>();
    let guard = 0;
    while (out.length < k && guard++ < k * 10) {
      const id = pool[Math.floor(this.random.next() * pool.length)] as string;
      if (id === exclude || seen.has(id)) continue;
      seen.add(id);
      out.push(id);
    }
    return out;
  }

  private shuffle<T>(xs: readonly T[]): T[] {
    const a = xs.slice();
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.random.next() * (i + 1));
      const t = a[i] as T;
      a[i] = a[j] as T;
      a[j] = t;
    }
    return a;
  }
}
