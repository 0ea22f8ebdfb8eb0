import { MpregError } from "@mpreg/envelope";
import { validatePattern } from "@mpreg/router";
import { checkDependencies } from "./dependency-graph.js";
import type { Stamp } from "./hybrid-clock.js";
import { checkKey } from "./memory-cache.js";

/** The topic the node-to-node fabric may carry replication messages under (message_type `cache`). */
export const CACHE_REPLICATION_TOPIC = "mpreg.cache.replication";
/** Buckets of a namespace digest (each holds two 32-bit XOR hashes). */
export const DIGEST_BUCKETS = 64;
/** Most keys in one `tomb` message (longer invalidations are split). */
export const MAX_TOMB_KEYS = 1024;
/** Most entries accepted in one `sync_resp`. */
export const MAX_SYNC_ENTRIES = 10_000;
/** Most pattern tombstones accepted in one `sync_resp`. */
export const MAX_SYNC_PATTERNS = 1024;

/** A write, to every member. `ttl_ms` counts from `stamp.wall`, so every node expires it at the same instant. */
export interface PutMessage {
  type: "put";
  namespace: string;
  key: string;
  value: unknown;
  stamp: Stamp;
  ttl_ms?: number;
  dependencies?: string[];
  cost?: number;
}

/**
 * Deletes or invalidations, to every member: each key gets a tombstone with `stamp`.
 * `cascade` (invalidations) also removes what depends on the keys; `pattern` (a pattern
 * invalidation) is also matched by each receiver against its own keys and remembered.
 */
export interface TombMessage {
  type: "tomb";
  namespace: string;
  keys: string[];
  stamp: Stamp;
  cascade: boolean;
  pattern?: string;
}

/** Catch-up request, to one member: "here is my digest; send what differs" (keys after `after`). */
export interface SyncRequestMessage {
  type: "sync_req";
  namespace: string;
  /** DIGEST_BUCKETS × 2 unsigned 32-bit XOR hashes of (key, stamp, kind). */
  digest: number[];
  after?: string;
}

/** One entry of a sync response: a live value, or a tombstone. */
export interface SyncEntry {
  key: string;
  stamp: Stamp;
  tomb?: boolean;
  cascade?: boolean;
  value?: unknown;
  ttl_ms?: number;
  dependencies?: string[];
  cost?: number;
}

/** Catch-up answer: the responder's entries in the differing buckets, in key order; `next`: ask again after it. */
export interface SyncResponseMessage {
  type: "sync_resp";
  namespace: string;
  entries: SyncEntry[];
  patterns: Array<{ pattern: string; stamp: Stamp }>;
  next?: string;
}

/** Every message the replicator sends and accepts. */
export type ReplicationMessage = PutMessage | TombMessage | SyncRequestMessage | SyncResponseMessage;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function bad(reason: string, path: string): never {
  throw MpregError.invalid(`cache replication message: ${reason}`, path);
}

function uint(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** Checks a stamp `{wall, counter, node}`. */
export function checkStamp(v: unknown, path: string): Stamp {
  if (!isObject(v)) bad("stamp must be an object", path);
  if (!uint(v.wall)) bad("stamp.wall must be a non-negative integer", `${path}.wall`);
  if (!uint(v.counter)) bad("stamp.counter must be a non-negative integer", `${path}.counter`);
  if (typeof v.node !== "string" || v.node.length === 0 || v.node.length > 256) bad("stamp.node must be a node id", `${path}.node`);
  return { wall: v.wall, counter: v.counter, node: v.node };
}

function optTtl(v: unknown, path: string): number | undefined {
  if (v === undefined) return undefined;
  if (!uint(v) || v < 1) bad("ttl_ms must be a positive integer", path);
  return v;
}

function optCost(v: unknown, path: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) bad("cost must be a positive number", path);
  return v;
}

function namespaceOf(v: unknown): string {
  if (typeof v !== "string" || v.length === 0 || v.length > 100) bad("namespace must be a name", "namespace");
  return v;
}

