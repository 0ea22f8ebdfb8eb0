import { MpregError } from "@mpreg/envelope";
import {
  entryKey,
  normalizeEntry,
  parseEntryKey,
  type CacheEntry,
  type CatalogEntry,
  type EntryKind,
  type FunctionEntry,
  type NodeEntry,
  type QueueEntry,
  type TopicEntry,
} from "./entries.js";
import { parseConstraint, parseVersion, satisfies, type Constraint, type Version } from "./semver.js";

/**
 * The routing catalog of one node: a mutable, sans-I/O state machine (time is passed in as
 * `now`, in milliseconds; there are no timers). See docs/catalog.md for the design.
 *
 * Every entry is owned by the node named in it. Only the owner changes its entries, by issuing
 * versioned deltas; everyone else merges deltas newer-wins per entry key, which makes merging
 * idempotent, commutative and associative (any order, any duplicates, same catalog).
 */

/** A change to one entry, as produced by its owner and gossiped to everyone. */
export interface CatalogDelta {
  readonly kind: "upsert" | "remove";
  /** The entry key (see `entryKey`); its second part is the owner. */
  readonly key: string;
  /** The node that owns the entry (and alone issues deltas for it). */
  readonly owner: string;
  /** The owner's counter: strictly increasing over all deltas of this owner. */
  readonly version: number;
  /**
   * Upsert: how long the entry lives without a newer delta. Remove: how long receivers keep the
   * tombstone at least. Receivers count it from when they apply the delta.
   */
  readonly ttl_ms: number;
  /** The entry itself (upserts only). */
  readonly entry?: CatalogEntry;
}

/**
 * The opaque versioned item a gossip layer carries: `key` and `version` are the delta's, and
 * `data` is the whole delta. Items with the same key are ordered by version (higher wins).
 */
export interface VersionedItem {
  readonly key: string;
  readonly version: number;
  readonly data: unknown;
}

/** Wraps a delta as a gossip item. */
export function deltaToItem(d: CatalogDelta): VersionedItem {
  return { key: d.key, version: d.version, data: d };
}

/** The delta inside a gossip item (validated when applied, not here). */
export function itemToDelta(item: VersionedItem): unknown {
  return item.data;
}

/** What `applyDelta` did. */
export type ApplyStatus =
  /** The delta changed the catalog. */
  | "applied"
  /** The catalog already held this delta or a newer one for the key: nothing changed. */
  | "stale"
  /** The delta is malformed; see `error`. */
  | "invalid"
  /** A new remote entry was refused because the catalog holds `maxEntries` remote entries. */
  | "dropped_full"
  /** The delta is about an entry this node owns: never applied (this node is authoritative). */
  | "own";

/** A change visible to queries, for observers (pub/sub, peer lists). */
export interface CatalogChange {
  readonly type: "added" | "updated" | "removed";
  readonly key: string;
  /** The entry now (added, updated) or the entry that went away (removed). */
  readonly entry: CatalogEntry;
  /** For `updated`: the entry it replaced (e.g. to unindex old topic patterns). */
  readonly previous?: CatalogEntry;
}

export interface ApplyResult {
  readonly status: ApplyStatus;
  readonly change?: CatalogChange;
  readonly error?: MpregError;
  /**
   * Only for status `own`: when a peer holds a wrong or newer view of one of this node's
   * entries (e.g. from before a restart), the delta to gossip that corrects it.
   */
  readonly correction?: CatalogDelta;
}

/** Options of a catalog; all bounds have defaults. */
export interface CatalogOptions {
  /** This node (owner of the local entries). */
  readonly nodeId: string;
  readonly clusterId: string;
  /** TTL of local entries when `registerLocal` is not given one. Default 120 000 ms. */
  readonly defaultTtlMs?: number;
  /** Upper bound on the TTL accepted from any delta. Default 3 600 000 ms. */
  readonly maxTtlMs?: number;
  /** Re-announce a local entry after this fraction of its TTL. Default 0.5. */
  readonly refreshFraction?: number;
  /** Max entries owned by other nodes; new ones beyond it are dropped and counted. Default 100 000. */
  readonly maxEntries?: number;
  /** Max entries owned by this node; `registerLocal` beyond it throws 1007. Default 10 000. */
  readonly maxLocalEntries?: number;
  /** Max tombstones; beyond it the oldest inserted is forgotten. Default 50 000. */
  readonly maxTombstones?: number;
  /** Minimum time a tombstone is kept. Default 300 000 ms. */
  readonly tombstoneRetentionMs?: number;
  /** Max owners remembered as removed by `removeNode`. Default 10 000 (oldest forgotten). */
  readonly maxRemovedOwners?: number;
}

/** Counters for monitoring. */
export interface CatalogStats {
  readonly entries: number;
  readonly localEntries: number;
  readonly remoteEntries: number;
  readonly tombstones: number;
  readonly applied: number;
  readonly stale: number;
  readonly invalid: number;
  readonly droppedFull: number;
  readonly tombstonesEvicted: number;
  readonly expired: number;
}

/** A serialisable copy of the catalog: every entry and tombstone, as deltas. */
export interface CatalogSnapshot {
  readonly format: "mpreg-catalog/1";
  readonly node_id: string;
  readonly cluster_id: string;
  readonly generated_at: number;
  readonly deltas: readonly CatalogDelta[];
}

/** Result of `applySnapshot`: counts per status and the corrections to gossip. */
export type ApplySnapshotResult = Record<ApplyStatus, number> & { readonly corrections: CatalogDelta[] };

/** Per-owner summary for cheap anti-entropy: equal summaries mean equal (key, version) sets. */
export interface OwnerSummary {
  readonly count: number;
  readonly max: number;
  /** Order-independent hash of the owner's (key, version) pairs, 8 hex digits. */
  readonly hash: string;
}

