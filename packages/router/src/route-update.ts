/**
 * The path-vector control message: a route update one cluster sends to a neighbour cluster,
 * and its validation. Field names are snake_case like every wire message. Validation checks
 * shapes and limits and returns a copy holding only known fields, in the order received (the
 * signature covers that order); the meaning (loops, staleness, policy) is the table's to judge.
 */
import { MpregError } from "@mpreg/envelope";
import { MAX_PREFIXES, MAX_PREFIX_LENGTH, type PrefixList } from "./prefix-filter.js";
import type { Offers } from "./service-filter.js";

/** Version of the route update format. */
export const ROUTE_UPDATE_VERSION = 1;
/** Longest cluster id accepted (as the server's `clusterId`). */
export const MAX_CLUSTER_ID_LENGTH = 128;
/** Largest metric; a route past it is unreachable. */
export const MAX_METRIC = 1_000_000_000;
/** Longest TTL a route update may carry (one day). */
export const MAX_TTL_MS = 86_400_000;
/** Default most routes plus withdrawals in one update. */
export const DEFAULT_MAX_UPDATE_ENTRIES = 4096;
/** Default longest path (cluster ids, advertiser to destination). */
export const DEFAULT_MAX_PATH_LENGTH = 32;

/** One route offered by the advertiser. */
export interface RouteEntry {
  /** The destination cluster. */
  destination: string;
  /** Clusters from the advertiser (first) to the destination (last); no repeats. */
  path: string[];
  /** Cost from the advertiser to the destination: integer in 0..MAX_METRIC. */
  metric: number;
  /** What the route offers; absent lets every name through. */
  offers?: Offers;
}

/** Ed25519 signature of an update (or another signed control message). */
export interface RouteSignature {
  /** Id of the signing key (see `routeKeyId`). */
  key_id: string;
  /** The 64-byte signature, base64url without padding. */
  value: string;
}

/**
 * A route update: routes and withdrawals from `advertiser` to its neighbour `to`.
 *
 * - `(epoch, seq)` orders updates of one advertiser: `epoch` is the advertiser's incarnation
 *   (it grows across restarts), `seq` counts its updates within an epoch. Per destination, the
 *   newest `(epoch, seq)` wins, whatever order updates arrive in.
 * - `full: true` states the advertiser's whole table for this neighbour: any destination it
 *   does not list is withdrawn as of this update.
 * - `ttl_ms`: how long the receiver keeps these routes without a newer update (relative, so
 *   clusters need no synchronised clocks).
 */
export interface RouteUpdate {
  v: 1;
  advertiser: string;
  to: string;
  epoch: number;
  seq: number;
  ttl_ms: number;
  full: boolean;
  routes: RouteEntry[];
  withdrawn: string[];
  sig?: RouteSignature;
}

/** Limits of {@link validateRouteUpdate}. */
export interface RouteUpdateLimits {
  /** Most routes plus withdrawals. Default {@link DEFAULT_MAX_UPDATE_ENTRIES}. */
  maxEntries?: number;
  /** Longest path. Default {@link DEFAULT_MAX_PATH_LENGTH}. */
  maxPathLength?: number;
}

type Raw = Record<string, unknown>;

function bad(reason: string, path: string): never {
  throw MpregError.invalid(`route update: ${path === "" ? "" : `${path} `}${reason}`, path);
}

function obj(v: unknown, path: string): Raw {
  if (typeof v !== "object" || v === null || Array.isArray(v)) bad("must be an object", path);
  return v as Raw;
}

/** True when `v` is a cluster id: a non-empty string of at most MAX_CLUSTER_ID_LENGTH characters. */
export function isClusterId(v: unknown): v is string {
  return typeof v === "string" && v.length > 0 && v.length <= MAX_CLUSTER_ID_LENGTH;
}

function clusterId(v: unknown, path: string): string {
  if (!isClusterId(v)) bad(`must be a cluster id (1..${MAX_CLUSTER_ID_LENGTH} characters)`, path);
  return v;
}

function uint(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) bad(`must be an integer in ${min}..${max}`, path);
  return v;
}

