/**
 * Optional link-state mode between clusters: every cluster floods an adjacency announcement
 * (its neighbour clusters and link costs, ordered by `(epoch, seq)`, newest wins) and computes
 * shortest paths over the announced graph with Dijkstra. A sans-I/O state machine like
 * {@link RouteTable}: link events, announcements from neighbours and ticks in; announcements
 * to send and best-route changes out of {@link ClusterLinkState.poll}.
 *
 * Differences from the original: an edge is used only when both ends announce it (a one-sided
 * claim is stale or forged); announcements can be signed by their origin and verified with the
 * key registry; `epoch` keeps a restarted origin's announcements newer than its old ones; ties
 * between equal paths are broken deterministically. Policies are a path-vector feature: routes
 * here offer every service.
 */
import { MpregError, createLogger } from "@mpreg/envelope";
import { sameRoute, type BestRouteChange, type ClusterRoute, type ClusterRouteSource } from "./cluster-route.js";
import type { KeyRegistry } from "./key-registry.js";
import type { RouteSigner } from "./route-signing.js";
import { MAX_METRIC, MAX_TTL_MS, isClusterId, validateSignature, type RouteSignature } from "./route-update.js";
import { OFFER_ALL } from "./service-filter.js";

const log = createLogger("router");

/** One neighbour in an adjacency announcement. */
export interface AdjacencyLink {
  cluster: string;
  /** Link cost: integer in 0..MAX_METRIC. */
  cost: number;
}

/** A cluster's adjacency, flooded to every cluster (wire form). */
export interface AdjacencyAnnouncement {
  v: 1;
  origin: string;
  /** The origin's incarnation; grows across restarts. */
  epoch: number;
  /** Orders the origin's announcements within an epoch: integer >= 1. */
  seq: number;
  /** Receivers drop the announcement this long after receiving it unless a newer one came. */
  ttl_ms: number;
  /** Sorted by cluster id, no repeats. */
  neighbours: AdjacencyLink[];
  /** By a key of `origin` (signed bytes: tag `mpreg-adjacency/1`, `[origin, epoch, seq, ttl_ms, [[cluster, cost]...]]`). */
  sig?: RouteSignature;
}

const encoder = new TextEncoder();

/** The bytes an adjacency announcement's signature covers. */
export function adjacencySigningBytes(a: AdjacencyAnnouncement): Uint8Array {
  const body = [a.origin, a.epoch, a.seq, a.ttl_ms, a.neighbours.map((n) => [n.cluster, n.cost])];
  return encoder.encode(`mpreg-adjacency/1\n${JSON.stringify(body)}`);
}

function bad(reason: string, path: string): never {
  throw MpregError.invalid(`adjacency announcement: ${path === "" ? "" : `${path} `}${reason}`, path);
}

function uint(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) bad(`must be an integer in ${min}..${max}`, path);
  return v;
}

/**
 * Checks a decoded adjacency announcement; returns a clean copy.
 * @throws {MpregError} 1002 naming the offending field.
 */
export function validateAdjacency(v: unknown, maxNeighbours = 256): AdjacencyAnnouncement {
  const o = v as Record<string, unknown>;
  if (typeof o !== "object" || o === null || Array.isArray(o)) bad("must be an object", "");
  if (o.v !== 1) bad("must be 1", "v");
  if (!isClusterId(o.origin)) bad("must be a cluster id", "origin");
  if (!Array.isArray(o.neighbours) || o.neighbours.length > maxNeighbours) {
    bad(`must be an array of at most ${maxNeighbours}`, "neighbours");
  }
  let last: string | undefined;
  const neighbours = (o.neighbours as unknown[]).map((x, i): AdjacencyLink => {
    const n = x as Record<string, unknown>;
    if (typeof n !== "object" || n === null) bad("must be an object {cluster, cost}", `neighbours[${i}]`);
    if (!isClusterId(n.cluster) || n.cluster === o.origin) bad("must be another cluster's id", `neighbours[${i}].cluster`);
    if (last !== undefined && !(last < n.cluster)) bad("must be sorted without repeats", `neighbours[${i}].cluster`);
    last = n.cluster;
    return { cluster: n.cluster, cost: uint(n.cost, `neighbours[${i}].cost`, 0, MAX_METRIC) };
  });
  const out: AdjacencyAnnouncement = {
    v: 1,
    origin: o.origin,
    epoch: uint(o.epoch, "epoch", 0, Number.MAX_SAFE_INTEGER),
    seq: uint(o.seq, "seq", 1, Number.MAX_SAFE_INTEGER),
    ttl_ms: uint(o.ttl_ms, "ttl_ms", 1, MAX_TTL_MS),
    neighbours,
  };
  if (o.sig !== undefined) out.sig = validateSignature(o.sig, "sig");
  return out;
}

