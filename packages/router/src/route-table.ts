/**
 * The cluster-level path-vector route table: a sans-I/O state machine. Inputs are link events,
 * route updates from neighbours and ticks, all with the time passed in; outputs, collected by
 * {@link RouteTable.poll}, are route updates to send to each neighbour and best-route changes.
 * See docs/federation.md for the caller's duties and the rules.
 */
import { MpregError, createLogger } from "@mpreg/envelope";
import { compareRoutes, pathTouches, sameRoute, type BestRouteChange, type ClusterRoute, type ClusterRouteSource } from "./cluster-route.js";
import type { KeyRegistry } from "./key-registry.js";
import { FlapDamper, dampingConfig, type DampingConfig } from "./route-damping.js";
import { RoutePolicySet, applyRule, type RoutePolicies } from "./route-policy.js";
import { routeUpdateSigningBytes, type RouteSigner } from "./route-signing.js";
import {
  DEFAULT_MAX_PATH_LENGTH,
  MAX_TTL_MS,
  ROUTE_UPDATE_VERSION,
  isClusterId,
  validateRouteUpdate,
  type RouteEntry,
  type RouteUpdate,
} from "./route-update.js";
import { OFFER_ALL, serviceFilter, serviceFilterToOffers, type Offers, type ServiceFilter } from "./service-filter.js";

const log = createLogger("router");

/** Settings of a {@link RouteTable}. Times in ms. */
export interface RouteTableOptions {
  /** This cluster's id. */
  localCluster: string;
  /**
   * This table's incarnation: must be higher than any earlier incarnation of this cluster's
   * table (the start time in ms is a good choice), so neighbours take its updates as newer.
   */
  epoch: number;
  /** TTL of the routes this table sends: neighbours drop them if not refreshed. Default 90 000. */
  ttlMs?: number;
  /** Full update to each neighbour this often (refreshes TTLs, repairs lost updates). Default 30 000; below `ttlMs`. */
  refreshIntervalMs?: number;
  /**
   * Most destination clusters known. An entry for one more destination is refused
   * (`table_full`, counted); known destinations keep updating. Neighbours' updates may hold one
   * more entry than this (their own cluster). Default 4096.
   */
  maxDestinations?: number;
  /** Most neighbour clusters; one more `linkUp` throws OVERLOADED (1007). Default 256. */
  maxNeighbours?: number;
  /** Longest route path, local cluster included; longer entries are refused (`path_too_long`). Default 32. */
  maxPathLength?: number;
  /** Cost of a link when `linkUp` gives none. Default 1. */
  defaultLinkCost?: number;
  /** Flap damping settings, or false to turn it off. Default on with {@link DEFAULT_DAMPING}. */
  damping?: Partial<DampingConfig> | false;
  /** Import and export policies. Default: none (everything passes). */
  policies?: RoutePolicies;
  /** What this cluster offers on its own route. Default: everything. */
  offers?: Offers;
  /** Signs every update sent. */
  signer?: RouteSigner;
  /** Verifies signed updates; with it, a signature that does not verify is always refused. */
  keys?: KeyRegistry;
  /** Refuse unsigned updates (needs `keys`). Default false. */
  requireSignatures?: boolean;
}

/** Why a whole update was refused. */
export type UpdateRefusal =
  | "invalid"
  | "unknown_neighbour"
  | "advertiser_mismatch"
  | "wrong_recipient"
  | "unsigned"
  | "bad_signature"
  | "stale";

/** Why one entry of an update was refused (a refused route also withdraws the neighbour's earlier one). */
export type EntryRefusal = "loop" | "path_mismatch" | "path_too_long" | "policy" | "table_full";

/** Outcome of {@link RouteTable.receive}. */
export interface RouteReceiveResult {
  accepted: boolean;
  reason?: UpdateRefusal;
  /** Routes and withdrawals applied. */
  applied: number;
  /** Entries older than what is held (ignored). */
  stale: number;
  /** Entries refused (see {@link EntryRefusal}). */
  refused: number;
}

/** An update for the driver to send to neighbour `to`. */
export interface OutboundRouteUpdate {
  to: string;
  update: RouteUpdate;
}

/** What {@link RouteTable.poll} hands out. */
export interface RouteTableOutput {
  updates: OutboundRouteUpdate[];
  events: BestRouteChange[];
}