/**
 * Input of `registerLocal`: an entry whose `node_id` / `cluster_id` default to this node's and
 * whose list fields (`resources`, `urls`) default to empty.
 */
export type LocalEntryInput = DistributiveOmit<CatalogEntry, "node_id" | "cluster_id" | "resources" | "urls"> & {
  node_id?: string;
  cluster_id?: string;
  resources?: readonly string[];
  urls?: readonly string[];
};
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Filters of `queryFunctions` (every given filter must hold). */
export interface FunctionQuery {
  readonly name?: string;
  readonly function_id?: string;
  /** A constraint text (parsed, 1002 when malformed) or a parsed constraint. */
  readonly version_constraint?: string | Constraint;
  /** Required resources: each must be among the endpoint's resources. */
  readonly resources?: readonly string[];
  readonly cluster_id?: string;
  readonly node_id?: string;
  /** When given, entries expired at `now` are hidden even before `expire(now)` runs. */
  readonly now?: number;
}

export interface NodeQuery {
  readonly node_id?: string;
  readonly cluster_id?: string;
  readonly region?: string;
  readonly status?: string;
  readonly resources?: readonly string[];
  readonly now?: number;
}

export interface TopicQuery {
  readonly node_id?: string;
  readonly cluster_id?: string;
  readonly subscription_id?: string;
  readonly now?: number;
}

export interface QueueQuery {
  readonly name?: string;
  readonly node_id?: string;
  readonly cluster_id?: string;
  readonly now?: number;
}

export interface CacheQuery {
  readonly namespace?: string;
  readonly node_id?: string;
  readonly cluster_id?: string;
  readonly scope?: string;
  readonly now?: number;
}

interface Rec {
  readonly key: string;
  readonly owner: string;
  readonly version: number;
  readonly ttl_ms: number;
  expires_at: number;
  readonly entry: CatalogEntry;
  /** Local entries only: when last announced. */
  announced_at?: number;
}

interface Tomb {
  readonly key: string;
  readonly owner: string;
  readonly version: number;
  readonly ttl_ms: number;
  readonly expires_at: number;
}

const DEFAULTS = {
  defaultTtlMs: 120_000,
  maxTtlMs: 3_600_000,
  refreshFraction: 0.5,
  maxEntries: 100_000,
  maxLocalEntries: 10_000,
  maxTombstones: 50_000,
  tombstoneRetentionMs: 300_000,
  maxRemovedOwners: 10_000,
};

/** Total order between two versions of one key: version, then remove over upsert, then content. */
function compareStates(
  a: { version: number; ttl_ms: number; entry?: CatalogEntry | undefined },
  b: { version: number; ttl_ms: number; entry?: CatalogEntry | undefined },
): number {
  if (a.version !== b.version) return a.version < b.version ? -1 : 1;
  const ra = a.entry === undefined ? 1 : 0;
  const rb = b.entry === undefined ? 1 : 0;
  if (ra !== rb) return ra - rb;
  if (a.ttl_ms !== b.ttl_ms) return a.ttl_ms < b.ttl_ms ? -1 : 1;
  if (a.entry === undefined || b.entry === undefined) return 0;
  // Entries are normalised (fixed field order, sorted sets), so JSON.stringify is canonical.
  const ca = JSON.stringify(a.entry);
  const cb = JSON.stringify(b.entry);
  return ca < cb ? -1 : ca > cb ? 1 : 0;
}

/** FNV-1a over a string, 32 bits. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

const EMPTY: ReadonlySet<string> = new Set();

/** `now` comes from the host's clock: a non-finite value is a programming error, refused early. */
function checkNow(now: number): void {
  if (typeof now !== "number" || !Number.isFinite(now)) throw MpregError.invalid(`now must be a finite number of milliseconds, got ${String(now)}`, "now");
}

function addIdx(idx: Map<string, Set<string>>, k: string, key: string): void {
  let s = idx.get(k);
  if (s === undefined) idx.set(k, (s = new Set()));
  s.add(key);
}

function delIdx(idx: Map<string, Set<string>>, k: string, key: string): void {
  const s = idx.get(k);
  if (s === undefined) return;
  s.delete(key);
  if (s.size === 0) idx.delete(k);
}

