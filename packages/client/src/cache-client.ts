import type { ClientCore } from "./client-core.js";

/** Selects a cache namespace (configured on the node; its default when absent). */
export interface CacheNamespaceOption {
  namespace?: string;
}

/** Options of `cache.put`. */
export interface CachePutOptions extends CacheNamespaceOption {
  ttl_ms?: number;
  /** Keys this entry depends on: invalidating one of them invalidates this entry too. */
  dependencies?: string[];
  /** Cost for the `cost` eviction policy. */
  cost?: number;
}

/** What `cache.invalidate` removes: a namespace, keys matching a topic pattern, or dependents of a key. */
export interface CacheInvalidateOptions extends CacheNamespaceOption {
  pattern?: string;
  dependency?: string;
}

/** Counts of `cache.stats`. */
export interface CacheStats {
  hits: number;
  misses: number;
  evictions: number;
  entries: number;
  bytes: number;
  [field: string]: unknown;
}

/**
 * The cache built-ins (`mpreg.cache.*`, PROTOCOL section 6), as `client.cache`. Reads (`get`,
 * `stats`) are sent as idempotent requests (retried once across a failover); writes are not.
 */
export class CacheClient {
  /** Use `client.cache`. */
  constructor(private readonly core: ClientCore) {}

  /** `{hit: false}` or `{hit: true, value}`. */
  get(key: string, options: CacheNamespaceOption = {}): Promise<{ hit: boolean; value?: unknown }> {
    return this.core.call("mpreg.cache.get", [key, options], { idempotent: true }) as Promise<{ hit: boolean; value?: unknown }>;
  }

  put(key: string, value: unknown, options: CachePutOptions = {}): Promise<{ ok: boolean }> {
    return this.core.call("mpreg.cache.put", [key, value, options]) as Promise<{ ok: boolean }>;
  }

  delete(key: string, options: CacheNamespaceOption = {}): Promise<{ deleted: boolean }> {
    return this.core.call("mpreg.cache.delete", [key, options]) as Promise<{ deleted: boolean }>;
  }

  /** Removes entries; a dependency invalidation cascades to the entries that depend on it. */
  invalidate(options: CacheInvalidateOptions = {}): Promise<{ invalidated: number }> {
    return this.core.call("mpreg.cache.invalidate", [options]) as Promise<{ invalidated: number }>;
  }

  stats(options: CacheNamespaceOption = {}): Promise<CacheStats> {
    return this.core.call("mpreg.cache.stats", [options], { idempotent: true }) as Promise<CacheStats>;
  }
}