/** Counters of a {@link RouteTable}. */
export interface RouteTableStats {
  updatesReceived: number;
  updatesRefused: Record<UpdateRefusal, number>;
  entriesApplied: number;
  entriesStale: number;
  entriesRefused: Record<EntryRefusal, number>;
  updatesSent: number;
  entriesSent: number;
  bestChanges: number;
}

type Seq = readonly [epoch: number, seq: number];

function cmpSeq(a: Seq, b: Seq): number {
  return a[0] !== b[0] ? a[0] - b[0] : a[1] - b[1];
}

interface InEntry {
  seq: Seq;
  expiresAt: number;
  /** The entry as received (before policy): undefined for a withdrawal or refused route. */
  raw: RouteEntry | undefined;
  /** Normalised offers of `raw`. */
  rawOffers: ServiceFilter;
  /** The route after the import policy: undefined when withdrawn or refused. */
  route: ClusterRoute | undefined;
}

interface Neighbour {
  readonly id: string;
  cost: number;
  /** False while damping holds the link: nothing is sent, its routes are not used. */
  up: boolean;
  readonly ribIn: Map<string, InEntry>;
  fullSeq: Seq | undefined;
  /** What was last sent per destination (JSON of the entry). */
  readonly ribOut: Map<string, string>;
  readonly dirty: Set<string>;
  fullDue: boolean;
  refreshAt: number;
}

function uintOpt(v: number | undefined, dflt: number, name: string, min = 1): number {
  const x = v ?? dflt;
  if (!Number.isSafeInteger(x) || x < min) throw MpregError.invalid(`${name} must be an integer >= ${min}`, name);
  return x;
}

const linkKey = (n: string): string => JSON.stringify([n]);
const samePath = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((c, i) => c === b[i]);
const routeKey = (n: string, d: string): string => JSON.stringify([n, d]);

/**
 * Path-vector routes between clusters. One route per (neighbour, destination) is held as
 * received (so a policy reload can re-evaluate it); the best usable one per destination is
 * chosen by {@link compareRoutes} and exported to every neighbour whose export policy lets it
 * through and that is not on its path.
 *
 * Rules, in short (docs/federation.md has the full list):
 * - an entry whose path holds this cluster (or repeats a cluster) is a loop: refused, and it
 *   withdraws that neighbour's earlier route to the destination;
 * - per (neighbour, destination) the newest `(epoch, seq)` wins, and a full update withdraws
 *   every older entry it does not list, so the outcome does not depend on arrival order;
 * - routes expire `ttl_ms` after they were received; neighbours refresh them;
 * - flapping routes and links are damped; a damped link sends and uses nothing until released.
 */
export class RouteTable implements ClusterRouteSource {
  readonly localCluster: string;
  readonly epoch: number;
  readonly stats: RouteTableStats = {
    updatesReceived: 0,
    updatesRefused: {
      invalid: 0,
      unknown_neighbour: 0,
      advertiser_mismatch: 0,
      wrong_recipient: 0,
      unsigned: 0,
      bad_signature: 0,
      stale: 0,
    },
    entriesApplied: 0,
    entriesStale: 0,
    entriesRefused: { loop: 0, path_mismatch: 0, path_too_long: 0, policy: 0, table_full: 0 },
    updatesSent: 0,
    entriesSent: 0,
    bestChanges: 0,
  };

  private readonly ttlMs: number;
  private readonly refreshIntervalMs: number;
  private readonly maxDestinations: number;
  private readonly maxNeighbours: number;
  private readonly maxPathLength: number;
  private readonly defaultLinkCost: number;
  private readonly damper: FlapDamper | undefined;
  private signer: RouteSigner | undefined;
  private readonly keys: KeyRegistry | undefined;
  private readonly requireSignatures: boolean;
  private policies: RoutePolicySet;
  private localRoute: ClusterRoute;

  private readonly neighbours = new Map<string, Neighbour>();
  private readonly best = new Map<string, ClusterRoute>();
  /**
   * Routes held by the other gateways of this cluster (one per destination, set by the driver
   * from their gateway announcements): exported to neighbours when better than this table's
   * own best, never used as this table's best (they are not this node's to forward on).
   */
  private internal = new Map<string, ClusterRoute>();
  /** Neighbours holding an entry (route or withdrawal) per destination: the destination bound. */
  private readonly destRefs = new Map<string, number>();
  /** Best route before the first change since the last poll, per destination. */
  private readonly pendingEvents = new Map<string, ClusterRoute | undefined>();
  private seq = 0;
  private now = 0;

