/**
 * One entry of the L1 memory tier. The bookkeeping fields of every eviction policy live on the
 * entry itself (intrusive lists and heap positions), so no policy allocates per operation.
 */
export class CacheEntry<V = unknown> {
  /** Previous entry in the policy list holding this one (towards the head, most recent). */
  prev: CacheEntry<V> | undefined = undefined;
  /** Next entry in the policy list (towards the tail, least recent). */
  next: CacheEntry<V> | undefined = undefined;
  /** Which list of its policy holds the entry (policy-defined; -1: none). */
  list = -1;
  /** Position in the policy's heap (-1: none). */
  heapIndex = -1;
  /** Position in the memory tier's expiry heap (-1: no TTL). */
  expiryIndex = -1;
  /** Policy priority (LFU, GreedyDual-Size). */
  priority = 0;
  /** Access or insertion sequence (tie-breaks: older first). */
  seq = 0;
  /** Access count (LFU). */
  freq = 0;

  constructor(
    readonly key: string,
    public value: V,
    /** Estimated bytes held for this entry, key and bookkeeping included. */
    public size: number,
    /** Caller-given cost of recomputing the value (GreedyDual-Size); default 1. */
    public cost: number,
    /** Absolute time (ms, the tier's clock) at which the entry expires; Infinity: never. */
    public expiresAt: number,
    /** 32-bit hash of the key, for policies that use one (frequency sketch); else 0. */
    readonly hash: number,
  ) {}
}
