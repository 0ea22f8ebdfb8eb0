/**
 * fast-check arbitraries of path-vector route announcements: entries, whole updates and
 * sequences of updates from several neighbours. Every value passes `validateRouteUpdate`
 * unchanged (it returns an equal copy); whether the table accepts each entry (loops, paths
 * that do not start at the advertiser) is left to the options.
 */
import { MpregError } from "@mpreg/envelope";
import fc from "fast-check";
import type { RouteSigner } from "../route-signing.js";
import {
  DEFAULT_MAX_PATH_LENGTH,
  DEFAULT_MAX_UPDATE_ENTRIES,
  MAX_METRIC,
  MAX_TTL_MS,
  ROUTE_UPDATE_VERSION,
  isClusterId,
  type RouteEntry,
  type RouteUpdate,
} from "../route-update.js";
import { offersArb, type PrefixListArbOptions } from "./service-arbitraries.js";

/** Options of {@link routeEntryArb}. */
export interface RouteEntryArbOptions {
  /** The cluster announcing the route: the first id of every clean path. */
  advertiser: string;
  /** Destination cluster ids to draw from (the advertiser may be one: its own route, path `[advertiser]`). */
  destinations: readonly string[];
  /** Ids the clusters between advertiser and destination are drawn from. Default `destinations`. */
  transit?: readonly string[];
  /** Most clusters between advertiser and destination. Default 3; at most DEFAULT_MAX_PATH_LENGTH - 2. */
  maxTransit?: number;
  /** Largest metric. Default 20; at most MAX_METRIC. */
  maxMetric?: number;
  /** Give some routes random `offers` (true, or the prefix list options to use). Default false. */
  offers?: boolean | PrefixListArbOptions;
  /**
   * Also produce paths a route table must refuse though the wire format allows them: about one
   * in ten does not start at the advertiser, and transit clusters may repeat or include the
   * advertiser and the destination. Default false: every path is `[advertiser, ...distinct
   * transit ids, destination]` (it still holds the receiver when `transit` lists it: a loop the
   * receiver must refuse).
   */
  adversarial?: boolean;
}

/** Options of {@link routeUpdateArb}. */
export interface RouteUpdateArbOptions extends RouteEntryArbOptions {
  /** The receiving neighbour (`to`). */
  to: string;
  /** Most routes. Default 4. */
  maxRoutes?: number;
  /** Most withdrawals (ids from `destinations` not routed in the same update). Default 2. */
  maxWithdrawn?: number;
  /** Range of `epoch`. Default 1..2. */
  epoch?: { min: number; max: number };
  /** Range of `seq`. Default 1..1000. */
  seq?: { min: number; max: number };
  /** Range of `ttl_ms`. Default 60 000 (nothing expires in a short test). */
  ttlMs?: { min: number; max: number };
  /** Fixed `full` flag. Default random. */
  full?: boolean;
  /** Signs every update (its `clusterId` must be the advertiser). Default unsigned. */
  signer?: RouteSigner;
}

/** Options of {@link routeAnnouncementsArb}. */
export interface RouteAnnouncementsArbOptions extends Omit<RouteUpdateArbOptions, "advertiser" | "to" | "seq" | "signer"> {
  /** The receiving cluster (`to` of every update). */
  receiver: string;
  /** The neighbours sending updates (each update's advertiser is one of them). */
  neighbours: readonly string[];
  /** Most updates in the sequence. Default 14. */
  maxUpdates?: number;
  /** Signers by cluster id: an update from a neighbour with a signer is signed. Default none. */
  signers?: ReadonlyMap<string, RouteSigner>;
}

/** An update and the neighbour it arrives from (its advertiser). */
export interface RouteAnnouncement {
  from: string;
  update: RouteUpdate;
}

function ids(v: readonly string[] | undefined, name: string, nonEmpty: boolean): string[] {
  if (!Array.isArray(v) || (nonEmpty && v.length === 0)) throw MpregError.invalid(`${name} must be ${nonEmpty ? "a non-empty" : "an"} array of cluster ids`, name);
  v.forEach((c, i) => {
    if (!isClusterId(c)) throw MpregError.invalid(`${name}[${i}] must be a cluster id`, `${name}[${i}]`);
  });
  return [...new Set(v)];
}

function id(v: string, name: string): string {
  if (!isClusterId(v)) throw MpregError.invalid(`${name} must be a cluster id`, name);
  return v;
}

function int(v: number | undefined, dflt: number, name: string, min: number, max: number): number {
  const x = v ?? dflt;
  if (!Number.isSafeInteger(x) || x < min || x > max) throw MpregError.invalid(`${name} must be an integer in ${min}..${max}`, name);
  return x;
}

function range(v: { min: number; max: number } | undefined, dflt: { min: number; max: number }, name: string, min: number, max: number): fc.Arbitrary<number> {
  const r = v ?? dflt;
  const lo = int(r.min, dflt.min, `${name}.min`, min, max);
  const hi = int(r.max, dflt.max, `${name}.max`, lo, max);
  return fc.integer({ min: lo, max: hi });
}

