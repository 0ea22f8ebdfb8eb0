import { MpregError, createLogger } from "@mpreg/envelope";
import { compilePattern, type CompiledPattern } from "@mpreg/router";
import type { ReplicationConfig } from "./cache-config.js";
import type { CacheNamespace, HeldListener } from "./cache-namespace.js";
import { HybridClock, compareStamps, stampText, type Stamp } from "./hybrid-clock.js";
import { hashKey } from "./key-hash.js";
import {
  DIGEST_BUCKETS,
  MAX_TOMB_KEYS,
  validateReplicationMessage,
  type PutMessage,
  type ReplicationMessage,
  type SyncEntry,
  type SyncRequestMessage,
  type SyncResponseMessage,
  type TombMessage,
} from "./replication-message.js";

const logger = createLogger("cache");

/** A message the replicator wants sent: to every member, or to one node. */
export type Outbound =
  | { readonly to: "all"; readonly message: ReplicationMessage }
  | { readonly to: "node"; readonly node: string; readonly message: ReplicationMessage };

/** Counters of the replicator. */
export interface ReplicationStats {
  sent: number;
  received: number;
  /** Messages refused: malformed, unknown or local namespace, clock too far ahead. */
  rejected: number;
  /** Writes and tombstones that changed local state. */
  applied: number;
  /** Writes and tombstones ignored because something newer was known. */
  stale: number;
  /** Tombstones dropped because the cap was reached (before their expiry). */
  tombstones_dropped: number;
}

interface Tomb {
  stamp: Stamp;
  cascade: boolean;
}

interface PatternTomb {
  pattern: CompiledPattern;
  stamp: Stamp;
}

/** Most remote holders (nodes of other clusters) tracked per namespace. */
export const MAX_REMOTE_PEERS = 1024;
const NO_PEERS: ReadonlySet<string> = new Set();

function bucketOf(key: string): number {
  return hashKey(key) & (DIGEST_BUCKETS - 1);
}

function segmentsOf(key: string): string[] | undefined {
  const segs = key.split(".");
  return segs.every((s) => s.length > 0) ? segs : undefined;
}

/**
 * The replicated state of one namespace beyond what the namespace holds: tombstones (key →
 * stamp), pattern tombstones, and the digest: per bucket of keys, the XOR of two 32-bit hashes
 * of every (key, stamp, live|tomb) held, kept up to date on every change, so two nodes holding
 * the same versions have equal digests and comparing them costs O(buckets).
 */
class NamespaceReplica implements HeldListener {
  readonly tombs = new Map<string, Tomb>();
  patterns: PatternTomb[] = [];
  readonly digest = new Uint32Array(DIGEST_BUCKETS * 2);

  constructor(readonly ns: CacheNamespace) {
    for (const [k, s] of ns.heldStamps()) this.mix(k, s, false);
    ns.listener = this;
  }

  mix(key: string, stamp: Stamp, tomb: boolean): void {
    const text = `${key}\u0000${stampText(stamp)}\u0000${tomb ? "t" : "l"}`;
    const b = bucketOf(key) * 2;
    this.digest[b] = ((this.digest[b] as number) ^ hashKey(text)) >>> 0;
    this.digest[b + 1] = ((this.digest[b + 1] as number) ^ hashKey(`${text}\u0001`)) >>> 0;
  }

  changed(key: string, before: Stamp | undefined, after: Stamp | undefined): void {
    if (before !== undefined) this.mix(key, before, false);
    if (after !== undefined) this.mix(key, after, false);
  }

  setTomb(key: string, t: Tomb): void {
    this.deleteTomb(key);
    this.tombs.set(key, t);
    this.mix(key, t.stamp, true);
  }

  deleteTomb(key: string): void {
    const old = this.tombs.get(key);
    if (old === undefined) return;
    this.tombs.delete(key);
    this.mix(key, old.stamp, true);
  }

  /** The newest version known for `key`: a live entry's stamp or a tombstone's. */
  known(key: string): Stamp | undefined {
    return this.ns.stampOf(key) ?? this.tombs.get(key)?.stamp;
  }
}

