import type { CacheEntry } from "./cache-entry.js";

/** Names of the L1 eviction policies (`tinylfu` is W-TinyLFU, the default). */
export type PolicyName = "tinylfu" | "lru" | "lfu" | "s4lru" | "cost" | "ttl";

/** Every policy name, default first. */
export const POLICY_NAMES: readonly PolicyName[] = ["tinylfu", "lru", "lfu", "s4lru", "cost", "ttl"];

/** The limits a policy sizes its segments by (both finite). */
export interface PolicyLimits {
  readonly maxEntries: number;
  readonly maxBytes: number;
  /** Random source in [0, 1) (W-TinyLFU's rare random admission). */
  readonly random: () => number;
}

/**
 * What the memory tier tells a policy, and the one question it asks: which entry goes next.
 * The tier owns the entries and enforces the limits (it calls `evict` while over either
 * limit); a policy only orders entries. Every method is O(1) or O(log n).
 */
export interface EvictionPolicy<V> {
  readonly name: PolicyName;
  /**
   * True when the policy counts frequencies by key hash: entries then carry their key's hash and
   * misses are reported through `onMiss` (other policies skip hashing altogether).
   */
  readonly usesKeyHash: boolean;
  /** A new entry was added. */
  onInsert(e: CacheEntry<V>): void;
  /** A read found the entry. */
  onHit(e: CacheEntry<V>): void;
  /** A read found nothing for a key with this hash (W-TinyLFU counts it). */
  onMiss(hash: number): void;
  /** The entry's value, size, cost or expiry was replaced (`e.size` is already the new size). */
  onUpdate(e: CacheEntry<V>, oldSize: number): void;
  /** The tier removed the entry (delete, expiry, invalidation). */
  onRemove(e: CacheEntry<V>): void;
  /** Chooses the next entry to evict, detaches it from the policy and returns it. */
  evict(): CacheEntry<V> | undefined;
  clear(): void;
}
