import { MpregError } from "@mpreg/envelope";
import { CacheEntry } from "./cache-entry.js";
import { createPolicy } from "./create-policy.js";
import type { EvictionPolicy, PolicyName } from "./eviction-policy.js";
import { POLICY_NAMES } from "./eviction-policy.js";
import { IndexedHeap } from "./indexed-heap.js";
import { hashKey } from "./key-hash.js";
import { entrySize, type Sizing } from "./value-size.js";

/** Default entry limit of a memory tier. */
export const DEFAULT_MAX_ENTRIES = 10_000;
/** Default byte limit of a memory tier (64 MiB). */
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
/** Longest key, in UTF-16 code units. */
export const MAX_KEY_LENGTH = 1024;

/** Why an entry left the memory tier. */
export type RemovalReason = "evicted" | "expired" | "deleted";

/** Options of a {@link MemoryCache}. */
export interface MemoryCacheOptions<V> {
  /** Eviction policy. Default `tinylfu` (W-TinyLFU). */
  policy?: PolicyName;
  /** Most entries held (a positive integer). Default 10 000. */
  maxEntries?: number;
  /** Most bytes held, as counted by `sizing` (a positive integer). Default 64 MiB. */
  maxBytes?: number;
  /** How an entry's bytes are counted (see value-size.ts). Default `estimate`. */
  sizing?: Sizing;
  /** Time-to-live (ms) of entries put without one; undefined: entries do not expire. */
  defaultTtlMs?: number;
  /** The clock, in ms (inject a simulated one in tests). Default `Date.now`. */
  now?: () => number;
  /** Random source in [0, 1) (W-TinyLFU's rare random admission). Default a fixed-seed xorshift. */
  random?: () => number;
  /** Called after an entry left, whatever the reason (not for a value replaced by `set`). */
  onRemove?: (entry: CacheEntry<V>, reason: RemovalReason) => void;
}

/** Options of one {@link MemoryCache.set}. */
export interface SetOptions {
  /** Time-to-live in ms (a positive number); overrides the tier's default. */
  ttlMs?: number;
  /** Absolute expiry on the tier's clock; overrides `ttlMs`. */
  expiresAt?: number;
  /** Cost of recomputing the value (GreedyDual-Size), a positive number. Default 1. */
  cost?: number;
}

/** Counters of a memory tier. */
export interface MemoryCacheStats {
  hits: number;
  misses: number;
  /** Entries removed by the policy to stay within the limits. */
  evictions: number;
  /** Entries removed because their TTL ended. */
  expirations: number;
  entries: number;
  bytes: number;
}

/** A small deterministic xorshift32 (the default `random`; only W-TinyLFU's hash-flooding guard uses it). */
function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

function positiveInt(v: unknown, name: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) throw MpregError.invalid(`${name} must be a positive integer`, name);
  return v;
}

/** Checks a key: a non-empty string of at most MAX_KEY_LENGTH characters without NUL. */
export function checkKey(key: unknown, path = "key"): string {
  if (typeof key !== "string" || key.length === 0) throw MpregError.invalid("cache key must be a non-empty string", path);
  if (key.length > MAX_KEY_LENGTH) throw MpregError.invalid(`cache key longer than ${MAX_KEY_LENGTH} characters`, path);
  if (key.includes("\u0000")) throw MpregError.invalid("cache key must not contain NUL", path);
  return key;
}

/**
 * The L1 tier: a map of entries in memory, ordered by one eviction policy, with limits by
 * entry count and by bytes that hold after every operation, and per-entry TTL on an injected
 * clock. Synchronous; every operation is O(1) or O(log n) (expiry uses a heap of the entries
 * that have a TTL; expired entries are dropped when read and before any eviction).
 *
 * A value is stored by reference: callers must not mutate a value after `set` or after `get`.
 */
