import { MpregError } from "@mpreg/envelope";
import { POLICY_NAMES, type PolicyName } from "./eviction-policy.js";
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES } from "./memory-cache.js";
import type { Sizing } from "./value-size.js";
import { DEFAULT_MAX_DRIFT_MS } from "./hybrid-clock.js";

/** Where a namespace's writes go: this node only, or every node of the cluster. */
export type Scope = "local" | "replicated";

/** One namespace, as validated (every field present). */
export interface NamespaceConfig {
  /** L1 eviction policy. Default `tinylfu` (W-TinyLFU). */
  readonly policy: PolicyName;
  /** Most L1 entries. Default 10 000. */
  readonly max_entries: number;
  /** Most L1 bytes (see `sizing`). Default 64 MiB; also the largest value accepted. */
  readonly max_bytes: number;
  /** TTL (ms) of entries put without `ttl_ms`; absent: no expiry. */
  readonly ttl_ms: number | undefined;
  /** `local` (default) or `replicated`. */
  readonly scope: Scope;
  /** Keep entries in the L2 tier too (needs a backend). Default false. */
  readonly l2: boolean;
  /** Most L2 entries; past it the oldest-written entry leaves L2. Default 10 × max_entries. */
  readonly l2_max_entries: number;
  /** How entry bytes are counted: `estimate` (default) or `msgpack`. */
  readonly sizing: Sizing;
  /**
   * Replicate also to the nodes of other clusters that hold the namespace with `federate: true`
   * (federation; needs `scope: "replicated"`). Policies name it as the topic
   * `mpreg.cache.<namespace>`. Default false: the namespace stays in its cluster.
   */
  readonly federate: boolean;
}

/** Replication tunables (for namespaces with `scope: "replicated"`). */
export interface ReplicationConfig {
  /**
   * How long (ms) a tombstone (the record of a delete or invalidation) is kept. A write that
   * arrives later than this after the invalidation it lost to can bring the entry back, so it
   * must exceed the longest expected delay or partition. Default 600 000 (10 min).
   */
  readonly tombstone_ttl_ms: number;
  /** Most tombstones per namespace; past it the oldest is dropped first. Default 100 000. */
  readonly max_tombstones: number;
  /** Most pattern tombstones (pattern invalidations remembered) per namespace. Default 256. */
  readonly max_pattern_tombstones: number;
  /** Anti-entropy period (ms): a digest exchange with one random member. 0: catch-up on join only. Default 5 000. */
  readonly anti_entropy_ms: number;
  /** Received stamps more than this far ahead of the local clock are refused. Default 60 000. */
  readonly max_drift_ms: number;
  /** Most entries in one sync response. Default 256. */
  readonly sync_batch: number;
}

/** The whole cache configuration, as validated. */
export interface CacheConfig {
  readonly namespaces: Readonly<Record<string, NamespaceConfig>>;
  readonly replication: ReplicationConfig;
}

/** The namespace used when a call names none (always present). */
export const DEFAULT_NAMESPACE = "default";
/** Most namespaces. */
export const MAX_NAMESPACES = 256;
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/;

