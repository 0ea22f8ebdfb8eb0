/**
 * The `federation` section of a node's configuration and the components built from it: the
 * route table (or link-state database), the key registry and the signer. Validated once, with
 * errors naming the field (`federation.export[1].metricAdd`).
 */
import { MpregError } from "@mpreg/envelope";
import { ClusterLinkState } from "./cluster-link-state.js";
import type { ClusterRouteSource } from "./cluster-route.js";
import { KeyRegistry, type TrustedKey } from "./key-registry.js";
import { dampingConfig, type DampingConfig } from "./route-damping.js";
import { RoutePolicySet, type RoutePolicyRule } from "./route-policy.js";
import { RouteSigner } from "./route-signing.js";
import { RouteTable } from "./route-table.js";
import { isClusterId } from "./route-update.js";
import { serviceFilter, type Offers } from "./service-filter.js";

/** A configured link to another cluster: the driver dials `url` and expects `clusterId` there. */
export interface FederationLinkConfig {
  url: string;
  clusterId: string;
  /** Link cost (integer >= 0). Default 1. */
  cost?: number;
}

/** Keys: this cluster's signing key and the keys it trusts for other clusters. */
export interface FederationKeysConfig {
  /** This cluster's Ed25519 private seed, base64url (from `generateRouteKey().seed`). */
  signingKey?: string;
  /** Public keys trusted per cluster (by configuration). */
  trusted?: TrustedKey[];
  /** Longest rotation overlap accepted from a key announcement (ms). Default 1 day. */
  maxOverlapMs?: number;
}

/** The `federation` configuration section (see docs/federation.md for examples). */
export interface FederationConfig {
  /** `path-vector` (default; policies apply) or `link-state`. */
  mode?: "path-vector" | "link-state";
  /** Links to neighbour clusters. */
  links?: FederationLinkConfig[];
  /** What this cluster offers to others (before export policies). Default: everything. */
  offers?: Offers;
  /** Export rules (routes this cluster sends to a neighbour). */
  export?: RoutePolicyRule[];
  /** Import rules (routes this cluster accepts from a neighbour). */
  import?: RoutePolicyRule[];
  keys?: FederationKeysConfig;
  /** Refuse unsigned control messages (needs `keys.trusted`). Default false. */
  requireSignatures?: boolean;
  /** TTL of this cluster's routes or adjacency (ms). Default 90 000. */
  routeTtlMs?: number;
  /** Full refresh interval (ms). Default 30 000. */
  refreshIntervalMs?: number;
  /** Most destinations (path-vector) or clusters (link-state). Default 4096. */
  maxDestinations?: number;
  /** Most neighbour clusters. Default 256. */
  maxNeighbours?: number;
  /** Longest route path (clusters). Default 32. */
  maxPathLength?: number;
  /** Flap damping (path-vector), or false. Default on. */
  damping?: Partial<DampingConfig> | false;
}

const FIELDS = new Set([
  "mode",
  "links",
  "offers",
  "export",
  "import",
  "keys",
  "requireSignatures",
  "routeTtlMs",
  "refreshIntervalMs",
  "maxDestinations",
  "maxNeighbours",
  "maxPathLength",
  "damping",
]);

/** Most configured links. */
export const MAX_CONFIGURED_LINKS = 1024;

/**
 * Checks a `federation` section (undefined: an empty one) and returns it typed. Everything is
 * checked that building the components would check (policies compiled, keys imported).
 * @throws {MpregError} 1002 naming the offending field under `path`.
 */
export function validateFederationConfig(raw: unknown, path = "federation"): FederationConfig {
  if (raw === undefined) return {};
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw MpregError.invalid(`${path} must be an object`, path);
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!FIELDS.has(k)) throw MpregError.invalid(`${path}.${k} is not a federation setting`, `${path}.${k}`);
  if (o.mode !== undefined && o.mode !== "path-vector" && o.mode !== "link-state") {
    throw MpregError.invalid(`${path}.mode must be "path-vector" or "link-state"`, `${path}.mode`);
  }
  if (o.links !== undefined) {
    if (!Array.isArray(o.links) || o.links.length > MAX_CONFIGURED_LINKS) {
      throw MpregError.invalid(`${path}.links must be an array of at most ${MAX_CONFIGURED_LINKS}`, `${path}.links`);
    }
    o.links.forEach((l: unknown, i) => {
      const p = `${path}.links[${i}]`;
      const x = l as Record<string, unknown>;
      if (typeof x !== "object" || x === null) throw MpregError.invalid(`${p} must be an object {url, clusterId}`, p);
      if (typeof x.url !== "string" || !/^wss?:\/\//.test(x.url)) throw MpregError.invalid(`${p}.url must be a ws:// or wss:// URL`, `${p}.url`);
      if (!isClusterId(x.clusterId)) throw MpregError.invalid(`${p}.clusterId must be a cluster id`, `${p}.clusterId`);
      if (x.cost !== undefined && (typeof x.cost !== "number" || !Number.isSafeInteger(x.cost) || x.cost < 0)) {
        throw MpregError.invalid(`${p}.cost must be an integer >= 0`, `${p}.cost`);
      }
    });
  }
  serviceFilter(o.offers, `${path}.offers`);
  RoutePolicySet.compile({ import: o.import, export: o.export }, path);
  for (const k of ["requireSignatures"] as const) {
    if (o[k] !== undefined && typeof o[k] !== "boolean") throw MpregError.invalid(`${path}.${k} must be a boolean`, `${path}.${k}`);
  }
  for (const k of ["routeTtlMs", "refreshIntervalMs", "maxDestinations", "maxNeighbours", "maxPathLength"] as const) {
    const v = o[k];
    if (v !== undefined && (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1)) {
      throw MpregError.invalid(`${path}.${k} must be a positive integer`, `${path}.${k}`);
    }
  }
  if (o.damping !== undefined && o.damping !== false) {
    if (typeof o.damping !== "object" || o.damping === null) throw MpregError.invalid(`${path}.damping must be an object or false`, `${path}.damping`);
    dampingConfig(o.damping as Partial<DampingConfig>, `${path}.damping`);
  }
  const cfg = o as FederationConfig;
  // Imports every key and the seed: a bad one is reported now, not when the node starts routing.
  buildKeys(cfg, "validation", path);
  if (cfg.requireSignatures === true && (cfg.keys?.trusted ?? []).length === 0) {
    throw MpregError.invalid(`${path}.requireSignatures needs ${path}.keys.trusted`, `${path}.requireSignatures`);
  }
  return cfg;
}

