import { MpregError } from "@mpreg/envelope";
import { formatVersion, parseVersion } from "./semver.js";

/**
 * Catalog entry kinds, their validation, normalisation and identity keys.
 *
 * Every entry is owned by exactly one node: its `node_id`. The identity key of an entry starts
 * with its kind and its owner, so a removal (which carries only the key) names its owner too.
 */

/** The kinds of catalog entries. */
export type EntryKind = "function" | "node" | "topic" | "queue" | "cache";

export const ENTRY_KINDS: readonly EntryKind[] = ["function", "node", "topic", "queue", "cache"];

/** A function endpoint: one registered version of a function on one node. */
export interface FunctionEntry {
  readonly kind: "function";
  readonly name: string;
  readonly function_id: string;
  /** Canonical `MAJOR.MINOR.PATCH` text (normalised on the way in). */
  readonly version: string;
  /** Sorted, without duplicates. */
  readonly resources: readonly string[];
  readonly node_id: string;
  readonly cluster_id: string;
  readonly description?: string;
}

/** A node of the fabric, announced by itself. */
export interface NodeEntry {
  readonly kind: "node";
  readonly node_id: string;
  readonly cluster_id: string;
  readonly region: string;
  /** Where the node listens, in its order of preference (duplicates removed). */
  readonly urls: readonly string[];
  /** Sorted, without duplicates. */
  readonly resources: readonly string[];
  /** In-flight requests when announced. */
  readonly load: number;
  /** Short status word, e.g. `ok`, `degraded`, `draining`. */
  readonly status: string;
  /** How many function endpoints the node serves (informational). */
  readonly functions?: number;
}

/**
 * Topic subscriptions of a node. A node may announce one entry per subscription, or aggregate
 * all its subscriptions under one `subscription_id` of its choice.
 */
export interface TopicEntry {
  readonly kind: "topic";
  readonly node_id: string;
  readonly cluster_id: string;
  readonly subscription_id: string;
  /** Sorted, without duplicates. Matched by the router's topic matcher, not by the catalog. */
  readonly patterns: readonly string[];
}

/** A queue hosted by a node. */
export interface QueueEntry {
  readonly kind: "queue";
  readonly name: string;
  readonly node_id: string;
  readonly cluster_id: string;
}

/** A cache namespace served by a node. */
export interface CacheEntry {
  readonly kind: "cache";
  readonly namespace: string;
  readonly node_id: string;
  readonly cluster_id: string;
  /** Replication scope word, e.g. `local`, `cluster`, `global`. */
  readonly scope: string;
}

/** Any catalog entry. */
export type CatalogEntry = FunctionEntry | NodeEntry | TopicEntry | QueueEntry | CacheEntry;

/** Limits on the size of one entry (hostile or buggy peers cannot bloat the catalog). */
export const ENTRY_LIMITS = {
  maxString: 512,
  maxDescription: 4096,
  maxResources: 256,
  maxUrls: 16,
  maxPatterns: 1024,
} as const;

type Raw = Record<string, unknown>;

function str(o: Raw, field: string, path: string, max: number = ENTRY_LIMITS.maxString): string {
  const v = o[field];
  if (typeof v !== "string" || v.length === 0) {
    throw MpregError.invalid(`${path}.${field} must be a non-empty string`, `${path}.${field}`);
  }
  if (v.length > max) throw MpregError.invalid(`${path}.${field} longer than ${max} characters`, `${path}.${field}`);
  return v;
}

function strList(o: Raw, field: string, path: string, max: number, sort: boolean): string[] {
  const v = o[field] ?? [];
  if (!Array.isArray(v)) throw MpregError.invalid(`${path}.${field} must be an array of strings`, `${path}.${field}`);
  if (v.length > max) throw MpregError.invalid(`${path}.${field} has more than ${max} items`, `${path}.${field}`);
  const out: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < v.length; i++) {
    const s: unknown = v[i];
    if (typeof s !== "string" || s.length === 0 || s.length > ENTRY_LIMITS.maxString) {
      throw MpregError.invalid(
        `${path}.${field}[${i}] must be a non-empty string of at most ${ENTRY_LIMITS.maxString} characters`,
        `${path}.${field}[${i}]`,
      );
    }
    if (!seen.has(s)) {
      seen.add(s);
      out.push(s);
    }
  }
  if (sort) out.sort();
  return out;
}

function nonNegative(o: Raw, field: string, path: string, optional: boolean): number | undefined {
  const v = o[field];
  if (v === undefined && optional) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
    throw MpregError.invalid(`${path}.${field} must be a non-negative number`, `${path}.${field}`);
  }
  return v;
}

/**
 * Checks and normalises an entry (sorted sets, canonical version text, only known fields).
 * Throws MpregError 1002 naming the offending field. The result is frozen.
 */