/** Settings of a {@link ClusterLinkState}. Times in ms. */
export interface ClusterLinkStateOptions {
  localCluster: string;
  /** This instance's incarnation: higher than any earlier one of this cluster (e.g. start time). */
  epoch: number;
  /** TTL of this cluster's announcements. Default 90 000. */
  ttlMs?: number;
  /** Re-announce this often even without change. Default 30 000; below `ttlMs`. */
  refreshIntervalMs?: number;
  /**
   * Least time between two own announcements: link changes within it are sent together, so a
   * flapping link costs at most one flood per interval. Default 1000.
   */
  minOriginationIntervalMs?: number;
  /** Most clusters in the database; an announcement of one more is refused (`table_full`). Default 4096. */
  maxClusters?: number;
  /** Most neighbours of one cluster (own links and per announcement); one more `linkUp` throws 1007. Default 256. */
  maxNeighbours?: number;
  /** Cost of a link when `linkUp` gives none. Default 1. */
  defaultLinkCost?: number;
  /** Signs own announcements. */
  signer?: RouteSigner;
  /** Verifies signed announcements (by their origin's keys). */
  keys?: KeyRegistry;
  /** Refuse unsigned announcements (needs `keys`). Default false. */
  requireSignatures?: boolean;
}

/** Why an announcement was refused. */
export type AdjacencyRefusal = "invalid" | "unknown_neighbour" | "own" | "unsigned" | "bad_signature" | "stale" | "table_full";

/** Announcements for the driver to send to neighbour `to` (in this order). */
export interface OutboundAdjacency {
  to: string;
  announcements: AdjacencyAnnouncement[];
}

/** What {@link ClusterLinkState.poll} hands out. */
export interface LinkStateOutput {
  messages: OutboundAdjacency[];
  events: BestRouteChange[];
}

/** Counters of a {@link ClusterLinkState}. */
export interface LinkStateStats {
  received: number;
  accepted: number;
  refused: Record<AdjacencyRefusal, number>;
  originated: number;
  messagesSent: number;
  announcementsSent: number;
}

interface Stored {
  ann: AdjacencyAnnouncement;
  expiresAt: number;
  /** Neighbour cluster → cost, for the two-way check. */
  links: Map<string, number>;
}

interface Label {
  node: string;
  cost: number;
  path: string[];
}

/**
 * Label order: cost, hops, then path id by id. Since every path starts with the local cluster,
 * this is exactly `compareRoutes` (metric, hops, next hop, path), and it is kept when two
 * labels are extended by the same edge, which Dijkstra needs.
 */
function cmpLabel(a: Label, b: Label): number {
  if (a.cost !== b.cost) return a.cost - b.cost;
  if (a.path.length !== b.path.length) return a.path.length - b.path.length;
  for (let i = 0; i < a.path.length; i++) {
    const x = a.path[i] as string;
    const y = b.path[i] as string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** A binary min-heap of labels. */
class LabelHeap {
  private readonly a: Label[] = [];
  get size(): number {
    return this.a.length;
  }
  push(x: Label): void {
    const a = this.a;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (cmpLabel(a[p] as Label, a[i] as Label) <= 0) break;
      [a[p], a[i]] = [a[i] as Label, a[p] as Label];
      i = p;
    }
  }
  pop(): Label | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && cmpLabel(a[l] as Label, a[m] as Label) < 0) m = l;
        if (r < a.length && cmpLabel(a[r] as Label, a[m] as Label) < 0) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i] as Label, a[m] as Label];
        i = m;
      }
    }
    return top;
  }
}

function cmpSeq(a: AdjacencyAnnouncement, b: AdjacencyAnnouncement): number {
  return a.epoch !== b.epoch ? a.epoch - b.epoch : a.seq - b.seq;
}