function prefixList(v: unknown, path: string): PrefixList {
  const o = obj(v, path);
  const out: PrefixList = {};
  for (const k of ["allow", "deny"] as const) {
    const l = o[k];
    if (l === undefined) continue;
    if (!Array.isArray(l) || l.length > MAX_PREFIXES) bad(`must be an array of at most ${MAX_PREFIXES} prefixes`, `${path}.${k}`);
    l.forEach((p: unknown, i) => {
      if (typeof p !== "string" || p.length > MAX_PREFIX_LENGTH) bad(`must be a string of at most ${MAX_PREFIX_LENGTH} characters`, `${path}.${k}[${i}]`);
    });
    out[k] = (l as string[]).slice();
  }
  return out;
}

function offers(v: unknown, path: string): Offers {
  const o = obj(v, path);
  const out: Offers = {};
  for (const k of ["functions", "topics", "queues"] as const) if (o[k] !== undefined) out[k] = prefixList(o[k], `${path}.${k}`);
  return out;
}

/** Checks a signature object; returns a clean copy. */
export function validateSignature(v: unknown, path: string): RouteSignature {
  const o = obj(v, path);
  if (typeof o.key_id !== "string" || o.key_id.length === 0 || o.key_id.length > 64) bad("must be a short string", `${path}.key_id`);
  if (typeof o.value !== "string" || o.value.length > 128) bad("must be a base64url signature", `${path}.value`);
  return { key_id: o.key_id, value: o.value };
}

/**
 * Checks a decoded route update and returns a clean copy (known fields only, order kept).
 * A destination appearing twice (in `routes` or `withdrawn`) is refused: its meaning would
 * depend on the order.
 * @throws {MpregError} 1002 naming the offending field.
 */
export function validateRouteUpdate(v: unknown, limits: RouteUpdateLimits = {}): RouteUpdate {
  const maxEntries = limits.maxEntries ?? DEFAULT_MAX_UPDATE_ENTRIES;
  const maxPath = limits.maxPathLength ?? DEFAULT_MAX_PATH_LENGTH;
  const o = obj(v, "update");
  if (o.v !== ROUTE_UPDATE_VERSION) bad(`must be ${ROUTE_UPDATE_VERSION}`, "v");
  if (typeof o.full !== "boolean") bad("must be a boolean", "full");
  if (!Array.isArray(o.routes)) bad("must be an array", "routes");
  if (!Array.isArray(o.withdrawn)) bad("must be an array", "withdrawn");
  if (o.routes.length + o.withdrawn.length > maxEntries) bad(`more than ${maxEntries} routes and withdrawals`, "routes");
  const seen = new Set<string>();
  const routes = (o.routes as unknown[]).map((r, i): RouteEntry => {
    const p = `routes[${i}]`;
    const e = obj(r, p);
    const destination = clusterId(e.destination, `${p}.destination`);
    if (seen.has(destination)) bad("destination listed twice", `${p}.destination`);
    seen.add(destination);
    if (!Array.isArray(e.path) || e.path.length === 0 || e.path.length > maxPath) {
      bad(`must hold 1..${maxPath} cluster ids`, `${p}.path`);
    }
    const path = (e.path as unknown[]).map((c, j) => clusterId(c, `${p}.path[${j}]`));
    const entry: RouteEntry = { destination, path, metric: uint(e.metric, `${p}.metric`, 0, MAX_METRIC) };
    if (e.offers !== undefined) entry.offers = offers(e.offers, `${p}.offers`);
    return entry;
  });
  const withdrawn = (o.withdrawn as unknown[]).map((d, i) => {
    const id = clusterId(d, `withdrawn[${i}]`);
    if (seen.has(id)) bad("destination listed twice", `withdrawn[${i}]`);
    seen.add(id);
    return id;
  });
  const out: RouteUpdate = {
    v: ROUTE_UPDATE_VERSION,
    advertiser: clusterId(o.advertiser, "advertiser"),
    to: clusterId(o.to, "to"),
    epoch: uint(o.epoch, "epoch", 0, Number.MAX_SAFE_INTEGER),
    seq: uint(o.seq, "seq", 1, Number.MAX_SAFE_INTEGER),
    ttl_ms: uint(o.ttl_ms, "ttl_ms", 1, MAX_TTL_MS),
    full: o.full,
    routes,
    withdrawn,
  };
  if (o.sig !== undefined) out.sig = validateSignature(o.sig, "sig");
  return out;
}