/** Options of a {@link CacheReplicator}. */
export interface CacheReplicatorOptions {
  nodeId: string;
  config: ReplicationConfig;
  /** Physical time in ms (the HLC's source, TTLs, tombstone expiry). */
  now: () => number;
  /** Random source in [0, 1): picks the anti-entropy partner. */
  random: () => number;
  /** Receives every outbound message, synchronously. */
  send: (out: Outbound) => void;
}

/**
 * Replication of the `replicated` namespaces between nodes, as a sans-I/O state machine: local
 * writes and invalidations go out as messages (`send`), messages from peers come in through
 * `receive`, and `tick` runs tombstone expiry and anti-entropy. No timers or sockets here.
 *
 * - Every write and tombstone carries a hybrid-logical-clock stamp; per key the greatest stamp
 *   wins (last writer wins), whatever order messages arrive in. Values, tombstones and their
 *   stamps therefore converge once every node has seen the same messages.
 * - A delete or invalidation leaves a tombstone (bounded by `max_tombstones`, kept until
 *   `stamp.wall + tombstone_ttl_ms`), so a write stamped before it is refused when it arrives
 *   late. An invalidation also refuses later-arriving writes that depend on an invalidated key
 *   or match an invalidated pattern with an older stamp; what a receiver removes that way
 *   beyond the message's own keys it sends on as a tombstone of its own.
 * - Catch-up: `memberJoined` and each anti-entropy tick send a `sync_req` with the digest; the
 *   peer answers with its entries and tombstones in the buckets that differ, paginated.
 */
export class CacheReplicator {
  readonly clock: HybridClock;
  readonly stats: ReplicationStats = { sent: 0, received: 0, rejected: 0, applied: 0, stale: 0, tombstones_dropped: 0 };
  private readonly config: ReplicationConfig;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly send: (out: Outbound) => void;
  private readonly replicas = new Map<string, NamespaceReplica>();
  private readonly memberSet = new Set<string>();
  /** Per namespace, nodes of other clusters that hold it (federation), bounded by MAX_REMOTE_PEERS. */
  private readonly remote = new Map<string, Set<string>>();

  constructor(opts: CacheReplicatorOptions) {
    this.config = opts.config;
    this.now = opts.now;
    this.random = opts.random;
    this.send = opts.send;
    this.clock = new HybridClock({ node: opts.nodeId, now: opts.now, maxDriftMs: opts.config.max_drift_ms });
  }

  /** Starts replicating a namespace (its held stamps seed the digest). */
  attach(ns: CacheNamespace): void {
    this.replicas.set(ns.name, new NamespaceReplica(ns));
    for (const [, s] of ns.heldStamps()) if (this.clock.acceptable(s)) this.clock.receive(s);
  }

  /** True when the namespace is replicated. */
  has(namespace: string): boolean {
    return this.replicas.has(namespace);
  }

  /** Current members (other nodes), in no particular order. */
  members(): string[] {
    return [...this.memberSet];
  }

  private out(o: Outbound): void {
    this.stats.sent++;
    this.send(o);
  }

  private replica(namespace: string): NamespaceReplica {
    const r = this.replicas.get(namespace);
    if (r === undefined) throw MpregError.invalid(`namespace ${JSON.stringify(namespace)} is not replicated`, "namespace");
    return r;
  }

  /** Tombstones held for a namespace (for tests and stats). */
  tombstoneCount(namespace: string): number {
    return this.replica(namespace).tombs.size;
  }

  /** The namespace digest (for tests: equal digests mean equal replicated state). */
  digest(namespace: string): number[] {
    return [...this.replica(namespace).digest];
  }

  // ------------------------------------------------------------------ local operations

