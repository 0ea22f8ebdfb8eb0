import { MpregError } from "@mpreg/envelope";
import type { SimClock } from "./clock.js";
import type { SeededRandom } from "./random.js";

/** A delay distribution: draws a one-way delay in ms from the network's random stream. */
export type DelayFn = (random: SeededRandom) => number;

/** Always `ms`. */
export function fixedDelay(ms: number): DelayFn {
  return () => ms;
}

/** Uniform in [min, max). */
export function uniformDelay(minMs: number, maxMs: number): DelayFn {
  return (r) => r.range(minMs, maxMs);
}

/** Behaviour of one directed link. Reordering comes from random delay (`delay` + `jitterMs`). */
export interface LinkConfig {
  /** Base one-way delay distribution. Default: uniform 1–5 ms. */
  delay: DelayFn;
  /** Extra uniform delay in [0, jitterMs): makes messages overtake each other. Default 0. */
  jitterMs: number;
  /** Probability that a message is lost. Default 0. */
  lossProbability: number;
  /** Probability that a message is delivered twice (the copy gets its own delay). Default 0. */
  duplicateProbability: number;
}

/** Receives the messages delivered to a node. */
export type SimHandler<M> = (from: string, msg: M) => void;

/** Per-node traffic counters (bytes use the network's `sizeOf`). */
export interface NodeTraffic {
  messagesSent: number;
  messagesReceived: number;
  bytesSent: number;
  bytesReceived: number;
}

/** Network-wide counters. */
export interface NetworkStats {
  sent: number;
  delivered: number;
  duplicated: number;
  droppedLoss: number;
  droppedPartition: number;
  droppedCrash: number;
  droppedOverflow: number;
  bytesSent: number;
}

/** Options of {@link SimNetwork}. */
export interface SimNetworkOptions<M> {
  clock: SimClock;
  random: SeededRandom;
  /** Defaults for every link; override per link with {@link SimNetwork.setLink}. */
  link?: Partial<LinkConfig>;
  /** Size of a message in bytes for bandwidth accounting (e.g. msgpack length). Default: 0. */
  sizeOf?: (msg: M) => number;
  /** Messages in flight at most; beyond it sends are dropped and counted in `droppedOverflow`. Default 1e6. */
  maxInFlight?: number;
}

interface NodeState<M> {
  handler: SimHandler<M>;
  up: boolean;
  /** Bumped on crash: in-flight messages of an older epoch are dropped (the connection died). */
  epoch: number;
  pausedUntil: number;
  held: { from: string; msg: M; size: number }[];
  traffic: NodeTraffic;
}

const DEFAULT_LINK: LinkConfig = {
  delay: uniformDelay(1, 5),
  jitterMs: 0,
  lossProbability: 0,
  duplicateProbability: 0,
};

/** Messages held for a paused node at most; older ones are dropped first (a full socket buffer). */
const MAX_HELD = 100_000;

/**
 * A simulated network for sans-I/O nodes, driven by a {@link SimClock}: per-link delay, jitter,
 * loss and duplication, partitions, crashes, restarts and pauses, all deterministic for a seed.
 * Delivery calls the receiving node's handler synchronously from the clock's event loop.
 */
export class SimNetwork<M> {
  readonly clock: SimClock;
  private readonly random: SeededRandom;
  private readonly nodes = new Map<string, NodeState<M>>();
  private defaults: LinkConfig;
  private readonly links = new Map<string, LinkConfig>();
  /** Group index per node while partitioned; nodes in different groups cannot talk. */
  private groupOf = new Map<string, number>();
  private readonly blocked = new Set<string>();
  private readonly sizeOf: (msg: M) => number;
  private readonly maxInFlight: number;
  private inFlight = 0;
  readonly stats: NetworkStats = {
    sent: 0,
    delivered: 0,
    duplicated: 0,
    droppedLoss: 0,
    droppedPartition: 0,
    droppedCrash: 0,
    droppedOverflow: 0,
    bytesSent: 0,
  };

  constructor(opts: SimNetworkOptions<M>) {
    this.clock = opts.clock;
    this.random = opts.random;
    this.defaults = { ...DEFAULT_LINK, ...opts.link };
    this.sizeOf = opts.sizeOf ?? (() => 0);
    this.maxInFlight = opts.maxInFlight ?? 1_000_000;
  }

  /** Adds a node (up) with its message handler. */
  addNode(id: string, handler: SimHandler<M>): void {
    if (this.nodes.has(id)) throw MpregError.invalid(`SimNetwork: node ${id} already exists`, "id");
    this.nodes.set(id, {
      handler,
      up: true,
      epoch: 0,
      pausedUntil: -Infinity,
      held: [],
      traffic: { messagesSent: 0, messagesReceived: 0, bytesSent: 0, bytesReceived: 0 },
    });
  }

  /** Ids of all nodes, up or not. */
  nodeIds(): string[] {
    return [...this.nodes.keys()];
  }

  /** True when the node exists and has not crashed. */
  isUp(id: string): boolean {
    return this.nodes.get(id)?.up === true;
  }

  /** True while the node is paused (its messages are held; the harness should not tick it). */
  isPaused(id: string): boolean {
    const n = this.nodes.get(id);
    return n !== undefined && this.clock.now() < n.pausedUntil;
  }

  /** Replaces the default link behaviour (existing per-link overrides stay). */
  setDefaultLink(config: Partial<LinkConfig>): void {
    this.defaults = { ...this.defaults, ...config };
  }

  /** Overrides the behaviour of the directed link from → to (and to → from unless `symmetric` is false). */
  setLink(from: string, to: string, config: Partial<LinkConfig>, symmetric = true): void {
    this.links.set(`${from}\u0000${to}`, { ...this.linkConfig(from, to), ...config });
    if (symmetric) this.links.set(`${to}\u0000${from}`, { ...this.linkConfig(to, from), ...config });
  }

