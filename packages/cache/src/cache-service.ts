import { MpregError, createLogger } from "@mpreg/envelope";
import type { StorageBackend } from "@mpreg/persistence";
import { compilePattern } from "@mpreg/router";
import { DEFAULT_NAMESPACE, parseCacheConfig, type CacheConfig } from "./cache-config.js";
import { CacheNamespace, type NamespaceStats, type ReadResult } from "./cache-namespace.js";
import { CacheReplicator, type Outbound, type ReplicationStats } from "./cache-replicator.js";
import { checkDependencies } from "./dependency-graph.js";
import { L2Store } from "./l2-store.js";
import { checkKey } from "./memory-cache.js";

const logger = createLogger("cache");

/** Options of {@link CacheService.open}. */
export interface CacheServiceOptions {
  /** This node's id (the tie-breaker of its HLC stamps). */
  nodeId: string;
  /** The cache configuration, validated by `parseCacheConfig` (1002 naming the option). */
  config?: unknown;
  /** Storage for namespaces with `l2: true` (their KV store is `cache.<namespace>`). */
  backend?: StorageBackend;
  /** Physical clock in ms. Default `Date.now`. */
  now?: () => number;
  /** Random source in [0, 1). Default `Math.random`. */
  random?: () => number;
  /**
   * Run `tick()` on a timer every `replication.anti_entropy_ms` (5 s when that is 0). Default
   * true; pass false when the caller ticks (a simulation does).
   */
  timers?: boolean;
}

/** Where a call goes. */
export interface NamespaceOption {
  namespace?: string | undefined;
}

/** Options of a write. */
export interface PutOptions extends NamespaceOption {
  /** Time-to-live in ms (positive integer); default the namespace's `ttl_ms`. */
  ttl_ms?: number | undefined;
  /** Keys this value was derived from: invalidating one of them invalidates this entry. */
  dependencies?: readonly string[] | undefined;
  /** Cost of recomputing the value (the `cost` policy weighs it); positive, default 1. */
  cost?: number | undefined;
}

/** Options of an invalidation. Neither `pattern` nor `dependency`: every entry of the namespace. */
export interface InvalidateOptions extends NamespaceOption {
  /** A topic pattern (`*` one segment, `#` zero or more) over dot-separated keys. */
  pattern?: string | undefined;
  /** A key: it and everything depending on it, transitively, are invalidated. */
  dependency?: string | undefined;
}

function checkTtl(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) throw MpregError.invalid("ttl_ms must be a positive integer", "ttl_ms");
  return v;
}

function checkCost(v: unknown): number {
  if (v === undefined) return 1;
  if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) throw MpregError.invalid("cost must be a positive number", "cost");
  return v;
}

/**
 * The cache a node owns (or any Node service embeds): the configured namespaces, each with its
 * L1 tier, optional L2 tier and dependency graph, plus replication of the `replicated` ones.
 *
 * Replication hooks, for the node's fabric: `onOutbound(handler)` receives each message to
 * send (`{to: "all", message}` or `{to: "node", node, message}`); `receive(fromNode, message)`
 * consumes one from a peer; `memberJoined(nodeId)` / `memberLeft(nodeId)` report membership
 * (a join starts a catch-up exchange). Messages are plain objects (MessagePack- and
 * JSON-safe, apart from the cached values themselves) described in docs/cache.md.
 */
export class CacheService {
  readonly nodeId: string;
  readonly config: CacheConfig;
  private readonly namespaces = new Map<string, CacheNamespace>();
  private readonly replicator: CacheReplicator;
  private readonly handlers = new Set<(out: Outbound) => void>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  private constructor(opts: CacheServiceOptions, config: CacheConfig) {
    this.nodeId = opts.nodeId;
    this.config = config;
    this.replicator = new CacheReplicator({
      nodeId: opts.nodeId,
      config: config.replication,
      now: opts.now ?? Date.now,
      random: opts.random ?? Math.random,
      send: (out) => this.emit(out),
    });
  }

  /** Validates the configuration, opens every namespace (loading L2 indexes) and starts the timer. */
  static async open(opts: CacheServiceOptions): Promise<CacheService> {
    if (typeof opts.nodeId !== "string" || opts.nodeId.length === 0) throw MpregError.invalid("nodeId must be a non-empty string", "nodeId");
    const config = parseCacheConfig(opts.config);
    const now = opts.now ?? Date.now;
    const random = opts.random ?? Math.random;
    const svc = new CacheService(opts, config);
    for (const [name, nc] of Object.entries(config.namespaces)) {
      if (nc.l2 && opts.backend === undefined) {
        throw MpregError.invalid(`namespace ${name} has l2: true but the cache was opened without a backend`, `namespaces.${name}.l2`);
      }
      const l2 = nc.l2 && opts.backend !== undefined ? new L2Store(opts.backend.kv(`cache.${name}`)) : undefined;
      const ns = new CacheNamespace(name, nc, now, random, l2);
      await ns.load();
      svc.namespaces.set(name, ns);
      if (nc.scope === "replicated") svc.replicator.attach(ns);
    }
    if (opts.timers !== false) {
      const every = config.replication.anti_entropy_ms || 5_000;
      svc.timer = setInterval(() => void svc.tick().catch((e) => logger.warn(`cache tick failed: ${(e as Error).message}`)), every);
      svc.timer.unref?.();
    }
    return svc;
  }

  private emit(out: Outbound): void {
    for (const h of this.handlers) {
      try {
        h(out);
      } catch (e) {
        logger.warn(`cache outbound handler threw: ${(e as Error).message}`);
      }
    }
  }