  /** A local write: stamps it, stores it, sends it to every member. Resolves once L2 has it. */
  put(namespace: string, key: string, value: unknown, o: { ttlMs?: number | undefined; deps: readonly string[]; cost: number }): Promise<void> {
    const r = this.replica(namespace);
    const stamp = this.clock.tick();
    const expiresAt = o.ttlMs === undefined ? Infinity : stamp.wall + o.ttlMs;
    const done = r.ns.store(key, value, { expiresAt, deps: o.deps, cost: o.cost, stamp });
    r.deleteTomb(key);
    const m: PutMessage = { type: "put", namespace, key, value, stamp };
    if (o.ttlMs !== undefined) m.ttl_ms = o.ttlMs;
    if (o.deps.length > 0) m.dependencies = [...o.deps];
    if (o.cost !== 1) m.cost = o.cost;
    this.out({ to: "all", message: m });
    return done;
  }

  /** A local delete (no cascade): a tombstone, sent to every member. */
  delete(namespace: string, key: string): { live: boolean; done: Promise<void> } {
    const r = this.replica(namespace);
    const stamp = this.clock.tick();
    const res = r.ns.remove(key);
    r.setTomb(key, { stamp, cascade: false });
    this.capTombs(r);
    this.out({ to: "all", message: { type: "tomb", namespace, keys: [key], stamp, cascade: false } });
    return res;
  }

  /**
   * A local invalidation: the keys matching `pattern` and `dependency` itself, plus everything
   * depending on them (transitively), get one tombstone stamp; sent to every member. Returns
   * how many live entries were removed here.
   */
  async invalidate(namespace: string, o: { pattern?: CompiledPattern | undefined; dependency?: string | undefined }): Promise<number> {
    const r = this.replica(namespace);
    const stamp = this.clock.tick();
    const roots: string[] = [];
    if (o.pattern !== undefined) {
      roots.push(...r.ns.matching(o.pattern));
      this.addPattern(r, o.pattern, stamp);
    }
    if (o.dependency !== undefined) roots.push(o.dependency);
    const closure = r.ns.graph.closure(roots);
    r.ns.staleFlights(closure, o.pattern);
    const keys = [...closure];
    let n = 0;
    const pending: Promise<void>[] = [];
    for (const k of keys) {
      const res = r.ns.remove(k);
      if (res.live) n++;
      pending.push(res.done);
      r.setTomb(k, { stamp, cascade: true });
    }
    this.capTombs(r);
    for (let i = 0; i < Math.max(1, keys.length); i += MAX_TOMB_KEYS) {
      const m: TombMessage = { type: "tomb", namespace, keys: keys.slice(i, i + MAX_TOMB_KEYS), stamp, cascade: true };
      if (o.pattern !== undefined && i === 0) m.pattern = o.pattern.pattern;
      this.out({ to: "all", message: m });
    }
    await Promise.all(pending);
    return n;
  }

  // ------------------------------------------------------------------ membership and time

  /** A node joined (or reconnected): it becomes a member and we ask it to catch us up. */
  memberJoined(node: string): void {
    if (node === this.clock.node) return;
    this.memberSet.add(node);
    for (const r of this.replicas.values()) this.requestSync(r, node, undefined);
  }

  /** A node left: it is no longer sent anything. */
  memberLeft(node: string): void {
    this.memberSet.delete(node);
  }

  /**
   * A node outside the membership (of another cluster, federation) holds `namespace`: it joins
   * that namespace's anti-entropy partners and we ask it to catch us up. False (and ignored)
   * when the namespace is not replicated here or already has {@link MAX_REMOTE_PEERS} of them.
   */
  remotePeerJoined(namespace: string, node: string): boolean {
    const r = this.replicas.get(namespace);
    if (r === undefined || node === this.clock.node) return false;
    let set = this.remote.get(namespace);
    if (set === undefined) this.remote.set(namespace, (set = new Set()));
    if (set.has(node)) return true;
    if (set.size >= MAX_REMOTE_PEERS) return false;
    set.add(node);
    this.requestSync(r, node, undefined);
    return true;
  }

  /** A remote holder of `namespace` went (or stopped holding it). */
  remotePeerLeft(namespace: string, node: string): void {
    this.remote.get(namespace)?.delete(node);
  }