export function normalizeEntry(input: unknown, path = "entry"): CatalogEntry {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw MpregError.invalid(`${path} must be an object`, path);
  }
  const o = input as Raw;
  const node_id = str(o, "node_id", path);
  const cluster_id = str(o, "cluster_id", path);
  let e: CatalogEntry;
  switch (o.kind) {
    case "function": {
      const versionText = str(o, "version", path, 64);
      const description = o.description;
      if (description !== undefined && (typeof description !== "string" || description.length > ENTRY_LIMITS.maxDescription)) {
        throw MpregError.invalid(
          `${path}.description must be a string of at most ${ENTRY_LIMITS.maxDescription} characters`,
          `${path}.description`,
        );
      }
      e = {
        kind: "function",
        name: str(o, "name", path),
        function_id: str(o, "function_id", path),
        version: formatVersion(parseVersion(versionText, `${path}.version`)),
        resources: strList(o, "resources", path, ENTRY_LIMITS.maxResources, true),
        node_id,
        cluster_id,
        ...(description !== undefined ? { description } : {}),
      };
      break;
    }
    case "node": {
      const functions = nonNegative(o, "functions", path, true);
      e = {
        kind: "node",
        node_id,
        cluster_id,
        region: typeof o.region === "string" && o.region.length <= ENTRY_LIMITS.maxString ? o.region : regionError(path),
        urls: strList(o, "urls", path, ENTRY_LIMITS.maxUrls, false),
        resources: strList(o, "resources", path, ENTRY_LIMITS.maxResources, true),
        load: nonNegative(o, "load", path, false) as number,
        status: str(o, "status", path, 32),
        ...(functions !== undefined ? { functions } : {}),
      };
      break;
    }
    case "topic":
      e = {
        kind: "topic",
        node_id,
        cluster_id,
        subscription_id: str(o, "subscription_id", path),
        patterns: strList(o, "patterns", path, ENTRY_LIMITS.maxPatterns, true),
      };
      break;
    case "queue":
      e = { kind: "queue", name: str(o, "name", path), node_id, cluster_id };
      break;
    case "cache":
      e = { kind: "cache", namespace: str(o, "namespace", path), node_id, cluster_id, scope: str(o, "scope", path, 32) };
      break;
    default:
      throw MpregError.invalid(`${path}.kind must be one of ${ENTRY_KINDS.join(", ")}`, `${path}.kind`);
  }
  return Object.freeze(e);
}

function regionError(path: string): never {
  throw MpregError.invalid(`${path}.region must be a string`, `${path}.region`);
}

const enc = encodeURIComponent;

/**
 * The identity key of an entry: `kind/owner/...identity`, each part URI-encoded so `/` never
 * appears inside a part. Several versions of one function on one node are distinct entries.
 *
 * - function: `function/<node_id>/<name>/<function_id>/<version>`
 * - node:     `node/<node_id>`
 * - topic:    `topic/<node_id>/<subscription_id>`
 * - queue:    `queue/<node_id>/<name>`
 * - cache:    `cache/<node_id>/<namespace>`
 */
export function entryKey(e: CatalogEntry): string {
  switch (e.kind) {
    case "function":
      return `function/${enc(e.node_id)}/${enc(e.name)}/${enc(e.function_id)}/${enc(e.version)}`;
    case "node":
      return `node/${enc(e.node_id)}`;
    case "topic":
      return `topic/${enc(e.node_id)}/${enc(e.subscription_id)}`;
    case "queue":
      return `queue/${enc(e.node_id)}/${enc(e.name)}`;
    case "cache":
      return `cache/${enc(e.node_id)}/${enc(e.namespace)}`;
  }
}

/** Longest accepted key: four URI-encoded parts of at most `maxString` characters (x9 for UTF-8 escapes). */
export const MAX_KEY_LENGTH = 16 + 4 * 9 * ENTRY_LIMITS.maxString;

const KEY_PARTS: Record<EntryKind, number> = { function: 5, node: 2, topic: 3, queue: 3, cache: 3 };

/** Kind and owner named by a key, or null when the key is not a well-formed entry key. */
export function parseEntryKey(key: string): { kind: EntryKind; owner: string } | null {
  if (typeof key !== "string" || key.length > MAX_KEY_LENGTH) return null;
  const parts = key.split("/");
  const kind = parts[0] as EntryKind;
  if (!(kind in KEY_PARTS) || parts.length !== KEY_PARTS[kind]) return null;
  let owner: string;
  try {
    for (const p of parts) if (p.length === 0) return null;
    owner = decodeURIComponent(parts[1] as string);
  } catch {
    return null;
  }
  return { kind, owner };
}

/** Deterministic JSON (object keys sorted) used to break ties between equal versions. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (typeof v === "object" && v !== null) {
    const o = v as Raw;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}