function positive(v: number | undefined, dflt: number, name: string, min = 1): number {
  const x = v ?? dflt;
  if (!Number.isSafeInteger(x) || x < min) throw MpregError.invalid(`${name} must be an integer >= ${min}`, name);
  return x;
}

/** The link-state database of one cluster and the shortest paths over it. */
export class ClusterLinkState implements ClusterRouteSource {
  readonly localCluster: string;
  readonly epoch: number;
  readonly stats: LinkStateStats = {
    received: 0,
    accepted: 0,
    refused: { invalid: 0, unknown_neighbour: 0, own: 0, unsigned: 0, bad_signature: 0, stale: 0, table_full: 0 },
    originated: 0,
    messagesSent: 0,
    announcementsSent: 0,
  };

  private readonly ttlMs: number;
  private readonly refreshIntervalMs: number;
  private readonly minOriginationIntervalMs: number;
  private readonly maxClusters: number;
  private readonly maxNeighbours: number;
  private readonly defaultLinkCost: number;
  private signer: RouteSigner | undefined;
  private readonly keys: KeyRegistry | undefined;
  private readonly requireSignatures: boolean;

  private readonly own = new Map<string, number>();
  private readonly db = new Map<string, Stored>();
  /** Pending announcements per neighbour, newest per origin (bounded by the database size). */
  private readonly outbox = new Map<string, Map<string, AdjacencyAnnouncement>>();
  private ownAnn: AdjacencyAnnouncement | undefined;
  private ownDirty = true;
  private lastOriginatedAt = -Infinity;
  private seq = 0;
  private now = 0;
  private cache: Map<string, ClusterRoute> | undefined;
  /** Routes as of the last poll, for change events. */
  private reported = new Map<string, ClusterRoute>();

  /** @throws {MpregError} 1002 naming the bad option. */
  constructor(opts: ClusterLinkStateOptions) {
    if (!isClusterId(opts.localCluster)) throw MpregError.invalid("localCluster must be a cluster id", "localCluster");
    this.localCluster = opts.localCluster;
    this.epoch = positive(opts.epoch, 0, "epoch", 0);
    this.ttlMs = positive(opts.ttlMs, 90_000, "ttlMs");
    if (this.ttlMs > MAX_TTL_MS) throw MpregError.invalid(`ttlMs must be at most ${MAX_TTL_MS}`, "ttlMs");
    this.refreshIntervalMs = positive(opts.refreshIntervalMs, 30_000, "refreshIntervalMs");
    if (this.refreshIntervalMs >= this.ttlMs) throw MpregError.invalid("refreshIntervalMs must be below ttlMs", "refreshIntervalMs");
    this.minOriginationIntervalMs = positive(opts.minOriginationIntervalMs, 1000, "minOriginationIntervalMs", 0);
    this.maxClusters = positive(opts.maxClusters, 4096, "maxClusters");
    this.maxNeighbours = positive(opts.maxNeighbours, 256, "maxNeighbours");
    this.defaultLinkCost = positive(opts.defaultLinkCost, 1, "defaultLinkCost", 0);
    this.signer = opts.signer;
    if (opts.signer !== undefined && opts.signer.clusterId !== opts.localCluster) {
      throw MpregError.invalid("signer must belong to localCluster", "signer");
    }
    this.keys = opts.keys;
    this.requireSignatures = opts.requireSignatures ?? false;
    if (this.requireSignatures && this.keys === undefined) throw MpregError.invalid("requireSignatures needs keys", "requireSignatures");
  }

  private clock(now: number): void {
    if (now > this.now) this.now = now;
  }