  /** The remote holders of `namespace` (nodes of other clusters); empty when none. */
  remotePeers(namespace: string): ReadonlySet<string> {
    return this.remote.get(namespace) ?? NO_PEERS;
  }

  /**
   * Expires tombstones, then (unless `anti_entropy_ms` is 0) asks one random member per
   * namespace for a digest comparison.
   */
  tick(): void {
    const now = this.now();
    const ttl = this.config.tombstone_ttl_ms;
    for (const r of this.replicas.values()) {
      for (const [k, t] of r.tombs) if (t.stamp.wall + ttl <= now) r.deleteTomb(k);
      r.patterns = r.patterns.filter((p) => p.stamp.wall + ttl > now);
    }
    if (this.config.anti_entropy_ms === 0) return;
    const members = [...this.memberSet];
    for (const r of this.replicas.values()) {
      // Remote holders are partners too, so a write lost between clusters is repaired as well.
      const remote = this.remote.get(r.ns.name);
      const pool = remote === undefined || remote.size === 0 ? members : [...members, ...remote];
      if (pool.length === 0) continue;
      const peer = pool[Math.floor(this.random() * pool.length)] as string;
      this.requestSync(r, peer, undefined);
    }
  }

  private requestSync(r: NamespaceReplica, node: string, after: string | undefined): void {
    const m: SyncRequestMessage = { type: "sync_req", namespace: r.ns.name, digest: [...r.digest] };
    if (after !== undefined) m.after = after;
    this.out({ to: "node", node, message: m });
  }

  // ------------------------------------------------------------------ inbound

  /**
   * Consumes a message from `from`. A malformed message throws MpregError 1002 (naming the
   * field) and changes nothing; one for a namespace that is not replicated here, or stamped
   * too far ahead of this node's clock, is counted in `rejected` and ignored.
   */
  receive(from: string, raw: unknown): void {
    this.stats.received++;
    let m: ReplicationMessage;
    try {
      m = validateReplicationMessage(raw);
    } catch (e) {
      this.stats.rejected++;
      throw e;
    }
    const r = this.replicas.get(m.namespace);
    if (r === undefined) {
      this.stats.rejected++;
      logger.debug(`cache: replication message for ${m.namespace}, not replicated here`);
      return;
    }
    switch (m.type) {
      case "put":
        if (!this.accept(m.stamp)) return;
        this.applyPut(r, m.key, m.value, m.stamp, m.ttl_ms, m.dependencies ?? [], m.cost ?? 1);
        return;
      case "tomb":
        if (!this.accept(m.stamp)) return;
        this.applyTombMessage(r, m);
        return;
      case "sync_req":
        this.answerSync(r, from, m);
        return;
      case "sync_resp":
        this.applySync(r, from, m);
        return;
    }
  }

  private accept(stamp: Stamp): boolean {
    if (!this.clock.acceptable(stamp)) {
      this.stats.rejected++;
      return false;
    }
    this.clock.receive(stamp);
    return true;
  }

  private addPattern(r: NamespaceReplica, pattern: CompiledPattern, stamp: Stamp): void {
    const same = r.patterns.find((p) => p.pattern.pattern === pattern.pattern);
    if (same !== undefined) {
      if (compareStamps(stamp, same.stamp) > 0) same.stamp = stamp;
      return;
    }
    r.patterns.push({ pattern, stamp });
    if (r.patterns.length > this.config.max_pattern_tombstones) {
      // Drop the oldest-stamped: it is the one whose protection window ends first.
      let oldest = 0;
      r.patterns.forEach((p, i) => {
        if (compareStamps(p.stamp, (r.patterns[oldest] as PatternTomb).stamp) < 0) oldest = i;
      });
      r.patterns.splice(oldest, 1);
    }
  }

  private capTombs(r: NamespaceReplica): void {
    while (r.tombs.size > this.config.max_tombstones) {
      const k = r.tombs.keys().next().value as string;
      r.deleteTomb(k);
      this.stats.tombstones_dropped++;
    }
  }