export class MemoryCache<V = unknown> {
  readonly policyName: PolicyName;
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly sizing: Sizing;
  readonly defaultTtlMs: number | undefined;
  private readonly map = new Map<string, CacheEntry<V>>();
  private readonly policy: EvictionPolicy<V>;
  private readonly expiry: IndexedHeap<CacheEntry<V>>;
  private readonly now: () => number;
  private readonly onRemove: ((entry: CacheEntry<V>, reason: RemovalReason) => void) | undefined;
  private totalBytes = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private expirations = 0;

  constructor(opts: MemoryCacheOptions<V> = {}) {
    const policy = opts.policy ?? "tinylfu";
    if (!POLICY_NAMES.includes(policy)) throw MpregError.invalid(`unknown cache policy ${JSON.stringify(policy)}`, "policy");
    this.policyName = policy;
    this.maxEntries = positiveInt(opts.maxEntries ?? DEFAULT_MAX_ENTRIES, "maxEntries");
    this.maxBytes = positiveInt(opts.maxBytes ?? DEFAULT_MAX_BYTES, "maxBytes");
    this.sizing = opts.sizing ?? "estimate";
    if (this.sizing !== "estimate" && this.sizing !== "msgpack") throw MpregError.invalid("sizing must be estimate or msgpack", "sizing");
    if (opts.defaultTtlMs !== undefined && !(opts.defaultTtlMs > 0)) throw MpregError.invalid("defaultTtlMs must be positive", "defaultTtlMs");
    this.defaultTtlMs = opts.defaultTtlMs;
    this.now = opts.now ?? Date.now;
    this.onRemove = opts.onRemove;
    this.policy = createPolicy<V>(policy, {
      maxEntries: this.maxEntries,
      maxBytes: this.maxBytes,
      random: opts.random ?? xorshift(0x9e3779b9),
    });
    this.expiry = new IndexedHeap<CacheEntry<V>>(
      (a, b) => a.expiresAt < b.expiresAt,
      (e) => e.expiryIndex,
      (e, i) => {
        e.expiryIndex = i;
      },
    );
  }

  /** The policy instance (policy-specific tests inspect its segments). */
  get policyInstance(): EvictionPolicy<V> {
    return this.policy;
  }

  /** Entries held (expired ones not yet dropped included). */
  get size(): number {
    return this.map.size;
  }

  /** Bytes held, as counted by `sizing`. */
  get bytes(): number {
    return this.totalBytes;
  }

  /** The value for `key`, or undefined (a miss). Counts a hit or a miss; tells the policy. */
  get(key: string): V | undefined {
    const e = this.map.get(key);
    if (e === undefined) {
      this.misses++;
      if (this.policy.usesKeyHash) this.policy.onMiss(hashKey(key));
      return undefined;
    }
    // TTL-less entries skip the clock read (the common case on the hot path).
    if (e.expiresAt !== Infinity && e.expiresAt <= this.now()) {
      this.drop(e, "expired");
      this.misses++;
      this.policy.onMiss(e.hash);
      return undefined;
    }
    this.hits++;
    this.policy.onHit(e);
    return e.value;
  }

  /** The live entry for `key` without counting or touching the policy. */
  peekEntry(key: string): CacheEntry<V> | undefined {
    const e = this.map.get(key);
    return e !== undefined && e.expiresAt > this.now() ? e : undefined;
  }

  /** The live value for `key` without counting or touching the policy. */
  peek(key: string): V | undefined {
    return this.peekEntry(key)?.value;
  }

  /** True when a live entry exists for `key` (no counting, no policy). */
  has(key: string): boolean {
    return this.peekEntry(key) !== undefined;
  }