  /**
   * A link to neighbour cluster `neighbour` is up (again: its cost is updated). The neighbour
   * gets the whole database at the next poll; this cluster's announcement changes.
   * @throws {MpregError} 1002 for a bad id or cost, 1007 past `maxNeighbours`.
   */
  linkUp(neighbour: string, now: number, opts: { cost?: number } = {}): void {
    this.clock(now);
    if (!isClusterId(neighbour) || neighbour === this.localCluster) {
      throw MpregError.invalid("neighbour must be another cluster's id", "neighbour");
    }
    const cost = positive(opts.cost, this.defaultLinkCost, "cost", 0);
    const had = this.own.get(neighbour);
    if (had === undefined && this.own.size >= this.maxNeighbours) {
      throw MpregError.overloaded(`link state: more than ${this.maxNeighbours} neighbours`);
    }
    this.own.set(neighbour, cost);
    if (had === undefined) {
      const box = new Map<string, AdjacencyAnnouncement>();
      for (const [o, s] of this.db) box.set(o, s.ann);
      if (this.ownAnn !== undefined) box.set(this.localCluster, this.ownAnn);
      this.outbox.set(neighbour, box);
    }
    if (had !== cost) {
      this.ownDirty = true;
      this.cache = undefined;
    }
  }

  /** The link to `neighbour` is down. */
  linkDown(neighbour: string, now: number): boolean {
    this.clock(now);
    if (!this.own.delete(neighbour)) return false;
    this.outbox.delete(neighbour);
    this.ownDirty = true;
    this.cache = undefined;
    return true;
  }

  /**
   * An announcement arrived from neighbour `from` (any origin: announcements are flooded).
   * A newer one is stored and passed on to every other neighbour; anything else is refused
   * and counted. Never throws on bad input.
   */
  receive(from: string, raw: unknown, now: number): { accepted: boolean; reason?: AdjacencyRefusal } {
    this.clock(now);
    this.stats.received++;
    if (!this.own.has(from)) return this.refuse("unknown_neighbour");
    let a: AdjacencyAnnouncement;
    try {
      a = validateAdjacency(raw, this.maxNeighbours);
    } catch (e) {
      log.debug(`invalid adjacency announcement from ${from}: ${(e as Error).message}`);
      return this.refuse("invalid");
    }
    if (a.origin === this.localCluster) return this.refuse("own");
    if (this.keys !== undefined && (a.sig !== undefined || this.requireSignatures)) {
      const v = this.keys.verify(a.origin, a.sig, adjacencySigningBytes(a), now);
      if (v === "unsigned") return this.refuse("unsigned");
      if (v !== "ok") return this.refuse("bad_signature");
    }
    const held = this.db.get(a.origin);
    if (held !== undefined && cmpSeq(a, held.ann) <= 0) return this.refuse("stale");
    if (held === undefined && this.db.size >= this.maxClusters) return this.refuse("table_full");
    this.db.set(a.origin, { ann: a, expiresAt: now + a.ttl_ms, links: new Map(a.neighbours.map((n) => [n.cluster, n.cost])) });
    this.cache = undefined;
    for (const [nb, box] of this.outbox) if (nb !== from) box.set(a.origin, a);
    this.stats.accepted++;
    return { accepted: true };
  }

  private refuse(reason: AdjacencyRefusal): { accepted: false; reason: AdjacencyRefusal } {
    this.stats.refused[reason]++;
    return { accepted: false, reason };
  }

  /** Time passes: expired announcements go; this cluster re-announces when its refresh is due. */
  tick(now: number): void {
    this.clock(now);
    for (const [o, s] of this.db) {
      if (s.expiresAt <= now) {
        this.db.delete(o);
        this.cache = undefined;
      }
    }
    if (now >= this.lastOriginatedAt + this.refreshIntervalMs) this.ownDirty = true;
  }

  /**
   * Signs every announcement from now on with `signer` (key rotation; see RouteTable.setSigner).
   * Takes effect with the next origination (the current one keeps the old signature, valid
   * during the overlap).
   * @throws {MpregError} 1002 when the signer is of another cluster.
   */
  setSigner(signer: RouteSigner): void {
    if (signer.clusterId !== this.localCluster) throw MpregError.invalid("signer must belong to localCluster", "signer");
    this.signer = signer;
  }