  /** @throws {MpregError} 1002 naming the bad option. */
  constructor(opts: RouteTableOptions) {
    if (!isClusterId(opts.localCluster)) throw MpregError.invalid("localCluster must be a cluster id", "localCluster");
    this.localCluster = opts.localCluster;
    this.epoch = uintOpt(opts.epoch, 0, "epoch", 0);
    this.ttlMs = uintOpt(opts.ttlMs, 90_000, "ttlMs");
    if (this.ttlMs > MAX_TTL_MS) throw MpregError.invalid(`ttlMs must be at most ${MAX_TTL_MS}`, "ttlMs");
    this.refreshIntervalMs = uintOpt(opts.refreshIntervalMs, 30_000, "refreshIntervalMs");
    if (this.refreshIntervalMs >= this.ttlMs) throw MpregError.invalid("refreshIntervalMs must be below ttlMs", "refreshIntervalMs");
    this.maxDestinations = uintOpt(opts.maxDestinations, 4096, "maxDestinations");
    this.maxNeighbours = uintOpt(opts.maxNeighbours, 256, "maxNeighbours");
    this.maxPathLength = uintOpt(opts.maxPathLength, DEFAULT_MAX_PATH_LENGTH, "maxPathLength", 2);
    this.defaultLinkCost = uintOpt(opts.defaultLinkCost, 1, "defaultLinkCost", 0);
    this.damper = opts.damping === false ? undefined : new FlapDamper(dampingConfig(opts.damping ?? {}));
    this.signer = opts.signer;
    if (opts.signer !== undefined && opts.signer.clusterId !== opts.localCluster) {
      throw MpregError.invalid("signer must belong to localCluster", "signer");
    }
    this.keys = opts.keys;
    this.requireSignatures = opts.requireSignatures ?? false;
    if (this.requireSignatures && this.keys === undefined) throw MpregError.invalid("requireSignatures needs keys", "requireSignatures");
    this.policies = RoutePolicySet.compile(opts.policies);
    this.localRoute = this.makeLocalRoute(serviceFilter(opts.offers));
    this.best.set(this.localCluster, this.localRoute);
  }

  private makeLocalRoute(offers: ServiceFilter): ClusterRoute {
    return { destination: this.localCluster, nextHop: this.localCluster, path: [this.localCluster], metric: 0, offers };
  }

  private clock(now: number): void {
    if (now > this.now) this.now = now;
  }

  // ---------------------------------------------------------------- links

  /**
   * A link to neighbour cluster `neighbour` is up (again: its cost is updated). The neighbour
   * gets a full update at the next poll, unless damping holds the link.
   * @throws {MpregError} 1002 for a bad id or cost, 1007 when `maxNeighbours` are linked.
   */
  linkUp(neighbour: string, now: number, opts: { cost?: number } = {}): void {
    this.clock(now);
    if (!isClusterId(neighbour) || neighbour === this.localCluster) {
      throw MpregError.invalid("neighbour must be another cluster's id", "neighbour");
    }
    const cost = uintOpt(opts.cost, this.defaultLinkCost, "cost", 0);
    const existing = this.neighbours.get(neighbour);
    if (existing !== undefined) {
      if (existing.cost !== cost) {
        existing.cost = cost;
        for (const e of existing.ribIn.values()) if (e.raw !== undefined) e.route = this.importRoute(existing, e.raw, e.rawOffers);
        for (const d of existing.ribIn.keys()) this.recompute(d);
      }
      return;
    }
    if (this.neighbours.size >= this.maxNeighbours) {
      throw MpregError.overloaded(`route table: more than ${this.maxNeighbours} neighbours`);
    }
    const held = this.damper?.isSuppressed(linkKey(neighbour), now) ?? false;
    if (held) log.debug(`link to ${neighbour} held by damping`);
    this.neighbours.set(neighbour, {
      id: neighbour,
      cost,
      up: !held,
      ribIn: new Map(),
      fullSeq: undefined,
      ribOut: new Map(),
      dirty: new Set(),
      fullDue: true,
      refreshAt: now + this.refreshIntervalMs,
    });
  }