const NS_KEYS = new Set(["policy", "max_entries", "max_bytes", "ttl_ms", "scope", "l2", "l2_max_entries", "sizing", "federate"]);
const REPL_KEYS = new Set([
  "tombstone_ttl_ms", "max_tombstones", "max_pattern_tombstones", "anti_entropy_ms", "max_drift_ms", "sync_batch",
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function int(v: unknown, path: string, min: number, def: number): number {
  if (v === undefined) return def;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) throw MpregError.invalid(`${path} must be an integer >= ${min}`, path);
  return v;
}

function noUnknown(o: Record<string, unknown>, known: Set<string>, path: string): void {
  for (const k of Object.keys(o)) {
    if (!known.has(k)) throw MpregError.invalid(`unknown option ${path}.${k}`, `${path}.${k}`);
  }
}

function parseNamespace(v: unknown, path: string): NamespaceConfig {
  if (v === undefined) v = {};
  if (!isObject(v)) throw MpregError.invalid(`${path} must be an object`, path);
  noUnknown(v, NS_KEYS, path);
  const policy = v.policy ?? "tinylfu";
  if (typeof policy !== "string" || !POLICY_NAMES.includes(policy as PolicyName)) {
    throw MpregError.invalid(`${path}.policy must be one of ${POLICY_NAMES.join(", ")}`, `${path}.policy`);
  }
  const max_entries = int(v.max_entries, `${path}.max_entries`, 1, DEFAULT_MAX_ENTRIES);
  const max_bytes = int(v.max_bytes, `${path}.max_bytes`, 1, DEFAULT_MAX_BYTES);
  const ttl_ms = v.ttl_ms === undefined ? undefined : int(v.ttl_ms, `${path}.ttl_ms`, 1, 0);
  const scope = v.scope ?? "local";
  if (scope !== "local" && scope !== "replicated") throw MpregError.invalid(`${path}.scope must be local or replicated`, `${path}.scope`);
  const l2 = v.l2 ?? false;
  if (typeof l2 !== "boolean") throw MpregError.invalid(`${path}.l2 must be a boolean`, `${path}.l2`);
  const l2_max_entries = int(v.l2_max_entries, `${path}.l2_max_entries`, 1, Math.min(10 * max_entries, 10_000_000));
  const sizing = v.sizing ?? "estimate";
  if (sizing !== "estimate" && sizing !== "msgpack") throw MpregError.invalid(`${path}.sizing must be estimate or msgpack`, `${path}.sizing`);
  const federate = v.federate ?? false;
  if (typeof federate !== "boolean") throw MpregError.invalid(`${path}.federate must be a boolean`, `${path}.federate`);
  if (federate && scope !== "replicated") throw MpregError.invalid(`${path}.federate needs scope: "replicated"`, `${path}.federate`);
  return { policy: policy as PolicyName, max_entries, max_bytes, ttl_ms, scope, l2, l2_max_entries, sizing, federate };
}

function parseReplication(v: unknown): ReplicationConfig {
  const path = "replication";
  if (v === undefined) v = {};
  if (!isObject(v)) throw MpregError.invalid(`${path} must be an object`, path);
  noUnknown(v, REPL_KEYS, path);
  return {
    tombstone_ttl_ms: int(v.tombstone_ttl_ms, `${path}.tombstone_ttl_ms`, 1, 600_000),
    max_tombstones: int(v.max_tombstones, `${path}.max_tombstones`, 1, 100_000),
    max_pattern_tombstones: int(v.max_pattern_tombstones, `${path}.max_pattern_tombstones`, 1, 256),
    anti_entropy_ms: int(v.anti_entropy_ms, `${path}.anti_entropy_ms`, 0, 5_000),
    max_drift_ms: int(v.max_drift_ms, `${path}.max_drift_ms`, 1, DEFAULT_MAX_DRIFT_MS),
    sync_batch: int(v.sync_batch, `${path}.sync_batch`, 1, 256),
  };
}

/**
 * Validates a cache configuration `{namespaces: {name: {policy, max_entries, max_bytes, ttl_ms,
 * scope, l2, l2_max_entries, sizing, federate}}, replication: {...}}` once, filling defaults. Errors are
 * MpregError 1002 whose `path` names the option (`namespaces.orders.max_entries`). A `default`
 * namespace with default options is added when not configured.
 */
export function parseCacheConfig(input: unknown = {}): CacheConfig {
  if (!isObject(input)) throw MpregError.invalid("cache config must be an object", "");
  noUnknown(input, new Set(["namespaces", "replication"]), "cache");
  const nsIn = input.namespaces ?? {};
  if (!isObject(nsIn)) throw MpregError.invalid("namespaces must be an object of name -> options", "namespaces");
  const names = Object.keys(nsIn);
  if (names.length > MAX_NAMESPACES) throw MpregError.invalid(`more than ${MAX_NAMESPACES} namespaces`, "namespaces");
  const namespaces: Record<string, NamespaceConfig> = {};
  for (const name of names) {
    if (!NAME_RE.test(name)) {
      throw MpregError.invalid(`namespace name ${JSON.stringify(name)} must match ${NAME_RE.source}`, `namespaces.${name}`);
    }
    namespaces[name] = parseNamespace(nsIn[name], `namespaces.${name}`);
  }
  namespaces[DEFAULT_NAMESPACE] ??= parseNamespace({}, `namespaces.${DEFAULT_NAMESPACE}`);
  return { namespaces, replication: parseReplication(input.replication) };
}