  /**
   * Collects what to send: this cluster's new announcement when due (at most one per
   * `minOriginationIntervalMs`), and everything pending per neighbour; and the best-route
   * changes since the last poll.
   */
  poll(now: number): LinkStateOutput {
    this.clock(now);
    if (this.ownDirty && now >= this.lastOriginatedAt + this.minOriginationIntervalMs) {
      this.ownDirty = false;
      this.lastOriginatedAt = now;
      let ann: AdjacencyAnnouncement = {
        v: 1,
        origin: this.localCluster,
        epoch: this.epoch,
        seq: ++this.seq,
        ttl_ms: this.ttlMs,
        neighbours: [...this.own].map(([cluster, cost]) => ({ cluster, cost })).sort((x, y) => (x.cluster < y.cluster ? -1 : 1)),
      };
      if (this.signer !== undefined) ann = { ...ann, sig: this.signer.sign(adjacencySigningBytes(ann)) };
      this.ownAnn = ann;
      this.stats.originated++;
      for (const box of this.outbox.values()) box.set(this.localCluster, ann);
    }
    const messages: OutboundAdjacency[] = [];
    for (const to of [...this.outbox.keys()].sort()) {
      const box = this.outbox.get(to) as Map<string, AdjacencyAnnouncement>;
      if (box.size === 0) continue;
      const announcements = [...box.values()];
      box.clear();
      messages.push({ to, announcements });
      this.stats.messagesSent++;
      this.stats.announcementsSent += announcements.length;
    }
    const current = this.table();
    const events: BestRouteChange[] = [];
    for (const [d, r] of current) {
      const p = this.reported.get(d);
      if (!sameRoute(p, r)) events.push({ destination: d, previous: p, current: r });
    }
    for (const [d, p] of this.reported) if (!current.has(d)) events.push({ destination: d, previous: p, current: undefined });
    this.reported = current;
    return { messages, events };
  }

  private neighboursOf(node: string): Iterable<[string, number]> {
    if (node === this.localCluster) return this.own;
    const s = this.db.get(node);
    if (s === undefined) return [];
    // Two-way check: node→c counts only when c announces node too (own links are the truth for us).
    const out: [string, number][] = [];
    for (const [c, cost] of s.links) {
      const back = c === this.localCluster ? this.own.has(node) : this.db.get(c)?.links.has(node) === true;
      if (back) out.push([c, cost]);
    }
    return out;
  }

  /** Dijkstra from the local cluster, skipping `avoid`; ties by hops, then path id by id. */
  private shortest(avoid?: ReadonlySet<string>): Map<string, ClusterRoute> {
    const best = new Map<string, Label>();
    const done = new Set<string>();
    const heap = new LabelHeap();
    const start: Label = { node: this.localCluster, cost: 0, path: [this.localCluster] };
    best.set(this.localCluster, start);
    heap.push(start);
    const out = new Map<string, ClusterRoute>();
    for (let l = heap.pop(); l !== undefined; l = heap.pop()) {
      if (done.has(l.node) || best.get(l.node) !== l) continue;
      done.add(l.node);
      if (l.node !== this.localCluster) {
        out.set(l.node, { destination: l.node, nextHop: l.path[1] as string, path: l.path, metric: l.cost, offers: OFFER_ALL });
      }
      for (const [c, cost] of this.neighboursOf(l.node)) {
        if (done.has(c) || avoid?.has(c)) continue;
        const cand: Label = { node: c, cost: l.cost + cost, path: [...l.path, c] };
        const cur = best.get(c);
        if (cur === undefined || cmpLabel(cand, cur) < 0) {
          best.set(c, cand);
          heap.push(cand);
        }
      }
    }
    return out;
  }

  private table(): Map<string, ClusterRoute> {
    if (this.cache === undefined) this.cache = this.shortest();
    return this.cache;
  }

  /** The shortest route to `destination`, or undefined. */
  bestRoute(destination: string): ClusterRoute | undefined {
    return this.table().get(destination);
  }

  /** {@inheritDoc ClusterRouteSource.routesTo} At most one route: the shortest (avoiding `avoid`). */
  routesTo(destination: string, avoid?: ReadonlySet<string>): ClusterRoute[] {
    if (destination === this.localCluster) {
      return [{ destination, nextHop: destination, path: [destination], metric: 0, offers: OFFER_ALL }];
    }
    const r = avoid === undefined || avoid.size === 0 ? this.table().get(destination) : this.shortest(avoid).get(destination);
    return r === undefined ? [] : [r];
  }

  /** Every reachable cluster's route, sorted by destination. */
  routes(): ClusterRoute[] {
    return [...this.table().values()].sort((a, b) => (a.destination < b.destination ? -1 : 1));
  }

  /** Clusters whose announcement is held. */
  get size(): number {
    return this.db.size;
  }
}