  /** The link to `neighbour` is down: its routes go, and the loss counts as a flap of the link. */
  linkDown(neighbour: string, now: number): boolean {
    this.clock(now);
    const n = this.neighbours.get(neighbour);
    if (n === undefined) return false;
    this.neighbours.delete(neighbour);
    this.damper?.flap(linkKey(neighbour), this.damper.config.withdrawPenalty, now);
    for (const [d, e] of n.ribIn) {
      this.unref(d);
      if (e.route !== undefined) this.recompute(d);
    }
    return true;
  }

  /** Neighbour ids, sorted, with whether each is in use (false: held by damping). */
  neighbourIds(): { id: string; up: boolean }[] {
    return [...this.neighbours.values()].map((n) => ({ id: n.id, up: n.up })).sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  // ---------------------------------------------------------------- receiving

  /**
   * An update arrived from neighbour cluster `from` (the cluster of the authenticated peer
   * link it came on). Checks, in order: a linked neighbour, the shape, `advertiser == from`,
   * `to == localCluster`, the signature, then staleness; then each entry (see the class
   * comment). Never throws on bad input: refusals are returned and counted.
   */
  receive(from: string, raw: unknown, now: number): RouteReceiveResult {
    this.clock(now);
    this.stats.updatesReceived++;
    const n = this.neighbours.get(from);
    if (n === undefined) return this.refuse("unknown_neighbour");
    let u: RouteUpdate;
    try {
      u = validateRouteUpdate(raw, { maxEntries: this.maxDestinations + 1, maxPathLength: this.maxPathLength });
    } catch (e) {
      log.debug(`invalid route update from ${from}: ${(e as Error).message}`);
      return this.refuse("invalid");
    }
    if (u.advertiser !== from) return this.refuse("advertiser_mismatch");
    if (u.to !== this.localCluster) return this.refuse("wrong_recipient");
    if (this.keys !== undefined && (u.sig !== undefined || this.requireSignatures)) {
      const v = this.keys.verify(from, u.sig, routeUpdateSigningBytes(u), now);
      if (v === "unsigned") return this.refuse("unsigned");
      if (v !== "ok") return this.refuse("bad_signature");
    }
    const useq: Seq = [u.epoch, u.seq];
    if (n.fullSeq !== undefined && cmpSeq(useq, n.fullSeq) <= 0) return this.refuse("stale");
    const result: RouteReceiveResult = { accepted: true, applied: 0, stale: 0, refused: 0 };
    const expiresAt = now + u.ttl_ms;
    const listed = new Set<string>();
    for (const r of u.routes) {
      listed.add(r.destination);
      this.applyEntry(n, useq, expiresAt, r.destination, r, result, now);
    }
    for (const d of u.withdrawn) {
      listed.add(d);
      this.applyEntry(n, useq, expiresAt, d, undefined, result, now);
    }
    if (u.full) {
      n.fullSeq = useq;
      // Everything older that the full update does not list is withdrawn as of it.
      for (const [d, e] of n.ribIn) {
        if (listed.has(d) || cmpSeq(e.seq, useq) >= 0) continue;
        n.ribIn.delete(d);
        this.unref(d);
        if (e.route !== undefined) {
          this.damper?.flap(routeKey(n.id, d), this.damper.config.withdrawPenalty, now);
          this.recompute(d);
        }
      }
    }
    return result;
  }

  private refuse(reason: UpdateRefusal): RouteReceiveResult {
    this.stats.updatesRefused[reason]++;
    return { accepted: false, reason, applied: 0, stale: 0, refused: 0 };
  }

  private applyEntry(
    n: Neighbour,
    useq: Seq,
    expiresAt: number,
    d: string,
    r: RouteEntry | undefined,
    result: RouteReceiveResult,
    now: number,
  ): void {
    const prev = n.ribIn.get(d);
    if (prev !== undefined && cmpSeq(prev.seq, useq) >= 0) {
      result.stale++;
      this.stats.entriesStale++;
      return;
    }
    if (prev === undefined && !this.destRefs.has(d) && this.destRefs.size >= this.maxDestinations) {
      this.entryRefused("table_full", result);
      return;
    }
    let raw = r;
    let rawOffers = OFFER_ALL;
    if (r !== undefined) {
      const why = this.checkPath(n.id, d, r.path);
      if (why !== undefined) {
        // The neighbour's current route is unusable here: it supersedes (withdraws) the old one.
        this.entryRefused(why, result);
        raw = undefined;
      } else {
        rawOffers = serviceFilter(r.offers, "offers");
      }
    }
    const route = raw === undefined ? undefined : this.importRoute(n, raw, rawOffers);
    if (raw !== undefined && route === undefined) this.entryRefused("policy", result);
    else if (raw !== undefined || r === undefined) {
      result.applied++;
      this.stats.entriesApplied++;
    }
    if (prev === undefined) this.ref(d);
    // Kept even when refused by policy: a reload may admit it.
    n.ribIn.set(d, { seq: useq, expiresAt, raw, rawOffers, route });
    const old = prev?.route;
    if (this.damper !== undefined && old !== undefined) {
      if (raw === undefined) this.damper.flap(routeKey(n.id, d), this.damper.config.withdrawPenalty, now);
      else if (route !== undefined && (route.metric !== old.metric || !samePath(route.path, old.path))) {
        this.damper.flap(routeKey(n.id, d), this.damper.config.changePenalty, now);
      }
    }
    if (old !== undefined || route !== undefined) this.recompute(d);
  }

  private entryRefused(why: EntryRefusal, result: RouteReceiveResult): void {
    result.refused++;
    this.stats.entriesRefused[why]++;
  }

  private checkPath(from: string, d: string, path: readonly string[]): EntryRefusal | undefined {
    if (d === this.localCluster) return "loop";
    const seen = new Set<string>();
    for (const c of path) {
      if (c === this.localCluster || seen.has(c)) return "loop";
      seen.add(c);
    }
    if (path[0] !== from || path[path.length - 1] !== d) return "path_mismatch";
    if (path.length + 1 > this.maxPathLength) return "path_too_long";
    return undefined;
  }

  private importRoute(n: Neighbour, r: RouteEntry, offers: ServiceFilter): ClusterRoute | undefined {
    const res = applyRule(this.policies.importRule(n.id), r.destination, offers, r.metric + n.cost);
    if (res === undefined) return undefined;
    return { destination: r.destination, nextHop: n.id, path: [this.localCluster, ...r.path], metric: res.metric, offers: res.offers };
  }

  private ref(d: string): void {
    this.destRefs.set(d, (this.destRefs.get(d) ?? 0) + 1);
  }

  private unref(d: string): void {
    const c = (this.destRefs.get(d) ?? 1) - 1;
    if (c <= 0) this.destRefs.delete(d);
    else this.destRefs.set(d, c);
  }

  // ---------------------------------------------------------------- selection

  private candidates(d: string, now: number): ClusterRoute[] {
    if (d === this.localCluster) return [this.localRoute];
    const out: ClusterRoute[] = [];
    for (const n of this.neighbours.values()) {
      if (!n.up) continue;
      const e = n.ribIn.get(d);
      if (e?.route === undefined || e.expiresAt <= now) continue;
      if (this.damper?.isSuppressed(routeKey(n.id, d), now)) continue;
      out.push(e.route);
    }
    return out.sort(compareRoutes);
  }

  private recompute(d: string): void {
    if (d === this.localCluster) return;
    const next = this.candidates(d, this.now)[0];
    const prev = this.best.get(d);
    if (sameRoute(prev, next)) return;
    if (next === undefined) this.best.delete(d);
    else this.best.set(d, next);
    if (!this.pendingEvents.has(d)) this.pendingEvents.set(d, prev);
    this.stats.bestChanges++;
    for (const n of this.neighbours.values()) if (n.up) n.dirty.add(d);
  }

  /** The best route to `destination` (the local route for the local cluster), or undefined. */
  bestRoute(destination: string): ClusterRoute | undefined {
    return this.best.get(destination);
  }

  /**
   * Sets the routes the other gateways of this cluster hold (iBGP-like; replaces the earlier
   * set): per destination the best one, with its path from this cluster (`path[0]` is the local
   * cluster) and its metric and offers as that gateway's table holds them (its import rule
   * applied). A destination's route is exported to a neighbour when it is better
   * ({@link compareRoutes}; this table's own best wins ties) than this table's own best, under
   * the same split horizon and export rule; when it goes, what was sent is replaced or
   * withdrawn at the next poll. These routes are never re-announced inside the cluster (only
   * {@link routes} are) and do not change {@link bestRoute} or the events, so a cluster's
   * gateways cannot feed each other stale routes. At most `maxDestinations` are kept (the
   * smallest destination ids).
   * @throws {MpregError} 1002 for a route that does not run from this cluster to another
   * cluster without repeats, or a destination listed twice (nothing changes then).
   */
  setClusterRoutes(routes: readonly ClusterRoute[], now: number): void {
    this.clock(now);
    const next = new Map<string, ClusterRoute>();
    const sorted = [...routes].sort((a, b) => (a.destination < b.destination ? -1 : a.destination > b.destination ? 1 : 0));
    for (const [i, r] of sorted.entries()) {
      const p = r.path;
      if (
        !isClusterId(r.destination) ||
        r.destination === this.localCluster ||
        p.length < 2 ||
        p.length > this.maxPathLength ||
        p[0] !== this.localCluster ||
        p[p.length - 1] !== r.destination ||
        r.nextHop !== p[1] ||
        new Set(p).size !== p.length
      ) {
        throw MpregError.invalid(`cluster route ${i} must run from ${this.localCluster} to another cluster without repeats`, `routes[${i}]`);
      }
      if (next.has(r.destination)) throw MpregError.invalid(`cluster route to ${r.destination} listed twice`, `routes[${i}]`);
      if (next.size < this.maxDestinations) next.set(r.destination, r);
    }
    const prev = this.internal;
    this.internal = next;
    for (const d of new Set([...prev.keys(), ...next.keys()])) {
      if (sameRoute(prev.get(d), next.get(d))) continue;
      for (const n of this.neighbours.values()) if (n.up) n.dirty.add(d);
    }
  }

  /**
   * The route exported for `destination` (before split horizon and export rules): this table's
   * best, or the cluster route of another gateway when that one is better.
   */
  exportedRoute(destination: string): ClusterRoute | undefined {
    const own = this.best.get(destination);
    const other = destination === this.localCluster ? undefined : this.internal.get(destination);
    if (other === undefined) return own;
    if (own === undefined) return other;
    return compareRoutes(other, own) < 0 ? other : own;
  }

  /** {@inheritDoc ClusterRouteSource.routesTo} One route per neighbour at most. */
  routesTo(destination: string, avoid?: ReadonlySet<string>): ClusterRoute[] {
    const all = this.candidates(destination, this.now);
    return avoid === undefined ? all : all.filter((r) => !pathTouches(r, avoid));
  }

  /** Every best route, sorted by destination (the local route included). */
  routes(): ClusterRoute[] {
    return [...this.best.values()].sort((a, b) => (a.destination < b.destination ? -1 : a.destination > b.destination ? 1 : 0));
  }

  /** Destinations with a best route, the local cluster included. */
  get size(): number {
    return this.best.size;
  }

  /** True when damping suppresses neighbour `n`'s route to `destination` at `now`. */
  isSuppressed(n: string, destination: string, now: number): boolean {
    return this.damper?.isSuppressed(routeKey(n, destination), now) ?? false;
  }

  // ---------------------------------------------------------------- time and reload

  /**
   * Time passes: expired routes go, damped routes and links whose penalty decayed are used
   * again (a released link gets a full update), and neighbours due a refresh get a full update
   * at the next poll. Call it every second or so.
   */
  tick(now: number): void {
    this.clock(now);
    for (const n of this.neighbours.values()) {
      for (const [d, e] of n.ribIn) {
        if (e.expiresAt > now) continue;
        n.ribIn.delete(d);
        this.unref(d);
        if (e.route !== undefined) this.recompute(d);
      }
    }
    if (this.damper !== undefined) {
      for (const key of this.damper.release(now)) {
        const d = (JSON.parse(key) as string[])[1];
        if (d !== undefined) this.recompute(d);
      }
      for (const n of this.neighbours.values()) {
        if (n.up || this.damper.isSuppressed(linkKey(n.id), now)) continue;
        n.up = true;
        n.fullDue = true;
        for (const dest of n.ribIn.keys()) this.recompute(dest);
      }
    }
    for (const n of this.neighbours.values()) if (n.up && now >= n.refreshAt) n.fullDue = true;
  }

  /**
   * Signs every update from now on with `signer` (key rotation: announce the new key, signed by
   * the current one, before switching, so neighbours trust it when the first update arrives).
   * @throws {MpregError} 1002 when the signer is of another cluster.
   */
  setSigner(signer: RouteSigner): void {
    if (signer.clusterId !== this.localCluster) throw MpregError.invalid("signer must belong to localCluster", "signer");
    this.signer = signer;
  }

  /**
   * Replaces the policies and/or the local offers at runtime. Every route held is re-evaluated
   * under the new import policy (routes are kept as received, so one refused before can be
   * admitted now), best routes are recomputed, and every neighbour gets a full update under
   * the new export policy at the next poll.
   * @throws {MpregError} 1002 when the new policies are malformed (nothing is changed then).
   */
  reconfigure(cfg: { policies?: RoutePolicies; offers?: Offers }, now: number): void {
    this.clock(now);
    const policies = cfg.policies !== undefined ? RoutePolicySet.compile(cfg.policies) : this.policies;
    const offers = cfg.offers !== undefined ? serviceFilter(cfg.offers) : this.localRoute.offers;
    this.policies = policies;
    this.localRoute = this.makeLocalRoute(offers);
    this.best.set(this.localCluster, this.localRoute);
    const dests = new Set<string>();
    for (const n of this.neighbours.values()) {
      for (const [d, e] of n.ribIn) {
        if (e.raw !== undefined) e.route = this.importRoute(n, e.raw, e.rawOffers);
        dests.add(d);
      }
      n.fullDue = true;
    }
    for (const d of dests) this.recompute(d);
  }

  // ---------------------------------------------------------------- output

  private exportEntry(n: Neighbour, d: string): RouteEntry | undefined {
    const r = this.exportedRoute(d);
    // Split horizon: a route through the neighbour would be a loop there.
    if (r === undefined || r.path.includes(n.id)) return undefined;
    const res = applyRule(this.policies.exportRule(n.id), d, r.offers, r.metric);
    if (res === undefined) return undefined;
    const entry: RouteEntry = { destination: d, path: r.path.slice(), metric: res.metric };
    const offers = serviceFilterToOffers(res.offers);
    if (offers !== undefined) entry.offers = offers;
    return entry;
  }

  /**
   * Collects what to send and what changed since the last poll: at most one update per
   * neighbour in use (a full one when due, else the changed destinations), signed when a
   * signer is configured, and the best-route changes (one per destination, net of changes
   * that cancelled out).
   */
  poll(now: number): RouteTableOutput {
    this.clock(now);
    const updates: OutboundRouteUpdate[] = [];
    const ids = [...this.neighbours.keys()].sort();
    for (const id of ids) {
      const n = this.neighbours.get(id) as Neighbour;
      if (!n.up) continue;
      const routes: RouteEntry[] = [];
      const withdrawn: string[] = [];
      const full = n.fullDue;
      if (full) {
        n.ribOut.clear();
        for (const d of [...new Set([...this.best.keys(), ...this.internal.keys()])].sort()) {
          const e = this.exportEntry(n, d);
          if (e === undefined) continue;
          routes.push(e);
          n.ribOut.set(d, JSON.stringify(e));
        }
        n.fullDue = false;
        n.refreshAt = now + this.refreshIntervalMs;
      } else {
        if (n.dirty.size === 0) continue;
        for (const d of [...n.dirty].sort()) {
          const e = this.exportEntry(n, d);
          const old = n.ribOut.get(d);
          if (e !== undefined) {
            const key = JSON.stringify(e);
            if (key === old) continue;
            routes.push(e);
            n.ribOut.set(d, key);
          } else if (old !== undefined) {
            withdrawn.push(d);
            n.ribOut.delete(d);
          }
        }
        if (routes.length === 0 && withdrawn.length === 0) {
          n.dirty.clear();
          continue;
        }
      }
      n.dirty.clear();
      let update: RouteUpdate = {
        v: ROUTE_UPDATE_VERSION,
        advertiser: this.localCluster,
        to: id,
        epoch: this.epoch,
        seq: ++this.seq,
        ttl_ms: this.ttlMs,
        full,
        routes,
        withdrawn,
      };
      if (this.signer !== undefined) update = this.signer.signUpdate(update);
      this.stats.updatesSent++;
      this.stats.entriesSent += routes.length + withdrawn.length;
      updates.push({ to: id, update });
    }
    const events: BestRouteChange[] = [];
    for (const [d, previous] of this.pendingEvents) {
      const current = this.best.get(d);
      if (!sameRoute(previous, current)) events.push({ destination: d, previous, current });
    }
    this.pendingEvents.clear();
    return { updates, events };
  }
}