/** One route entry from `advertiser` to one of `destinations` (see {@link RouteEntryArbOptions}). */
export function routeEntryArb(opts: RouteEntryArbOptions): fc.Arbitrary<RouteEntry> {
  const advertiser = id(opts.advertiser, "advertiser");
  const destinations = ids(opts.destinations, "destinations", true);
  const transit = ids(opts.transit ?? destinations, "transit", false);
  const maxTransit = int(opts.maxTransit, 3, "maxTransit", 0, DEFAULT_MAX_PATH_LENGTH - 2);
  const maxMetric = int(opts.maxMetric, 20, "maxMetric", 0, MAX_METRIC);
  const hop = transit.length > 0 ? fc.constantFrom(...transit) : undefined;
  const mid =
    hop === undefined || maxTransit === 0
      ? fc.constant<string[]>([])
      : opts.adversarial === true
        ? fc.array(hop, { maxLength: maxTransit })
        : fc.uniqueArray(hop, { maxLength: maxTransit });
  const offers = opts.offers === undefined || opts.offers === false ? fc.constant(undefined) : fc.option(offersArb(opts.offers === true ? {} : opts.offers), { nil: undefined });
  return fc
    .record({ destination: fc.constantFrom(...destinations), mid, metric: fc.integer({ min: 0, max: maxMetric }), offers, junk: fc.nat(9) })
    .map(({ destination, mid, metric, offers, junk }): RouteEntry => {
      let path: string[];
      if (opts.adversarial === true) {
        // junk 0: a path that does not start at the advertiser.
        path = junk === 0 ? [...mid, destination] : destination === advertiser && mid.length === 0 ? [advertiser] : [advertiser, ...mid, destination];
      } else {
        path = destination === advertiser ? [advertiser] : [advertiser, ...mid.filter((c) => c !== advertiser && c !== destination), destination];
      }
      const e: RouteEntry = { destination, path, metric };
      if (offers !== undefined) e.offers = offers;
      return e;
    });
}

/** One route update from `advertiser` to `to` (see {@link RouteUpdateArbOptions}). */
export function routeUpdateArb(opts: RouteUpdateArbOptions): fc.Arbitrary<RouteUpdate> {
  const advertiser = id(opts.advertiser, "advertiser");
  const to = id(opts.to, "to");
  const destinations = ids(opts.destinations, "destinations", true);
  const maxRoutes = int(opts.maxRoutes, 4, "maxRoutes", 0, DEFAULT_MAX_UPDATE_ENTRIES);
  const maxWithdrawn = int(opts.maxWithdrawn, 2, "maxWithdrawn", 0, DEFAULT_MAX_UPDATE_ENTRIES - maxRoutes);
  if (opts.signer !== undefined && opts.signer.clusterId !== advertiser) throw MpregError.invalid("signer must belong to the advertiser", "signer");
  const signer = opts.signer;
  return fc
    .record({
      routes: fc.uniqueArray(routeEntryArb(opts), { selector: (e) => e.destination, maxLength: maxRoutes }),
      withdrawn: fc.uniqueArray(fc.constantFrom(...destinations), { maxLength: maxWithdrawn }),
      epoch: range(opts.epoch, { min: 1, max: 2 }, "epoch", 0, Number.MAX_SAFE_INTEGER),
      seq: range(opts.seq, { min: 1, max: 1000 }, "seq", 1, Number.MAX_SAFE_INTEGER),
      ttl_ms: range(opts.ttlMs, { min: 60_000, max: 60_000 }, "ttlMs", 1, MAX_TTL_MS),
      full: opts.full === undefined ? fc.boolean() : fc.constant(opts.full),
    })
    .map(({ routes, withdrawn, epoch, seq, ttl_ms, full }): RouteUpdate => {
      // A destination may appear once per update: routed wins over withdrawn.
      const routed = new Set(routes.map((r) => r.destination));
      const u: RouteUpdate = {
        v: ROUTE_UPDATE_VERSION,
        advertiser,
        to,
        epoch,
        seq,
        ttl_ms,
        full,
        routes,
        withdrawn: withdrawn.filter((d) => !routed.has(d)),
      };
      return signer === undefined ? u : signer.signUpdate(u);
    });
}

/**
 * A sequence of updates to `receiver` from random `neighbours`, as a route table could receive
 * them. Update `i` has `seq = i + 1`, so `(epoch, seq)` never repeats for one advertiser and
 * "newest" is always defined: delivering the same updates in any order must give the same
 * routes.
 */
export function routeAnnouncementsArb(opts: RouteAnnouncementsArbOptions): fc.Arbitrary<RouteAnnouncement[]> {
  const receiver = id(opts.receiver, "receiver");
  const neighbours = ids(opts.neighbours, "neighbours", true);
  const maxUpdates = int(opts.maxUpdates, 14, "maxUpdates", 0, 100_000);
  const { signers, ...rest } = opts;
  for (const [c, s] of signers ?? []) if (s.clusterId !== c) throw MpregError.invalid(`signers: the signer of ${c} belongs to ${s.clusterId}`, "signers");
  const one = fc.oneof(...neighbours.map((n) => routeUpdateArb({ ...rest, advertiser: n, to: receiver })));
  return fc.array(one, { maxLength: maxUpdates }).map((us) =>
    us.map((u, i): RouteAnnouncement => {
      const update = { ...u, seq: i + 1 };
      const s = signers?.get(u.advertiser);
      return { from: u.advertiser, update: s === undefined ? update : s.signUpdate(update) };
    }),
  );
}