  /** The stamp of a newer invalidation that a write stamped `stamp` must lose to, if any. */
  private killer(r: NamespaceReplica, key: string, stamp: Stamp, deps: readonly string[]): Stamp | undefined {
    let best: Stamp | undefined;
    const consider = (s: Stamp) => {
      if (compareStamps(s, stamp) > 0 && (best === undefined || compareStamps(s, best) > 0)) best = s;
    };
    if (r.patterns.length > 0) {
      const segs = segmentsOf(key);
      if (segs !== undefined) for (const p of r.patterns) if (p.pattern.testSegments(segs)) consider(p.stamp);
    }
    for (const d of deps) {
      const t = r.tombs.get(d);
      if (t !== undefined && t.cascade) consider(t.stamp);
    }
    return best;
  }

  private applyPut(
    r: NamespaceReplica,
    key: string,
    value: unknown,
    stamp: Stamp,
    ttlMs: number | undefined,
    deps: readonly string[],
    cost: number,
  ): void {
    const expiresAt = ttlMs === undefined ? Infinity : stamp.wall + ttlMs;
    const known = r.known(key);
    if (expiresAt <= this.now() || (known !== undefined && compareStamps(stamp, known) <= 0)) {
      this.stats.stale++;
      return;
    }
    const k = this.killer(r, key, stamp, deps);
    if (k !== undefined) {
      // Written before an invalidation that covers it: it arrives dead. Peers that took it
      // before the invalidation reached them learn the tombstone from us.
      const derived = new Set<string>([key]);
      this.applyTomb(r, key, k, true, derived);
      this.sendTombs(r, [...derived], k);
      return;
    }
    try {
      r.ns.store(key, value, { expiresAt, deps, cost, stamp }).catch(logL2);
    } catch (e) {
      // Too large for this node's limits, say: the write is not kept here.
      this.stats.rejected++;
      logger.warn(`cache: replicated write of ${JSON.stringify(key)} refused: ${(e as Error).message}`);
      return;
    }
    r.deleteTomb(key);
    this.stats.applied++;
  }

  /** Applies one tombstone (and, with `cascade`, to dependents stamped before it); adds removed dependents to `derived`. */
  private applyTomb(r: NamespaceReplica, key: string, stamp: Stamp, cascade: boolean, derived: Set<string>): void {
    if (stamp.wall + this.config.tombstone_ttl_ms <= this.now()) {
      this.stats.stale++;
      return;
    }
    const stack: string[] = [key];
    while (stack.length > 0) {
      const k = stack.pop() as string;
      const known = r.known(k);
      if (known !== undefined && compareStamps(stamp, known) <= 0) {
        if (k === key) this.stats.stale++;
        continue;
      }
      const dependents = cascade ? [...r.ns.graph.dependentsOf(k)] : [];
      r.ns.remove(k).done.catch(logL2);
      if (cascade) r.ns.staleFlights(new Set([k]), undefined);
      r.setTomb(k, { stamp, cascade });
      this.stats.applied++;
      for (const d of dependents) {
        const ds = r.ns.stampOf(d);
        if (ds !== undefined && compareStamps(ds, stamp) < 0) {
          derived.add(d);
          stack.push(d);
        }
      }
    }
    this.capTombs(r);
  }

  private applyTombMessage(r: NamespaceReplica, m: TombMessage): void {
    const derived = new Set<string>();
    if (m.pattern !== undefined) {
      const p = compilePattern(m.pattern, "pattern");
      this.addPattern(r, p, m.stamp);
      for (const k of r.ns.matching(p)) {
        const s = r.ns.stampOf(k);
        if (s !== undefined && compareStamps(s, m.stamp) < 0) {
          derived.add(k);
          this.applyTomb(r, k, m.stamp, true, derived);
        }
      }
    }
    for (const k of m.keys) this.applyTomb(r, k, m.stamp, m.cascade, derived);
    for (const k of m.keys) derived.delete(k);
    if (derived.size > 0) this.sendTombs(r, [...derived], m.stamp);
  }

