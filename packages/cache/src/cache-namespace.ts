import { MpregError, createLogger } from "@mpreg/envelope";
import { compilePattern, type CompiledPattern } from "@mpreg/router";
import type { NamespaceConfig } from "./cache-config.js";
import type { CacheEntry } from "./cache-entry.js";
import { DependencyGraph } from "./dependency-graph.js";
import type { Stamp } from "./hybrid-clock.js";
import { encodeL2Record, type L2Store } from "./l2-store.js";
import { MemoryCache, type RemovalReason } from "./memory-cache.js";
import { SingleFlight } from "./single-flight.js";

const logger = createLogger("cache");

/** What the namespace knows of a key held in L1 or L2. */
interface Held {
  expiresAt: number;
  stamp: Stamp | undefined;
  inL2: boolean;
  cost: number;
}

/** Told whenever the stamp of a held key changes (the replicator keeps its digest with it). */
export interface HeldListener {
  changed(key: string, before: Stamp | undefined, after: Stamp | undefined): void;
}

/** A stored entry, as replication sends it. */
export interface ReplicaEntry {
  value: unknown;
  stamp: Stamp;
  expiresAt: number;
  deps: readonly string[];
  cost: number;
}

/** What is written with a value. */
export interface StoreOptions {
  expiresAt: number;
  deps: readonly string[];
  cost: number;
  stamp?: Stamp | undefined;
}

/** Statistics of one namespace. */
export interface NamespaceStats {
  /** Reads answered from L1 or L2. */
  hits: number;
  /** Reads answered by neither tier. */
  misses: number;
  /** L1 entries removed by the policy to stay within the limits. */
  evictions: number;
  /** Entries in L1. */
  entries: number;
  /** Bytes in L1 (as counted by `sizing`). */
  bytes: number;
  /** Entries removed because their TTL ended. */
  expirations: number;
  /** Reads answered from L2 (included in `hits`). */
  l2_hits: number;
  /** Entries in L2. */
  l2_entries: number;
}

/** A read's answer. */
export type ReadResult = { hit: true; value: unknown } | { hit: false };

const MISS: ReadResult = Object.freeze({ hit: false });

/** Splits a key into topic segments, or undefined when it is not a valid dot-separated key. */
function segmentsOf(key: string): string[] | undefined {
  const segs = key.split(".");
  for (const s of segs) if (s.length === 0) return undefined;
  return segs;
}

/**
 * One namespace: the L1 memory tier, the optional L2 tier (write-through: a write resolves
 * once L2 has it; read-through: an L1 miss reads L2 and promotes what it finds), the
 * dependency graph, pattern matching over keys and single-flight loads.
 *
 * Invariant: `held` lists exactly the keys present in L1 or L2; the dependency graph holds
 * only their edges; L2 holds at most `l2_max_entries` (oldest-written leaves first).
 */
export class CacheNamespace {
  readonly l1: MemoryCache<unknown>;
  readonly graph = new DependencyGraph();
  readonly flights = new SingleFlight();
  /** Set by the replicator for replicated namespaces. */
  listener: HeldListener | undefined = undefined;
  private readonly held = new Map<string, Held>();
  /** L2 keys, oldest write first. */
  private readonly l2Order = new Map<string, true>();
  private l2Seq = 0;
  private hits = 0;
  private misses = 0;
  private l2Hits = 0;

  constructor(
    readonly name: string,
    readonly config: NamespaceConfig,
    private readonly now: () => number,
    random: () => number,
    private readonly l2: L2Store | undefined,
  ) {
    this.l1 = new MemoryCache<unknown>({
      policy: config.policy,
      maxEntries: config.max_entries,
      maxBytes: config.max_bytes,
      sizing: config.sizing,
      now,
      random,
      onRemove: (e, reason) => this.onL1Remove(e, reason),
    });
  }

  /** The namespace's clock (ms). */
  nowMs(): number {
    return this.now();
  }