function buildKeys(cfg: FederationConfig, localCluster: string, path: string): { registry: KeyRegistry; signer: RouteSigner | undefined } {
  const k = cfg.keys ?? {};
  if (typeof k !== "object" || k === null || Array.isArray(k)) throw MpregError.invalid(`${path}.keys must be an object`, `${path}.keys`);
  if (k.trusted !== undefined && !Array.isArray(k.trusted)) throw MpregError.invalid(`${path}.keys.trusted must be an array`, `${path}.keys.trusted`);
  const registry = new KeyRegistry({ ...(k.maxOverlapMs !== undefined ? { maxOverlapMs: k.maxOverlapMs } : {}) });
  (k.trusted ?? []).forEach((t, i) => registry.trust(t, `${path}.keys.trusted[${i}]`));
  const signer = k.signingKey === undefined ? undefined : RouteSigner.fromSeed(localCluster, k.signingKey, `${path}.keys.signingKey`);
  return { registry, signer };
}

/** The components a node runs for federation. */
export interface Federation {
  mode: "path-vector" | "link-state";
  /** Set in path-vector mode. */
  table: RouteTable | undefined;
  /** Set in link-state mode. */
  linkState: ClusterLinkState | undefined;
  /** Whichever of the two is in use, for {@link nextClusterHop}. */
  routes: ClusterRouteSource;
  keys: KeyRegistry;
  signer: RouteSigner | undefined;
  links: FederationLinkConfig[];
}

/**
 * Builds the federation components of cluster `localCluster` from a validated config.
 * `epoch` must grow across restarts of this node (its start time in ms is a good choice).
 * @throws {MpregError} 1002 naming the offending field.
 */
export function createFederation(cfg: FederationConfig, ctx: { localCluster: string; epoch: number }): Federation {
  const { registry, signer } = buildKeys(cfg, ctx.localCluster, "federation");
  const common = {
    localCluster: ctx.localCluster,
    epoch: ctx.epoch,
    keys: registry,
    ...(signer !== undefined ? { signer } : {}),
    ...(cfg.requireSignatures !== undefined ? { requireSignatures: cfg.requireSignatures } : {}),
    ...(cfg.routeTtlMs !== undefined ? { ttlMs: cfg.routeTtlMs } : {}),
    ...(cfg.refreshIntervalMs !== undefined ? { refreshIntervalMs: cfg.refreshIntervalMs } : {}),
    ...(cfg.maxNeighbours !== undefined ? { maxNeighbours: cfg.maxNeighbours } : {}),
  };
  const links = cfg.links ?? [];
  if (cfg.mode === "link-state") {
    const linkState = new ClusterLinkState({ ...common, ...(cfg.maxDestinations !== undefined ? { maxClusters: cfg.maxDestinations } : {}) });
    return { mode: "link-state", table: undefined, linkState, routes: linkState, keys: registry, signer, links };
  }
  const table = new RouteTable({
    ...common,
    ...(cfg.maxDestinations !== undefined ? { maxDestinations: cfg.maxDestinations } : {}),
    ...(cfg.maxPathLength !== undefined ? { maxPathLength: cfg.maxPathLength } : {}),
    ...(cfg.damping !== undefined ? { damping: cfg.damping } : {}),
    ...(cfg.offers !== undefined ? { offers: cfg.offers } : {}),
    policies: { ...(cfg.import !== undefined ? { import: cfg.import } : {}), ...(cfg.export !== undefined ? { export: cfg.export } : {}) },
  });
  return { mode: "path-vector", table, linkState: undefined, routes: table, keys: registry, signer, links };
}