  /** The effective configuration of the directed link from → to. */
  linkConfig(from: string, to: string): LinkConfig {
    return this.links.get(`${from}\u0000${to}`) ?? this.defaults;
  }

  /**
   * Splits the listed nodes into groups that cannot talk to each other. Nodes not listed keep
   * talking to everyone. Replaces any previous partition.
   */
  partition(...groups: string[][]): void {
    this.groupOf = new Map();
    groups.forEach((g, i) => {
      for (const id of g) this.groupOf.set(id, i);
    });
  }

  /** Blocks the directed link from → to (both directions unless `symmetric` is false). */
  block(from: string, to: string, symmetric = true): void {
    this.blocked.add(`${from}\u0000${to}`);
    if (symmetric) this.blocked.add(`${to}\u0000${from}`);
  }

  /** Removes every partition and blocked link. */
  heal(): void {
    this.groupOf = new Map();
    this.blocked.clear();
  }

  /** True when from → to is cut by a partition or a block. */
  isCut(from: string, to: string): boolean {
    const a = this.groupOf.get(from);
    const b = this.groupOf.get(to);
    if (a !== undefined && b !== undefined && a !== b) return true;
    return this.blocked.has(`${from}\u0000${to}`);
  }

  /** Crashes a node: it stops receiving, its sends are dropped, and messages in flight to or from it are lost. */
  crash(id: string): void {
    const n = this.mustGet(id);
    n.up = false;
    n.epoch++;
    n.held = [];
    n.pausedUntil = -Infinity;
  }

  /** Brings a crashed node back with a fresh handler (its old state is the harness's to discard). */
  restart(id: string, handler: SimHandler<M>): void {
    const n = this.mustGet(id);
    n.handler = handler;
    n.up = true;
  }

  /**
   * Pauses a node for `ms` (a GC pause or a stopped process): messages to it are held and
   * delivered, in arrival order, when the pause ends. The node's own sends are not affected;
   * the harness is expected not to tick it meanwhile (see {@link isPaused}).
   */
  pause(id: string, ms: number): void {
    const n = this.mustGet(id);
    n.pausedUntil = Math.max(n.pausedUntil, this.clock.now() + ms);
    this.clock.schedule(() => this.flushHeld(id), n.pausedUntil);
  }

  /** Traffic counters of one node. */
  traffic(id: string): NodeTraffic {
    return this.mustGet(id).traffic;
  }

  /** Messages currently in flight. */
  get messagesInFlight(): number {
    return this.inFlight;
  }

  /** Sends `msg` from → to. Returns false when it was dropped at once (loss, cut, crash, overflow). */
  send(from: string, to: string, msg: M): boolean {
    const src = this.mustGet(from);
    const dst = this.nodes.get(to);
    this.stats.sent++;
    if (!src.up) {
      this.stats.droppedCrash++;
      return false;
    }
    const size = this.sizeOf(msg);
    src.traffic.messagesSent++;
    src.traffic.bytesSent += size;
    this.stats.bytesSent += size;
    if (dst === undefined || !dst.up) {
      this.stats.droppedCrash++;
      return false;
    }
    if (this.isCut(from, to)) {
      this.stats.droppedPartition++;
      return false;
    }
    const link = this.linkConfig(from, to);
    if (this.random.chance(link.lossProbability)) {
      this.stats.droppedLoss++;
      return false;
    }
    let copies = 1;
    if (this.random.chance(link.duplicateProbability)) {
      copies = 2;
      this.stats.duplicated++;
    }
    for (let i = 0; i < copies; i++) {
      if (this.inFlight >= this.maxInFlight) {
        this.stats.droppedOverflow++;
        return false;
      }
      const delay = Math.max(0, link.delay(this.random)) + (link.jitterMs > 0 ? this.random.range(0, link.jitterMs) : 0);
      const srcEpoch = src.epoch;
      const dstEpoch = dst.epoch;
      this.inFlight++;
      this.clock.setTimeout(() => {
        this.inFlight--;
        this.arrive(from, to, msg, size, srcEpoch, dstEpoch);
      }, delay);
    }
    return true;
  }

  private arrive(from: string, to: string, msg: M, size: number, srcEpoch: number, dstEpoch: number): void {
    const src = this.mustGet(from);
    const dst = this.mustGet(to);
    if (src.epoch !== srcEpoch || dst.epoch !== dstEpoch || !dst.up) {
      this.stats.droppedCrash++;
      return;
    }
    if (this.isCut(from, to)) {
      this.stats.droppedPartition++;
      return;
    }
    if (this.clock.now() < dst.pausedUntil) {
      if (dst.held.length >= MAX_HELD) {
        dst.held.shift();
        this.stats.droppedOverflow++;
      }
      dst.held.push({ from, msg, size });
      return;
    }
    this.deliver(dst, from, msg, size);
  }

  private deliver(dst: NodeState<M>, from: string, msg: M, size: number): void {
    this.stats.delivered++;
    dst.traffic.messagesReceived++;
    dst.traffic.bytesReceived += size;
    dst.handler(from, msg);
  }

  private flushHeld(id: string): void {
    const n = this.nodes.get(id);
    if (n === undefined || !n.up || this.clock.now() < n.pausedUntil) return;
    const held = n.held;
    n.held = [];
    for (const h of held) {
      if (!n.up) break;
      this.deliver(n, h.from, h.msg, h.size);
    }
  }

  private mustGet(id: string): NodeState<M> {
    const n = this.nodes.get(id);
    if (n === undefined) throw MpregError.notFound(`SimNetwork: unknown node ${id}`, { id });
    return n;
  }
}