  /** Loads the L2 index (keys, expiries, stamps, dependencies); expired rows are deleted. */
  async load(): Promise<void> {
    if (this.l2 === undefined) return;
    const rows = await this.l2.scan();
    rows.sort((a, b) => a[1].seq - b[1].seq);
    const now = this.now();
    const dead: string[] = [];
    for (const [key, r] of rows) {
      if (r.expiresAt <= now) {
        dead.push(key);
        continue;
      }
      this.held.set(key, { expiresAt: r.expiresAt, stamp: r.stamp, inL2: true, cost: r.cost });
      this.graph.set(key, r.deps);
      this.l2Order.set(key, true);
      this.l2Seq = Math.max(this.l2Seq, r.seq + 1);
    }
    await this.l2.del(dead);
    await this.trimL2();
  }

  private onL1Remove(e: CacheEntry<unknown>, reason: RemovalReason): void {
    if (reason === "deleted") return;
    const h = this.held.get(e.key);
    if (h === undefined) return;
    if (reason === "expired") void this.forget(e.key).catch(logL2Error);
    else if (!h.inL2) void this.forget(e.key);
  }

  /** Removes a key from the index, the graph and (when there) L2. L1 is the caller's. */
  private forget(key: string): Promise<void> {
    this.flights.markStale(key);
    const h = this.held.get(key);
    if (h === undefined) return Promise.resolve();
    this.held.delete(key);
    this.graph.remove(key);
    this.listener?.changed(key, h.stamp, undefined);
    if (!h.inL2 || this.l2 === undefined) return Promise.resolve();
    this.l2Order.delete(key);
    return this.l2.del([key]);
  }

  private live(key: string): Held | undefined {
    const h = this.held.get(key);
    return h !== undefined && h.expiresAt > this.now() ? h : undefined;
  }

  /** Reads `key`: L1, then L2 (promoting a hit into L1). */
  async get(key: string): Promise<ReadResult> {
    const v = this.l1.get(key);
    if (v !== undefined) {
      this.hits++;
      return { hit: true, value: v };
    }
    const h = this.held.get(key);
    if (this.l2 !== undefined && h !== undefined && h.inL2) {
      if (h.expiresAt <= this.now()) {
        await this.forget(key);
      } else {
        const r = await this.l2.get(key);
        if (this.held.get(key) !== h) {
          // Changed while reading: answer with what L1 holds now.
          const now = this.l1.peek(key);
          if (now !== undefined) {
            this.hits++;
            return { hit: true, value: now };
          }
        } else if (r === undefined || r.expiresAt <= this.now()) {
          await this.forget(key);
        } else {
          this.l1.set(key, r.value, { expiresAt: r.expiresAt, cost: r.cost });
          this.hits++;
          this.l2Hits++;
          return { hit: true, value: r.value };
        }
      }
    }
    this.misses++;
    return MISS;
  }

  /**
   * Stores a value in L1 and (write-through) L2. The L1 part happens before this returns;
   * the promise resolves once L2 has the value. Throws 1002 (naming `value`) for a value
   * larger than `max_bytes` or one L2 cannot encode, before changing anything.
   */
  store(key: string, value: unknown, o: StoreOptions): Promise<void> {
    if (value === undefined) throw MpregError.invalid("value must not be undefined", "value");
    const seq = this.l2Seq++;
    const bytes =
      this.l2 === undefined
        ? undefined
        : encodeL2Record({ value, expiresAt: o.expiresAt, deps: o.deps, cost: o.cost, stamp: o.stamp, seq });
    this.flights.markStale(key);
    const before = this.held.get(key);
    const stayed = this.l1.set(key, value, { expiresAt: o.expiresAt, cost: o.cost });
    if (!stayed && bytes === undefined) {
      // Not admitted to L1 and no L2: the key is no longer held at all.
      if (this.held.has(key)) void this.forget(key).catch(logL2Error);
      return Promise.resolve();
    }
    this.held.set(key, { expiresAt: o.expiresAt, stamp: o.stamp, inL2: bytes !== undefined, cost: o.cost });
    this.graph.set(key, o.deps);
    this.listener?.changed(key, before?.stamp, o.stamp);
    if (bytes === undefined || this.l2 === undefined) return Promise.resolve();
    this.l2Order.delete(key);
    this.l2Order.set(key, true);
    const written = this.l2.putBytes(key, bytes);
    void this.trimL2().catch(logL2Error);
    return written;
  }