function checkEntry(v: unknown, path: string): SyncEntry {
  if (!isObject(v)) bad("entry must be an object", path);
  const e: SyncEntry = { key: checkKey(v.key, `${path}.key`), stamp: checkStamp(v.stamp, `${path}.stamp`) };
  if (v.tomb === true) {
    e.tomb = true;
    e.cascade = v.cascade === true;
    return e;
  }
  if (v.value === undefined) bad("a live entry needs a value", `${path}.value`);
  e.value = v.value;
  const ttl = optTtl(v.ttl_ms, `${path}.ttl_ms`);
  if (ttl !== undefined) e.ttl_ms = ttl;
  const deps = checkDependencies(v.dependencies, `${path}.dependencies`);
  if (deps.length > 0) e.dependencies = deps;
  const cost = optCost(v.cost, `${path}.cost`);
  if (cost !== undefined) e.cost = cost;
  return e;
}

/**
 * Checks a decoded replication message and returns a clean copy holding only known fields.
 * Throws MpregError 1002 naming the bad field.
 */
export function validateReplicationMessage(v: unknown): ReplicationMessage {
  if (!isObject(v)) bad("not an object", "");
  const namespace = namespaceOf(v.namespace);
  switch (v.type) {
    case "put": {
      const m: PutMessage = { type: "put", namespace, key: checkKey(v.key, "key"), value: v.value, stamp: checkStamp(v.stamp, "stamp") };
      if (v.value === undefined) bad("put needs a value", "value");
      const ttl = optTtl(v.ttl_ms, "ttl_ms");
      if (ttl !== undefined) m.ttl_ms = ttl;
      const deps = checkDependencies(v.dependencies);
      if (deps.length > 0) m.dependencies = deps;
      const cost = optCost(v.cost, "cost");
      if (cost !== undefined) m.cost = cost;
      return m;
    }
    case "tomb": {
      if (!Array.isArray(v.keys) || v.keys.length > MAX_TOMB_KEYS) bad(`keys must be an array of at most ${MAX_TOMB_KEYS} keys`, "keys");
      if (typeof v.cascade !== "boolean") bad("cascade must be a boolean", "cascade");
      const m: TombMessage = {
        type: "tomb",
        namespace,
        keys: v.keys.map((k, i) => checkKey(k, `keys[${i}]`)),
        stamp: checkStamp(v.stamp, "stamp"),
        cascade: v.cascade,
      };
      if (v.pattern !== undefined) {
        validatePattern(v.pattern as string, "pattern");
        m.pattern = v.pattern as string;
      }
      return m;
    }
    case "sync_req": {
      const d = v.digest;
      if (!Array.isArray(d) || d.length !== DIGEST_BUCKETS * 2 || !d.every((x) => uint(x) && x <= 0xffffffff)) {
        bad(`digest must be ${DIGEST_BUCKETS * 2} unsigned 32-bit integers`, "digest");
      }
      const m: SyncRequestMessage = { type: "sync_req", namespace, digest: d as number[] };
      if (v.after !== undefined) m.after = checkKey(v.after, "after");
      return m;
    }
    case "sync_resp": {
      if (!Array.isArray(v.entries) || v.entries.length > MAX_SYNC_ENTRIES) bad(`entries must be an array of at most ${MAX_SYNC_ENTRIES}`, "entries");
      if (!Array.isArray(v.patterns) || v.patterns.length > MAX_SYNC_PATTERNS) bad(`patterns must be an array of at most ${MAX_SYNC_PATTERNS}`, "patterns");
      const m: SyncResponseMessage = {
        type: "sync_resp",
        namespace,
        entries: v.entries.map((e, i) => checkEntry(e, `entries[${i}]`)),
        patterns: v.patterns.map((p, i) => {
          if (!isObject(p)) bad("pattern tombstone must be an object", `patterns[${i}]`);
          validatePattern(p.pattern as string, `patterns[${i}].pattern`);
          return { pattern: p.pattern as string, stamp: checkStamp(p.stamp, `patterns[${i}].stamp`) };
        }),
      };
      if (v.next !== undefined) m.next = checkKey(v.next, "next");
      return m;
    }
    default:
      return bad("type must be put, tomb, sync_req or sync_resp", "type");
  }
}