  /** The namespace a call names (default `default`); 1002 naming `namespace` when unknown. */
  namespace(name: unknown = DEFAULT_NAMESPACE): CacheNamespace {
    if (name === undefined) name = DEFAULT_NAMESPACE;
    if (typeof name !== "string") throw MpregError.invalid("namespace must be a string", "namespace");
    const ns = this.namespaces.get(name);
    if (ns === undefined) throw MpregError.invalid(`unknown cache namespace ${JSON.stringify(name)}`, "namespace");
    return ns;
  }

  /** Names of the configured namespaces. */
  namespaceNames(): string[] {
    return [...this.namespaces.keys()];
  }

  private open(): void {
    if (this.closed) throw MpregError.overloaded("cache is closed");
  }

  /** Reads a key: `{hit: true, value}` or `{hit: false}`. */
  async get(key: string, o: NamespaceOption = {}): Promise<ReadResult> {
    this.open();
    checkKey(key);
    return this.namespace(o.namespace).get(key);
  }

  /**
   * Writes a value (L1 at once; resolves once L2 has it, for `l2` namespaces; a replicated
   * namespace also sends it to every member). 1002 naming the field for bad options or a value
   * larger than the namespace's `max_bytes`.
   */
  async put(key: string, value: unknown, o: PutOptions = {}): Promise<void> {
    this.open();
    checkKey(key);
    const ns = this.namespace(o.namespace);
    const ttl = checkTtl(o.ttl_ms) ?? ns.config.ttl_ms;
    const deps = checkDependencies(o.dependencies);
    const cost = checkCost(o.cost);
    if (value === undefined) throw MpregError.invalid("value is missing", "value");
    if (this.replicator.has(ns.name)) return this.replicator.put(ns.name, key, value, { ttlMs: ttl, deps, cost });
    const expiresAt = ttl === undefined ? Infinity : ns.nowMs() + ttl;
    return ns.store(key, value, { expiresAt, deps, cost });
  }

  /** Removes one key (its dependents stay); true when a live entry was removed. */
  async delete(key: string, o: NamespaceOption = {}): Promise<boolean> {
    this.open();
    checkKey(key);
    const ns = this.namespace(o.namespace);
    const r = this.replicator.has(ns.name) ? this.replicator.delete(ns.name, key) : ns.remove(key);
    await r.done;
    return r.live;
  }

  /**
   * Invalidates the keys matching `pattern` and the key `dependency`, and everything that
   * depends on them, transitively (cycles are safe). With neither, every entry of the
   * namespace. Returns how many live entries were removed on this node.
   */
  async invalidate(o: InvalidateOptions = {}): Promise<number> {
    this.open();
    const ns = this.namespace(o.namespace);
    if (o.dependency !== undefined) checkKey(o.dependency, "dependency");
    let pattern = o.pattern === undefined ? undefined : compilePattern(o.pattern, "pattern");
    const all = pattern === undefined && o.dependency === undefined;
    if (all) pattern = compilePattern("#", "pattern");
    if (this.replicator.has(ns.name)) return this.replicator.invalidate(ns.name, { pattern, dependency: o.dependency });
    const roots: string[] = all ? [...ns.heldKeys()] : pattern === undefined ? [] : ns.matching(pattern);
    if (o.dependency !== undefined) roots.push(o.dependency);
    const keys = ns.graph.closure(roots);
    ns.staleFlights(keys, pattern);
    return ns.removeAll(keys);
  }

  /**
   * The cached value, or the loader's result (then cached with `o`). Concurrent misses for one
   * key run the loader once and share its result; a loader's error reaches every waiter and
   * nothing is cached. A result whose key was written or invalidated while loading is
   * returned but not cached.
   */
  async getOrCompute<T>(key: string, loader: () => Promise<T> | T, o: PutOptions = {}): Promise<T> {
    const r = await this.get(key, o);
    if (r.hit) return r.value as T;
    const ns = this.namespace(o.namespace);
    const deps = checkDependencies(o.dependencies);
    return ns.flights.run(key, deps, async () => loader(), (v) => this.put(key, v, o));
  }

  /** Statistics of one namespace. */
  stats(o: NamespaceOption = {}): NamespaceStats {
    return this.namespace(o.namespace).stats();
  }

  /** Counters of replication. */
  replicationStats(): ReplicationStats {
    return { ...this.replicator.stats };
  }

  /** The replication core (tests and diagnostics: digests, tombstones, the HLC). */
  get replication(): CacheReplicator {
    return this.replicator;
  }

  // ------------------------------------------------------------------ replication hooks

  /** Registers a handler for outbound replication messages; returns its removal. */
  onOutbound(handler: (out: Outbound) => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /**
   * Consumes a replication message from a peer. Throws MpregError 1002 for a malformed one
   * (nothing changes); ignores (and counts) one for a namespace not replicated here.
   */
  receive(fromNode: string, message: unknown): void {
    if (this.closed) return;
    this.replicator.receive(fromNode, message);
  }

  /** A peer joined or reconnected: catch-up starts with it. */
  memberJoined(nodeId: string): void {
    if (!this.closed) this.replicator.memberJoined(nodeId);
  }

  /** A peer left. */
  memberLeft(nodeId: string): void {
    this.replicator.memberLeft(nodeId);
  }

  /** Maintenance: drops expired entries, expires tombstones, runs one anti-entropy round. */
  async tick(): Promise<void> {
    if (this.closed) return;
    this.replicator.tick();
    for (const ns of this.namespaces.values()) await ns.sweep();
  }

  /** Stops the timer and waits until L2 has every write. Later calls fail with 1007. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.handlers.clear();
    for (const ns of this.namespaces.values()) await ns.idle();
  }
}