  private trimL2(): Promise<void> {
    const drop: string[] = [];
    while (this.l2Order.size > this.config.l2_max_entries) {
      const k = this.l2Order.keys().next().value as string;
      this.l2Order.delete(k);
      drop.push(k);
      const h = this.held.get(k);
      if (h === undefined) continue;
      h.inL2 = false;
      if (!this.l1.has(k)) {
        this.l1.delete(k);
        void this.forget(k);
      }
    }
    return this.l2 === undefined ? Promise.resolve() : this.l2.del(drop);
  }

  /**
   * Removes one key from both tiers. `live` is true when a live entry was removed; `done`
   * resolves once L2 has forgotten it.
   */
  remove(key: string): { live: boolean; done: Promise<void> } {
    this.flights.markStale(key);
    this.l1.delete(key);
    const live = this.live(key) !== undefined;
    return { live, done: this.forget(key) };
  }

  /** Removes keys from both tiers; returns how many live entries went. */
  async removeAll(keys: Iterable<string>): Promise<number> {
    let n = 0;
    const pending: Promise<void>[] = [];
    for (const k of keys) {
      const r = this.remove(k);
      if (r.live) n++;
      pending.push(r.done);
    }
    await Promise.all(pending);
    return n;
  }

  /** Marks stale the loads in flight that an invalidation of `keys` (and `pattern`) covers. */
  staleFlights(keys: ReadonlySet<string>, pattern: CompiledPattern | undefined): void {
    if (this.flights.size === 0) return;
    const matches =
      pattern === undefined
        ? undefined
        : (k: string) => {
            const segs = segmentsOf(k);
            return segs !== undefined && pattern.testSegments(segs);
          };
    this.flights.markStaleWhere(keys, matches);
  }

  /** The stamp of a live held key. */
  stampOf(key: string): Stamp | undefined {
    return this.live(key)?.stamp;
  }

  /** A live entry whose value is in L1, for replication. */
  replicaEntry(key: string): ReplicaEntry | undefined {
    const h = this.live(key);
    if (h === undefined || h.stamp === undefined) return undefined;
    const e = this.l1.peekEntry(key);
    if (e === undefined) return undefined;
    return { value: e.value, stamp: h.stamp, expiresAt: h.expiresAt, deps: this.graph.dependenciesOf(key), cost: h.cost };
  }

  /** Keys held in L1 or L2 (possibly expired and not yet swept). */
  heldKeys(): IterableIterator<string> {
    return this.held.keys();
  }

  /** Every held key with its stamp (replicated namespaces). */
  *heldStamps(): IterableIterator<[string, Stamp]> {
    for (const [k, h] of this.held) if (h.stamp !== undefined) yield [k, h.stamp];
  }

  /** Live held keys matching a pattern of the router's matcher (1002 for a malformed pattern). */
  matching(pattern: string | CompiledPattern): string[] {
    const p = typeof pattern === "string" ? compilePattern(pattern, "pattern") : pattern;
    const now = this.now();
    if (p.literal) {
      const h = this.held.get(p.pattern);
      return h !== undefined && h.expiresAt > now ? [p.pattern] : [];
    }
    const out: string[] = [];
    for (const [k, h] of this.held) {
      if (h.expiresAt <= now) continue;
      const segs = segmentsOf(k);
      if (segs !== undefined && p.testSegments(segs)) out.push(k);
    }
    return out;
  }

  /** Drops every expired entry from both tiers (O(entries held)); returns how many. */
  async sweep(): Promise<number> {
    this.l1.purgeExpired();
    const now = this.now();
    const dead: string[] = [];
    for (const [k, h] of this.held) if (h.expiresAt <= now) dead.push(k);
    await Promise.all(dead.map((k) => this.remove(k).done));
    return dead.length;
  }

  stats(): NamespaceStats {
    const s = this.l1.stats();
    return {
      hits: this.hits,
      misses: this.misses,
      evictions: s.evictions,
      entries: s.entries,
      bytes: s.bytes,
      expirations: s.expirations,
      l2_hits: this.l2Hits,
      l2_entries: this.l2Order.size,
    };
  }

  /** Resolves once L2 has every write issued so far. */
  async idle(): Promise<void> {
    await this.l2?.idle();
  }
}

function logL2Error(e: unknown): void {
  logger.warn(`cache L2 write failed: ${e instanceof Error ? e.message : String(e)}`);
}