  private sendTombs(r: NamespaceReplica, keys: string[], stamp: Stamp): void {
    for (let i = 0; i < keys.length; i += MAX_TOMB_KEYS) {
      this.out({ to: "all", message: { type: "tomb", namespace: r.ns.name, keys: keys.slice(i, i + MAX_TOMB_KEYS), stamp, cascade: true } });
    }
  }

  private answerSync(r: NamespaceReplica, from: string, m: SyncRequestMessage): void {
    const differs = new Set<number>();
    for (let b = 0; b < DIGEST_BUCKETS; b++) {
      if (r.digest[2 * b] !== m.digest[2 * b] || r.digest[2 * b + 1] !== m.digest[2 * b + 1]) differs.add(b);
    }
    if (differs.size === 0) return;
    const after = m.after;
    const keys: string[] = [];
    const pick = (k: string) => {
      if ((after === undefined || k > after) && differs.has(bucketOf(k))) keys.push(k);
    };
    for (const [k] of r.ns.heldStamps()) pick(k);
    for (const k of r.tombs.keys()) pick(k);
    keys.sort();
    const batch = this.config.sync_batch;
    const entries: SyncEntry[] = [];
    const now = this.now();
    let i = 0;
    for (; i < keys.length && entries.length < batch; i++) {
      const k = keys[i] as string;
      const t = r.tombs.get(k);
      if (t !== undefined) {
        entries.push({ key: k, stamp: t.stamp, tomb: true, cascade: t.cascade });
        continue;
      }
      const e = r.ns.replicaEntry(k);
      if (e === undefined || e.expiresAt <= now) continue; // only in L2, or expired: not sent
      const se: SyncEntry = { key: k, stamp: e.stamp, value: e.value };
      if (e.expiresAt !== Infinity) se.ttl_ms = Math.max(1, e.expiresAt - e.stamp.wall);
      if (e.deps.length > 0) se.dependencies = [...e.deps];
      if (e.cost !== 1) se.cost = e.cost;
      entries.push(se);
    }
    const resp: SyncResponseMessage = {
      type: "sync_resp",
      namespace: r.ns.name,
      entries,
      patterns: r.patterns.map((p) => ({ pattern: p.pattern.pattern, stamp: p.stamp })),
    };
    if (i < keys.length) resp.next = keys[i - 1] as string;
    this.out({ to: "node", node: from, message: resp });
  }

  private applySync(r: NamespaceReplica, from: string, m: SyncResponseMessage): void {
    for (const p of m.patterns) {
      if (this.accept(p.stamp)) this.addPattern(r, compilePattern(p.pattern, "pattern"), p.stamp);
    }
    const derived = new Set<string>();
    for (const e of m.entries) {
      if (!this.accept(e.stamp)) continue;
      if (e.tomb === true) this.applyTomb(r, e.key, e.stamp, e.cascade === true, derived);
      else this.applyPut(r, e.key, e.value, e.stamp, e.ttl_ms, e.dependencies ?? [], e.cost ?? 1);
    }
    for (const e of m.entries) derived.delete(e.key);
    // Derived tombstones may carry different stamps (one per entry that caused them).
    const byStamp = new Map<string, { stamp: Stamp; keys: string[] }>();
    for (const k of derived) {
      const t = r.tombs.get(k);
      if (t === undefined) continue;
      const id = stampText(t.stamp);
      let g = byStamp.get(id);
      if (g === undefined) byStamp.set(id, (g = { stamp: t.stamp, keys: [] }));
      g.keys.push(k);
    }
    for (const g of byStamp.values()) this.sendTombs(r, g.keys, g.stamp);
    if (m.next !== undefined) this.requestSync(r, from, m.next);
  }
}

function logL2(e: unknown): void {
  logger.warn(`cache L2 write failed: ${e instanceof Error ? e.message : String(e)}`);
}