function optString(q: Record<string, unknown>, field: string): string | undefined {
  const v = q[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw MpregError.invalid(`${field} must be a string`, field);
  return v;
}

function optStrings(q: Record<string, unknown>, field: string): readonly string[] | undefined {
  const v = q[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
    throw MpregError.invalid(`${field} must be an array of strings`, field);
  }
  return v as string[];
}

function hasAll(have: readonly string[], want: readonly string[] | undefined): boolean {
  if (want === undefined) return true;
  for (const w of want) if (!have.includes(w)) return false;
  return true;
}

/** The routing catalog. */
export class Catalog {
  readonly nodeId: string;
  readonly clusterId: string;
  private readonly opts: typeof DEFAULTS;

  private readonly records = new Map<string, Rec>();
  private readonly tombstones = new Map<string, Tomb>();
  private readonly byKind = new Map<string, Set<string>>();
  private readonly byNode = new Map<string, Set<string>>();
  private readonly byName = new Map<string, Set<string>>();
  private readonly byFunctionId = new Map<string, Set<string>>();
  /** Highest version seen per owner (for removeNode floors). */
  private readonly ownerMax = new Map<string, number>();
  /** Owners removed by removeNode: deltas at or below the floor are stale. */
  private readonly ownerFloor = new Map<string, number>();
  private localCount = 0;
  private counter = 0;
  private readonly counters = { applied: 0, stale: 0, invalid: 0, droppedFull: 0, tombstonesEvicted: 0, expired: 0 };

  constructor(options: CatalogOptions) {
    if (typeof options?.nodeId !== "string" || options.nodeId === "") throw MpregError.invalid("nodeId is required");
    if (typeof options.clusterId !== "string" || options.clusterId === "") throw MpregError.invalid("clusterId is required");
    this.nodeId = options.nodeId;
    this.clusterId = options.clusterId;
    const o = { ...DEFAULTS };
    for (const k of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
      const v = options[k];
      if (v !== undefined) {
        if (typeof v !== "number" || !(v > 0)) throw MpregError.invalid(`${k} must be a positive number`, k);
        o[k] = v;
      }
    }
    if (o.refreshFraction >= 1) throw MpregError.invalid("refreshFraction must be below 1", "refreshFraction");
    this.opts = o;
  }

  // ---------------------------------------------------------------- owner API (this node)

  /** The next version of this node's counter: above every earlier one and at least `now`. */
  private nextVersion(now: number): number {
    this.counter = Math.max(this.counter + 1, Math.floor(now));
    return this.counter;
  }

  /**
   * Adds or replaces an entry owned by this node and returns the delta to gossip.
   * Throws 1002 for a malformed entry or one naming another node, 1007 past `maxLocalEntries`.
   */
  registerLocal(input: LocalEntryInput, now: number, ttlMs: number = this.opts.defaultTtlMs): CatalogDelta {
    checkNow(now);
    if (typeof input !== "object" || input === null) throw MpregError.invalid("entry must be an object", "entry");
    const filled = { ...input, node_id: input.node_id ?? this.nodeId, cluster_id: input.cluster_id ?? this.clusterId };
    if (filled.node_id !== this.nodeId) {
      throw MpregError.invalid(`entry.node_id ${JSON.stringify(filled.node_id)} is not this node`, "entry.node_id");
    }
    if (filled.cluster_id !== this.clusterId) {
      throw MpregError.invalid(`entry.cluster_id ${JSON.stringify(filled.cluster_id)} is not this cluster`, "entry.cluster_id");
    }
    if (!(ttlMs > 0) || ttlMs > this.opts.maxTtlMs) {
      throw MpregError.invalid(`ttl must be in (0, ${this.opts.maxTtlMs}] ms`, "ttl_ms");
    }
    const entry = normalizeEntry(filled);
    const key = entryKey(entry);
    const existing = this.records.get(key);
    if (existing === undefined && this.localCount >= this.opts.maxLocalEntries) {
      throw MpregError.overloaded(`this node already owns ${this.opts.maxLocalEntries} catalog entries`);
    }
    const version = this.nextVersion(now);
    this.tombstones.delete(key);
    this.put({ key, owner: this.nodeId, version, ttl_ms: ttlMs, expires_at: Infinity, entry, announced_at: now });
    this.noteOwner(this.nodeId, version);
    return Object.freeze({ kind: "upsert", key, owner: this.nodeId, version, ttl_ms: ttlMs, entry });
  }

  /** Removes an entry owned by this node (by key or entry); the delta to gossip, or null if absent. */
  unregisterLocal(keyOrEntry: string | CatalogEntry, now: number): CatalogDelta | null {
    checkNow(now);
    const key = typeof keyOrEntry === "string" ? keyOrEntry : entryKey(normalizeEntry(keyOrEntry));
    const rec = this.records.get(key);
    if (rec === undefined || rec.owner !== this.nodeId) return null;
    const version = this.nextVersion(now);
    this.drop(rec);
    const ttl = rec.ttl_ms;
    this.addTombstone({ key, owner: this.nodeId, version, ttl_ms: ttl, expires_at: now + Math.max(ttl, this.opts.tombstoneRetentionMs) });
    this.noteOwner(this.nodeId, version);
    return Object.freeze({ kind: "remove", key, owner: this.nodeId, version, ttl_ms: ttl });
  }

  /**
   * Re-announces local entries that were last announced at least `refreshFraction` of their
   * TTL ago (all of them with `force`), each with a new version. Returns the deltas to gossip.
   */
  refreshLocal(now: number, options: { force?: boolean } = {}): CatalogDelta[] {
    checkNow(now);
    const out: CatalogDelta[] = [];
    for (const rec of [...this.records.values()]) {
      if (rec.owner !== this.nodeId) continue;
      const due = (rec.announced_at ?? -Infinity) + rec.ttl_ms * this.opts.refreshFraction;
      if (options.force !== true && now < due) continue;
      out.push(this.reannounce(rec, now));
    }
    return out;
  }

  /** The earliest time at which `refreshLocal` has something to do (Infinity when nothing is local). */
  nextRefreshAt(): number {
    let t = Infinity;
    for (const rec of this.records.values()) {
      if (rec.owner === this.nodeId) t = Math.min(t, (rec.announced_at ?? -Infinity) + rec.ttl_ms * this.opts.refreshFraction);
    }
    return t;
  }

  /**
   * The earliest time at which `expire` has something to do: the first expiry of an entry owned
   * by another node or of a tombstone (Infinity when there is none). Lets an owner sleep until
   * then instead of calling `expire` on a fixed period.
   */
  nextExpiryAt(): number {
    let t = Infinity;
    for (const rec of this.records.values()) if (rec.owner !== this.nodeId && rec.expires_at < t) t = rec.expires_at;
    for (const tomb of this.tombstones.values()) if (tomb.expires_at < t) t = tomb.expires_at;
    return t;
  }

  private reannounce(rec: Rec, now: number): CatalogDelta {
    const version = this.nextVersion(now);
    this.put({ ...rec, version, announced_at: now });
    this.noteOwner(this.nodeId, version);
    return Object.freeze({ kind: "upsert", key: rec.key, owner: this.nodeId, version, ttl_ms: rec.ttl_ms, entry: rec.entry });
  }

  // ---------------------------------------------------------------- merging remote deltas

  /**
   * Merges one delta (from gossip, a snapshot or anti-entropy). Never throws: malformed input
   * gives status `invalid` with the MpregError 1002 in `error`. A delta older than what is held
   * is `stale` as soon as its header is checked (its entry is not examined).
   */
  applyDelta(raw: unknown, now: number): ApplyResult {
    checkNow(now);
    let d: CatalogDelta;
    let rec: Rec | undefined;
    try {
      // Header first: a delta older than what is held is stale without looking at its entry
      // (the common case for gossip duplicates and anti-entropy overlap).
      const h = this.validateHeader(raw);
      if (h.owner !== this.nodeId) {
        const floor = this.ownerFloor.get(h.owner);
        rec = this.records.get(h.key);
        const held = rec?.version ?? this.tombstones.get(h.key)?.version;
        if ((floor !== undefined && h.version <= floor) || (held !== undefined && h.version < held) || this.sameVersionLoses(h, raw, rec)) {
          this.counters.stale++;
          return { status: "stale" };
        }
      }
      d = this.validateEntry(h, raw as Record<string, unknown>);
    } catch (e) {
      this.counters.invalid++;
      return { status: "invalid", error: e instanceof MpregError ? e : MpregError.invalid(String(e)) };
    }
    if (d.owner === this.nodeId) return this.applyOwn(d, now);
    const current = rec ?? this.tombstones.get(d.key);
    if (current !== undefined && compareStates(d, { version: current.version, ttl_ms: current.ttl_ms, entry: rec?.entry }) <= 0) {
      this.counters.stale++;
      return { status: "stale" };
    }
    if (d.kind === "upsert") {
      const entry = d.entry as CatalogEntry;
      if (rec === undefined && this.records.size - this.localCount >= this.opts.maxEntries) {
        this.counters.droppedFull++;
        return { status: "dropped_full" };
      }
      this.tombstones.delete(d.key);
      this.put({ key: d.key, owner: d.owner, version: d.version, ttl_ms: d.ttl_ms, expires_at: now + d.ttl_ms, entry });
      this.noteOwner(d.owner, d.version);
      this.counters.applied++;
      return {
        status: "applied",
        change: rec === undefined ? { type: "added", key: d.key, entry } : { type: "updated", key: d.key, entry, previous: rec.entry },
      };
    }
    if (rec !== undefined) this.drop(rec);
    this.addTombstone({
      key: d.key,
      owner: d.owner,
      version: d.version,
      ttl_ms: d.ttl_ms,
      expires_at: now + Math.max(d.ttl_ms, this.opts.tombstoneRetentionMs),
    });
    this.noteOwner(d.owner, d.version);
    this.counters.applied++;
    return rec === undefined ? { status: "applied" } : { status: "applied", change: { type: "removed", key: d.key, entry: rec.entry } };
  }

  /** `applyDelta` over many deltas. */
  applyDeltas(deltas: Iterable<unknown>, now: number): ApplyResult[] {
    const out: ApplyResult[] = [];
    for (const d of deltas) out.push(this.applyDelta(d, now));
    return out;
  }

  /** A peer's view of this node's own entry: keep our counter above it, correct it if wrong. */
  private applyOwn(d: CatalogDelta, now: number): ApplyResult {
    this.counter = Math.max(this.counter, d.version);
    const rec = this.records.get(d.key);
    const tomb = this.tombstones.get(d.key);
    let correction: CatalogDelta | undefined;
    if (rec !== undefined) {
      // The peer's view is right only when it is exactly our current announcement.
      const same = d.kind === "upsert" && d.version === rec.version && JSON.stringify(d.entry) === JSON.stringify(rec.entry);
      if (!same && d.version >= rec.version) correction = this.reannounce(rec, now);
    } else if (d.kind === "upsert" && (tomb === undefined || d.version >= tomb.version)) {
      // An entry we do not (or no longer) have, e.g. from before a restart: withdraw it.
      const version = this.nextVersion(now);
      const ttl = d.ttl_ms;
      this.addTombstone({ key: d.key, owner: this.nodeId, version, ttl_ms: ttl, expires_at: now + Math.max(ttl, this.opts.tombstoneRetentionMs) });
      correction = Object.freeze({ kind: "remove", key: d.key, owner: this.nodeId, version, ttl_ms: ttl });
    } else if (d.kind === "remove" && (tomb === undefined || d.version > tomb.version)) {
      // A removal of ours we had forgotten (e.g. restart): keep it, so digests agree again.
      this.addTombstone({ key: d.key, owner: this.nodeId, version: d.version, ttl_ms: d.ttl_ms, expires_at: now + Math.max(d.ttl_ms, this.opts.tombstoneRetentionMs) });
    }
    return correction === undefined ? { status: "own" } : { status: "own", correction };
  }

  /**
   * For a delta at exactly the held version: true when it certainly loses (or ties) under
   * `compareStates` without normalising its entry: an upsert against a tombstone, a shorter
   * TTL, or the very same entry text. Otherwise false, and the full comparison decides.
   */
  private sameVersionLoses(h: CatalogDelta, raw: unknown, rec: Rec | undefined): boolean {
    if (rec === undefined) {
      const t = this.tombstones.get(h.key);
      if (t === undefined || t.version !== h.version) return false;
      return h.kind === "upsert" || h.ttl_ms <= t.ttl_ms;
    }
    if (rec.version !== h.version || h.kind === "remove") return false;
    if (h.ttl_ms !== rec.ttl_ms) return h.ttl_ms < rec.ttl_ms;
    return JSON.stringify((raw as { entry?: unknown }).entry) === JSON.stringify(rec.entry);
  }

  /** Checks everything but the entry; the result has no `entry` yet. */
  private validateHeader(raw: unknown): CatalogDelta {
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw MpregError.invalid("delta must be an object", "delta");
    const o = raw as Record<string, unknown>;
    if (o.kind !== "upsert" && o.kind !== "remove") throw MpregError.invalid('delta.kind must be "upsert" or "remove"', "delta.kind");
    if (typeof o.key !== "string") throw MpregError.invalid("delta.key must be a string", "delta.key");
    if (typeof o.owner !== "string" || o.owner === "") throw MpregError.invalid("delta.owner must be a non-empty string", "delta.owner");
    if (typeof o.version !== "number" || !Number.isSafeInteger(o.version) || o.version < 0) {
      throw MpregError.invalid("delta.version must be a non-negative integer", "delta.version");
    }
    if (typeof o.ttl_ms !== "number" || !Number.isFinite(o.ttl_ms) || o.ttl_ms <= 0) {
      throw MpregError.invalid("delta.ttl_ms must be a positive number", "delta.ttl_ms");
    }
    const parsed = parseEntryKey(o.key);
    if (parsed === null) throw MpregError.invalid(`delta.key ${JSON.stringify(o.key.slice(0, 100))} is not an entry key`, "delta.key");
    if (parsed.owner !== o.owner) throw MpregError.invalid("delta.key does not belong to delta.owner", "delta.key");
    // Clamped so that no peer can pin an entry or tombstone for ever.
    const ttl_ms = Math.min(o.ttl_ms, this.opts.maxTtlMs);
    return { kind: o.kind, key: o.key, owner: o.owner, version: o.version, ttl_ms };
  }

  /** Adds the checked, normalised entry to an upsert's header. */
  private validateEntry(h: CatalogDelta, o: Record<string, unknown>): CatalogDelta {
    if (h.kind === "remove") return h;
    const entry = normalizeEntry(o.entry, "delta.entry");
    if (entryKey(entry) !== h.key) throw MpregError.invalid("delta.key does not match delta.entry", "delta.key");
    return { ...h, entry };
  }

  // ---------------------------------------------------------------- expiry and departures

  /**
   * Drops entries owned by other nodes whose TTL ran out (`expires_at <= now`) and tombstones
   * past their retention. Local entries never expire here (`refreshLocal` keeps them alive
   * elsewhere). Returns the removed entries.
   */
  expire(now: number): CatalogChange[] {
    checkNow(now);
    const out: CatalogChange[] = [];
    for (const rec of [...this.records.values()]) {
      if (rec.owner !== this.nodeId && rec.expires_at <= now) {
        this.drop(rec);
        this.counters.expired++;
        out.push({ type: "removed", key: rec.key, entry: rec.entry });
      }
    }
    for (const t of [...this.tombstones.values()]) if (t.expires_at <= now) this.tombstones.delete(t.key);
    return out;
  }

  /**
   * Drops everything a dead or departed node owned and returns it. Deltas of that node at or
   * below the highest version seen from it are refused afterwards, so a late copy cannot bring
   * them back; its next announcements (higher versions, e.g. after a restart) are accepted.
   * This node's own entries are never removed (returns []).
   */
  removeNode(nodeId: string): CatalogChange[] {
    if (nodeId === this.nodeId) return [];
    const out: CatalogChange[] = [];
    for (const key of [...(this.byNode.get(nodeId) ?? [])]) {
      const rec = this.records.get(key);
      if (rec !== undefined && rec.owner === nodeId) {
        this.drop(rec);
        out.push({ type: "removed", key, entry: rec.entry });
      }
    }
    for (const t of [...this.tombstones.values()]) if (t.owner === nodeId) this.tombstones.delete(t.key);
    const max = this.ownerMax.get(nodeId);
    if (max !== undefined) {
      this.ownerFloor.delete(nodeId);
      this.ownerFloor.set(nodeId, max);
      while (this.ownerFloor.size > this.opts.maxRemovedOwners) {
        const oldest = this.ownerFloor.keys().next().value as string;
        this.ownerFloor.delete(oldest);
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- snapshots and anti-entropy

  /** Every entry and tombstone as deltas (remaining TTLs at `now`), sorted by key. */
  snapshot(now: number): CatalogSnapshot {
    checkNow(now);
    return {
      format: "mpreg-catalog/1",
      node_id: this.nodeId,
      cluster_id: this.clusterId,
      generated_at: now,
      deltas: this.collectDeltas(now, () => true),
    };
  }

  /**
   * Merges a snapshot with the newer-wins rules. Returns how many deltas got each status, and
   * the corrections to gossip (e.g. a node restoring its own persisted snapshot withdraws the
   * entries it no longer registers).
   */
  applySnapshot(s: unknown, now: number): ApplySnapshotResult {
    checkNow(now);
    const counts: Record<ApplyStatus, number> = { applied: 0, stale: 0, invalid: 0, dropped_full: 0, own: 0 };
    const corrections: CatalogDelta[] = [];
    if (typeof s !== "object" || s === null || (s as { format?: unknown }).format !== "mpreg-catalog/1") {
      throw MpregError.invalid('snapshot must be an object with format "mpreg-catalog/1"', "snapshot");
    }
    const deltas = (s as { deltas?: unknown }).deltas;
    if (!Array.isArray(deltas)) throw MpregError.invalid("snapshot.deltas must be an array", "snapshot.deltas");
    for (const d of deltas) {
      const r = this.applyDelta(d, now);
      counts[r.status]++;
      if (r.correction !== undefined) corrections.push(r.correction);
    }
    return { ...counts, corrections };
  }

  /**
   * Entry key → version of everything held (entries and tombstones), optionally only for the
   * given owners. Send it to a peer, which answers with `deltasSince(digest)`.
   */
  digest(owners?: Iterable<string>): Map<string, number> {
    const only = owners === undefined ? undefined : new Set(owners);
    const out = new Map<string, number>();
    for (const r of this.records.values()) if (only === undefined || only.has(r.owner)) out.set(r.key, r.version);
    for (const t of this.tombstones.values()) if (only === undefined || only.has(t.owner)) out.set(t.key, t.version);
    return out;
  }

  /**
   * The deltas the holder of `digest` is missing or has older (sorted by key, at most `limit`):
   * keys absent from the digest or with a lower version there.
   */
  deltasSince(digest: ReadonlyMap<string, number> | Readonly<Record<string, number>>, now: number, limit = Infinity): CatalogDelta[] {
    checkNow(now);
    const get =
      digest instanceof Map
        ? (k: string) => (digest as ReadonlyMap<string, number>).get(k)
        : (k: string) => (Object.prototype.hasOwnProperty.call(digest, k) ? (digest as Record<string, number>)[k] : undefined);
    const out = this.collectDeltas(now, (key, version) => {
      const theirs = get(key);
      return theirs === undefined || theirs < version;
    });
    return out.length > limit ? out.slice(0, limit) : out;
  }

  /**
   * Per-owner summary (count, max version, hash of (key, version) pairs). Two catalogs hold the
   * same keys and versions for an owner iff (with overwhelming probability) the summaries are
   * equal; exchange `digest(owners)` only for the owners that differ.
   */
  summary(): Map<string, OwnerSummary> {
    const acc = new Map<string, { count: number; max: number; hash: number }>();
    const add = (owner: string, key: string, version: number) => {
      let a = acc.get(owner);
      if (a === undefined) acc.set(owner, (a = { count: 0, max: 0, hash: 0 }));
      a.count++;
      a.max = Math.max(a.max, version);
      a.hash = (a.hash + fnv1a(`${key}@${version}`)) >>> 0;
    };
    for (const r of this.records.values()) add(r.owner, r.key, r.version);
    for (const t of this.tombstones.values()) add(t.owner, t.key, t.version);
    const out = new Map<string, OwnerSummary>();
    for (const [owner, a] of acc) out.set(owner, { count: a.count, max: a.max, hash: a.hash.toString(16).padStart(8, "0") });
    return out;
  }

  private collectDeltas(now: number, want: (key: string, version: number) => boolean): CatalogDelta[] {
    const out: CatalogDelta[] = [];
    for (const r of this.records.values()) {
      if (!want(r.key, r.version)) continue;
      const ttl = r.owner === this.nodeId ? r.ttl_ms : r.expires_at - now;
      if (ttl <= 0) continue;
      out.push({ kind: "upsert", key: r.key, owner: r.owner, version: r.version, ttl_ms: ttl, entry: r.entry });
    }
    for (const t of this.tombstones.values()) {
      if (!want(t.key, t.version)) continue;
      const ttl = t.expires_at - now;
      if (ttl <= 0) continue;
      out.push({ kind: "remove", key: t.key, owner: t.owner, version: t.version, ttl_ms: ttl });
    }
    out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return out;
  }

  // ---------------------------------------------------------------- queries

  /** The entry under `key`, if held. */
  get(key: string): CatalogEntry | undefined {
    return this.records.get(key)?.entry;
  }

  /** Number of entries (local and remote, not tombstones). */
  get size(): number {
    return this.records.size;
  }

  /** True when the entry under `key` is owned by this node. */
  isLocal(key: string): boolean {
    return this.records.get(key)?.owner === this.nodeId;
  }

  /** Endpoints matching every given filter, sorted by key. Throws 1002 for malformed filters. */
  queryFunctions(q: FunctionQuery = {}): FunctionEntry[] {
    return this.queryFunctionRecords(q).map((r) => r.entry as FunctionEntry);
  }

  private queryFunctionRecords(q: FunctionQuery): Rec[] {
    const qq = q as unknown as Record<string, unknown>;
    const name = optString(qq, "name");
    const functionId = optString(qq, "function_id");
    const clusterId = optString(qq, "cluster_id");
    const nodeId = optString(qq, "node_id");
    const resources = optStrings(qq, "resources");
    const vc = q.version_constraint;
    const constraint =
      vc === undefined || vc === null ? undefined : typeof vc === "string" ? parseConstraint(vc, "version_constraint") : vc;
    const candidates = this.smallest("function", [
      name === undefined ? undefined : (this.byName.get(name) ?? EMPTY),
      functionId === undefined ? undefined : (this.byFunctionId.get(functionId) ?? EMPTY),
      nodeId === undefined ? undefined : (this.byNode.get(nodeId) ?? EMPTY),
    ]);
    return this.select(candidates, q.now, (e) => {
      if (e.kind !== "function") return false;
      if (name !== undefined && e.name !== name) return false;
      if (functionId !== undefined && e.function_id !== functionId) return false;
      if (clusterId !== undefined && e.cluster_id !== clusterId) return false;
      if (nodeId !== undefined && e.node_id !== nodeId) return false;
      if (!hasAll(e.resources, resources)) return false;
      if (constraint !== undefined && !satisfies(functionVersion(e), constraint)) return false;
      return true;
    });
  }

  /** Nodes matching every given filter (resources: each required one present), sorted by key. */
  nodes(q: NodeQuery = {}): NodeEntry[] {
    return this.nodeRecords(q).map((r) => r.entry as NodeEntry);
  }

  private nodeRecords(q: NodeQuery): Rec[] {
    const qq = q as unknown as Record<string, unknown>;
    const nodeId = optString(qq, "node_id");
    const clusterId = optString(qq, "cluster_id");
    const region = optString(qq, "region");
    const status = optString(qq, "status");
    const resources = optStrings(qq, "resources");
    return this.select(this.smallest("node", [nodeId === undefined ? undefined : (this.byNode.get(nodeId) ?? EMPTY)]), q.now, (e) =>
      e.kind === "node" &&
      (nodeId === undefined || e.node_id === nodeId) &&
      (clusterId === undefined || e.cluster_id === clusterId) &&
      (region === undefined || e.region === region) &&
      (status === undefined || e.status === status) &&
      hasAll(e.resources, resources),
    );
  }

  /** Topic subscription entries matching every given filter, sorted by key. */
  topics(q: TopicQuery = {}): TopicEntry[] {
    return this.topicRecords(q).map((r) => r.entry as TopicEntry);
  }

  private topicRecords(q: TopicQuery): Rec[] {
    const qq = q as unknown as Record<string, unknown>;
    const nodeId = optString(qq, "node_id");
    const clusterId = optString(qq, "cluster_id");
    const sub = optString(qq, "subscription_id");
    return this.select(this.smallest("topic", [nodeId === undefined ? undefined : (this.byNode.get(nodeId) ?? EMPTY)]), q.now, (e) =>
      e.kind === "topic" &&
      (nodeId === undefined || e.node_id === nodeId) &&
      (clusterId === undefined || e.cluster_id === clusterId) &&
      (sub === undefined || e.subscription_id === sub),
    );
  }

  /** Queue entries matching every given filter (name: exact), sorted by key. */
  queues(q: QueueQuery = {}): QueueEntry[] {
    return this.queueRecords(q).map((r) => r.entry as QueueEntry);
  }

  private queueRecords(q: QueueQuery): Rec[] {
    const qq = q as unknown as Record<string, unknown>;
    const name = optString(qq, "name");
    const nodeId = optString(qq, "node_id");
    const clusterId = optString(qq, "cluster_id");
    return this.select(
      this.smallest("queue", [
        name === undefined ? undefined : (this.byName.get(name) ?? EMPTY),
        nodeId === undefined ? undefined : (this.byNode.get(nodeId) ?? EMPTY),
      ]),
      q.now,
      (e) =>
        e.kind === "queue" &&
        (name === undefined || e.name === name) &&
        (nodeId === undefined || e.node_id === nodeId) &&
        (clusterId === undefined || e.cluster_id === clusterId),
    );
  }

  /** Cache entries matching every given filter, sorted by key. */
  caches(q: CacheQuery = {}): CacheEntry[] {
    return this.cacheRecords(q).map((r) => r.entry as CacheEntry);
  }

  private cacheRecords(q: CacheQuery): Rec[] {
    const qq = q as unknown as Record<string, unknown>;
    const ns = optString(qq, "namespace");
    const nodeId = optString(qq, "node_id");
    const clusterId = optString(qq, "cluster_id");
    const scope = optString(qq, "scope");
    return this.select(
      this.smallest("cache", [
        ns === undefined ? undefined : (this.byName.get(ns) ?? EMPTY),
        nodeId === undefined ? undefined : (this.byNode.get(nodeId) ?? EMPTY),
      ]),
      q.now,
      (e) =>
        e.kind === "cache" &&
        (ns === undefined || e.namespace === ns) &&
        (nodeId === undefined || e.node_id === nodeId) &&
        (clusterId === undefined || e.cluster_id === clusterId) &&
        (scope === undefined || e.scope === scope),
    );
  }

  /**
   * The `catalog_query` built-in: `{entry_type, ...filters, limit?, page_token?}` →
   * `{entry_type, items, next_page_token}`. Items are the entries without their `kind`,
   * ordered by key; pages are keyset-based, so entries added or removed between pages never
   * shift the others. Throws 1002 for a malformed request or page token. `also`: further
   * catalogs queried alike and merged in key order (a node's foreign entries, federation); an
   * entry whose key this catalog holds too is listed once, from this catalog.
   */
  catalogQuery(request: unknown, now?: number, also: readonly Catalog[] = []): CatalogQueryResult {
    if (typeof request !== "object" || request === null || Array.isArray(request)) {
      throw MpregError.invalid("catalog_query expects an object argument", "args[0]");
    }
    const r = request as Record<string, unknown>;
    const type = r.entry_type;
    let recs = this.queryRecords(r, now);
    if (also.length > 0) {
      const seen = new Set(recs.map((x) => x.key));
      const more = also.flatMap((c) => c.queryRecords(r, now)).filter((x) => !seen.has(x.key));
      recs = [...recs, ...more].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    }
    const page = paginate(
      recs.map((x) => ({ key: x.key, item: x.entry })),
      { limit: r.limit, page_token: r.page_token, scope: type },
    );
    return {
      entry_type: type as string,
      items: page.items.map(({ kind: _kind, ...rest }) => rest),
      next_page_token: page.next_page_token,
    };
  }

  /** The records a `catalog_query` request selects, in key order. */
  private queryRecords(r: Record<string, unknown>, now: number | undefined): Rec[] {
    // A client cannot pass its own `now`: only the node's clock hides expired entries.
    const base = { now };
    switch (r.entry_type) {
      case "functions":
        return this.queryFunctionRecords({ ...(r as FunctionQuery), ...base });
      case "nodes":
        return this.nodeRecords({ ...(r as NodeQuery), ...base });
      case "topics":
        return this.topicRecords({ ...(r as TopicQuery), ...base });
      case "queues":
        return this.queueRecords({ ...(r as QueueQuery), ...base });
      case "caches":
        return this.cacheRecords({ ...(r as CacheQuery), ...base });
      default:
        throw MpregError.invalid("entry_type must be one of functions, nodes, queues, topics, caches", "entry_type");
    }
  }

  /** Counters for monitoring. */
  stats(): CatalogStats {
    return {
      entries: this.records.size,
      localEntries: this.localCount,
      remoteEntries: this.records.size - this.localCount,
      tombstones: this.tombstones.size,
      ...this.counters,
    };
  }

  private smallest(kind: EntryKind, sets: (ReadonlySet<string> | undefined)[]): Iterable<string> {
    let best: ReadonlySet<string> | undefined = this.byKind.get(kind);
    if (best === undefined) return [];
    for (const s of sets) {
      if (s === undefined) continue;
      if (s.size < best.size) best = s;
    }
    // A filter naming a value nobody has: no candidates at all.
    for (let i = 0; i < sets.length; i++) {
      if (sets[i] === undefined) continue;
      if ((sets[i] as ReadonlySet<string>).size === 0) return [];
    }
    return best;
  }

  private select(keys: Iterable<string>, now: number | undefined, pred: (e: CatalogEntry) => boolean): Rec[] {
    const out: Rec[] = [];
    for (const key of keys) {
      const rec = this.records.get(key);
      if (rec === undefined) continue;
      if (now !== undefined && rec.expires_at <= now) continue;
      if (pred(rec.entry)) out.push(rec);
    }
    out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return out;
  }

  // ---------------------------------------------------------------- storage and indexes

  private put(rec: Rec): void {
    const old = this.records.get(rec.key);
    if (old !== undefined) this.unindex(old);
    else if (rec.owner === this.nodeId) this.localCount++;
    this.records.set(rec.key, rec);
    this.index(rec);
  }

  private drop(rec: Rec): void {
    if (!this.records.delete(rec.key)) return;
    this.unindex(rec);
    if (rec.owner === this.nodeId) this.localCount--;
  }

  private index(rec: Rec): void {
    const e = rec.entry;
    addIdx(this.byKind, e.kind, rec.key);
    addIdx(this.byNode, e.node_id, rec.key);
    const n = nameOf(e);
    if (n !== undefined) addIdx(this.byName, n, rec.key);
    if (e.kind === "function") addIdx(this.byFunctionId, e.function_id, rec.key);
  }

  private unindex(rec: Rec): void {
    const e = rec.entry;
    delIdx(this.byKind, e.kind, rec.key);
    delIdx(this.byNode, e.node_id, rec.key);
    const n = nameOf(e);
    if (n !== undefined) delIdx(this.byName, n, rec.key);
    if (e.kind === "function") delIdx(this.byFunctionId, e.function_id, rec.key);
  }

  private addTombstone(t: Tomb): void {
    this.tombstones.delete(t.key);
    this.tombstones.set(t.key, t);
    // Forget the oldest inserted: worst case a reordered older upsert of that key is accepted
    // again, and then lives at most its own TTL.
    while (this.tombstones.size > this.opts.maxTombstones) {
      const oldest = this.tombstones.keys().next().value as string;
      this.tombstones.delete(oldest);
      this.counters.tombstonesEvicted++;
    }
  }

  private noteOwner(owner: string, version: number): void {
    const m = this.ownerMax.get(owner);
    if (m === undefined || version > m) {
      // Bounded like the catalog: forget the oldest-inserted owner past the bound.
      if (m === undefined && this.ownerMax.size >= this.opts.maxEntries + this.opts.maxRemovedOwners) {
        const oldest = this.ownerMax.keys().next().value as string;
        this.ownerMax.delete(oldest);
      }
      this.ownerMax.set(owner, version);
    }
  }
}

const versionCache = new WeakMap<FunctionEntry, Version>();

/** The parsed version of a function entry (cached per entry object). */
export function functionVersion(e: FunctionEntry): Version {
  let v = versionCache.get(e);
  if (v === undefined) versionCache.set(e, (v = parseVersion(e.version)));
  return v;
}

/** Name indexed in `byName`: functions by name, queues by name, caches by namespace (kinds never mix: filtered by kind). */
function nameOf(e: CatalogEntry): string | undefined {
  switch (e.kind) {
    case "function":
    case "queue":
      return e.name;
    case "cache":
      return e.namespace;
    default:
      return undefined;
  }
}

/** Result of `catalogQuery`. */
export interface CatalogQueryResult {
  readonly entry_type: string;
  readonly items: Record<string, unknown>[];
  readonly next_page_token: string | null;
}

/** Default and maximum page sizes of `paginate`. */
export const PAGE_LIMITS = { default: 100, max: 1000 } as const;

/**
 * Keyset pagination over items sorted by `key`. The token is opaque to callers (base64url of
 * the scope and the last key returned); a token from another scope, or malformed, is 1002.
 * `limit` defaults to 100 and must be an integer in [1, 1000].
 */
export function paginate<T>(
  sorted: readonly { key: string; item: T }[],
  options: { limit?: unknown; page_token?: unknown; scope?: unknown },
): { items: T[]; next_page_token: string | null } {
  const { limit: rawLimit, page_token: token } = options;
  const scope = String(options.scope ?? "");
  let limit: number = PAGE_LIMITS.default;
  if (rawLimit !== undefined && rawLimit !== null) {
    if (typeof rawLimit !== "number" || !Number.isInteger(rawLimit) || rawLimit < 1 || rawLimit > PAGE_LIMITS.max) {
      throw MpregError.invalid(`limit must be an integer in [1, ${PAGE_LIMITS.max}]`, "limit");
    }
    limit = rawLimit;
  }
  let start = 0;
  if (token !== undefined && token !== null) {
    const after = decodeToken(token, scope);
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((sorted[mid] as { key: string }).key <= after) lo = mid + 1;
      else hi = mid;
    }
    start = lo;
  }
  const slice = sorted.slice(start, start + limit);
  const more = start + limit < sorted.length;
  const last = slice[slice.length - 1];
  return {
    items: slice.map((x) => x.item),
    next_page_token: more && last !== undefined ? encodeToken(scope, last.key) : null,
  };
}

function encodeToken(scope: string, key: string): string {
  return Buffer.from(JSON.stringify([scope, key]), "utf8").toString("base64url");
}

function decodeToken(token: unknown, scope: string): string {
  const bad = () => MpregError.invalid("page_token is malformed or belongs to another query", "page_token");
  if (typeof token !== "string" || token.length > 16_384) throw bad();
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  if (!Array.isArray(v) || v.length !== 2 || v[0] !== scope || typeof v[1] !== "string") throw bad();
  return v[1];
}