  /**
   * Stores `value` under `key`, then evicts until both limits hold. Returns false when the
   * entry did not stay (the policy chose it as the victim, e.g. W-TinyLFU's admission test).
   * A value larger than `maxBytes` on its own is refused with 1002 naming `value`.
   */
  set(key: string, value: V, opts: SetOptions = {}): boolean {
    const size = entrySize(key, value, this.sizing);
    if (size > this.maxBytes) {
      throw MpregError.invalid(`value takes ${size} bytes, more than the namespace's max_bytes ${this.maxBytes}`, "value");
    }
    const cost = opts.cost ?? 1;
    if (!(cost > 0 && Number.isFinite(cost))) throw MpregError.invalid("cost must be a positive number", "cost");
    const now = this.now();
    let expiresAt = Infinity;
    if (opts.expiresAt !== undefined) expiresAt = opts.expiresAt;
    else {
      const ttl = opts.ttlMs ?? this.defaultTtlMs;
      if (ttl !== undefined) {
        if (!(ttl > 0)) throw MpregError.invalid("ttl_ms must be positive", "ttl_ms");
        expiresAt = now + ttl;
      }
    }
    if (expiresAt <= now) {
      // Already expired: storing it would only evict something live.
      this.delete(key);
      return false;
    }
    let e = this.map.get(key);
    if (e !== undefined) {
      const oldSize = e.size;
      e.value = value;
      e.size = size;
      e.cost = cost;
      this.totalBytes += size - oldSize;
      this.setExpiry(e, expiresAt);
      this.policy.onUpdate(e, oldSize);
    } else {
      e = new CacheEntry<V>(key, value, size, cost, expiresAt, this.policy.usesKeyHash ? hashKey(key) : 0);
      this.map.set(key, e);
      this.totalBytes += size;
      if (expiresAt !== Infinity) this.expiry.push(e);
      this.policy.onInsert(e);
    }
    this.enforce();
    return this.map.get(key) === e;
  }

  private setExpiry(e: CacheEntry<V>, expiresAt: number): void {
    const had = e.expiresAt !== Infinity;
    e.expiresAt = expiresAt;
    if (expiresAt === Infinity) {
      if (had) this.expiry.remove(e);
    } else if (had) this.expiry.update(e);
    else this.expiry.push(e);
  }

  /** Removes `key`; true when a live entry was removed. */
  delete(key: string): boolean {
    const e = this.map.get(key);
    if (e === undefined) return false;
    const live = e.expiresAt > this.now();
    this.drop(e, live ? "deleted" : "expired");
    return live;
  }

  /** Drops every expired entry now; returns how many. */
  purgeExpired(): number {
    const now = this.now();
    let n = 0;
    for (let e = this.expiry.peek(); e !== undefined && e.expiresAt <= now; e = this.expiry.peek()) {
      this.drop(e, "expired");
      n++;
    }
    return n;
  }

  private enforce(): void {
    if (this.map.size <= this.maxEntries && this.totalBytes <= this.maxBytes) return;
    this.purgeExpired();
    while (this.map.size > this.maxEntries || this.totalBytes > this.maxBytes) {
      const victim = this.policy.evict();
      if (victim === undefined) break;
      this.detach(victim);
      this.evictions++;
      this.onRemove?.(victim, "evicted");
    }
  }

  /** Removes an entry the policy still holds. */
  private drop(e: CacheEntry<V>, reason: RemovalReason): void {
    this.policy.onRemove(e);
    this.detach(e);
    if (reason === "expired") this.expirations++;
    this.onRemove?.(e, reason);
  }

  /** Removes an entry from the map and the expiry heap (the policy already let go of it). */
  private detach(e: CacheEntry<V>): void {
    this.map.delete(e.key);
    this.totalBytes -= e.size;
    if (e.expiryIndex >= 0) this.expiry.remove(e);
  }

  /** Keys held (expired ones not yet dropped included), in no particular order. */
  keys(): IterableIterator<string> {
    return this.map.keys();
  }

  /** Removes every entry (statistics are kept; `onRemove` is not called). */
  clear(): void {
    this.map.clear();
    this.policy.clear();
    this.expiry.clear();
    this.totalBytes = 0;
  }

  stats(): MemoryCacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
      expirations: this.expirations,
      entries: this.map.size,
      bytes: this.totalBytes,
    };
  }
}
