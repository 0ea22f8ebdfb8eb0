import { MpregError } from "@mpreg/envelope";
import type { ClientCore } from "./client-core.js";
import { KvElection, KvLock, campaign, firstInLine, type CampaignOptions, type KvLeader } from "./kv-campaign.js";
import { KvLease, type KvLeaseId } from "./kv-lease.js";
import { kvPrefixEnd } from "./kv-prefix.js";
import { KvWatch, type KvWatchOptions } from "./kv-watch.js";

/** Default key prefix of `kv.lock`. */
export const DEFAULT_LOCK_PREFIX = "mpreg/lock/";
/** Default key prefix of `kv.elect`. */
export const DEFAULT_ELECTION_PREFIX = "mpreg/election/";

/** Result of `kv.get`. */
export type KvGetResult = { found: false } | { found: true; value: unknown; version: number; mod_revision: number };

/** One key of `kv.range`. */
export interface KvItem {
  key: string;
  value: unknown;
  version: number;
  mod_revision: number;
}

/** Result of `kv.range`: keys in `[start, end)` in order; `more` when `limit` cut it short. */
export interface KvRangeResult {
  items: KvItem[];
  more: boolean;
  /** The store revision the range was read at. */
  revision: number;
}

/** One comparison of a txn. */
export interface KvCompare {
  key: string;
  target: "version" | "value" | "mod_revision";
  op: "==" | "!=" | "<" | ">";
  value: unknown;
}

/** One operation of a txn branch. */
export type KvTxnOp =
  | { put: [key: string, value: unknown] | [key: string, value: unknown, options: { lease?: KvLeaseId }] }
  | { delete: string }
  | { get: string };

/** A transaction: if every comparison holds, `success` runs, else `failure`; atomically. */
export interface KvTxn {
  compare: KvCompare[];
  success: KvTxnOp[];
  failure: KvTxnOp[];
}

/** Result of `kv.txn`: one result per operation of the branch that ran. */
export interface KvTxnResult {
  succeeded: boolean;
  results: unknown[];
  revision: number;
}

/**
 * The replicated key-value store (`mpreg.kv.*`, PROTOCOL section 10), as `client.kv`, plus
 * watches, leases kept alive automatically, and etcd-style locks and elections built on them.
 * Reads (`get`, `range`) are sent as idempotent requests (retried once across a failover);
 * writes are not: a write whose connection is lost before the reply fails with 1005 and may
 * or may not have been applied (use `cas`/`txn` to make a retry safe).
 */
export class KvClient {
  /** Use `client.kv`. */
  constructor(private readonly core: ClientCore) {}

  get(key: string): Promise<KvGetResult> {
    return this.core.call("mpreg.kv.get", [key], { idempotent: true }) as Promise<KvGetResult>;
  }

  put(key: string, value: unknown, options: { lease?: KvLeaseId } = {}): Promise<{ version: number; revision: number }> {
    const args = options.lease !== undefined ? [key, value, { lease: options.lease }] : [key, value];
    return this.core.call("mpreg.kv.put", args) as Promise<{ version: number; revision: number }>;
  }

  delete(key: string): Promise<{ deleted: boolean; revision: number }> {
    return this.core.call("mpreg.kv.delete", [key]) as Promise<{ deleted: boolean; revision: number }>;
  }

  /** Writes `value` only if the key's version is `version` (0: the key is absent). */
  cas(key: string, version: number, value: unknown): Promise<{ ok: boolean; version: number }> {
    return this.core.call("mpreg.kv.cas", [key, version, value]) as Promise<{ ok: boolean; version: number }>;
  }

  /** Keys in `[start, end)` in order (every key >= `start` without `end`). */
  range(start: string, end?: string, options: { limit?: number } = {}): Promise<KvRangeResult> {
    const args: unknown[] = [start];
    if (end !== undefined || options.limit !== undefined) args.push(end ?? null);
    if (options.limit !== undefined) args.push({ limit: options.limit });
    return this.core.call("mpreg.kv.range", args, { idempotent: true }) as Promise<KvRangeResult>;
  }

  /** Every key that starts with `prefix` (a `range` up to `kvPrefixEnd(prefix)`). */
  prefix(prefix: string, options: { limit?: number } = {}): Promise<KvRangeResult> {
    return this.range(prefix, kvPrefixEnd(prefix), options);
  }

  /**
   * Runs a transaction. Pass `idempotent: true` when running it twice is harmless (e.g. a put
   * guarded by `version == 0` whose failure branch reads the key): it is then sent once more on
   * the next connection if the first one is lost before the reply.
   */
  txn(txn: KvTxn, options: { idempotent?: boolean } = {}): Promise<KvTxnResult> {
    return this.core.call("mpreg.kv.txn", [txn], { idempotent: options.idempotent === true }) as Promise<KvTxnResult>;
  }

  /**
   * Watches every key that starts with `prefix`; resolves once the node made the watch.
   * Iterate it with `for await`; see {@link KvWatch} for failover and bounds.
   */
  async watch(prefix: string, options: KvWatchOptions = {}): Promise<KvWatch> {
    const w = new KvWatch(this.core, prefix, options);
    await w.start();
    return w;
  }

  /** Grants a lease (no keepalive: see `lease` for one kept alive). */
  grant(ttl_ms: number): Promise<{ lease_id: KvLeaseId; ttl_ms: number }> {
    return this.core.call("mpreg.kv.lease.grant", [{ ttl_ms }]) as Promise<{ lease_id: KvLeaseId; ttl_ms: number }>;
  }

  /** Renews a lease for its ttl; 1001 when it expired or was revoked. */
  keepalive(lease_id: KvLeaseId): Promise<{ ttl_ms: number }> {
    return this.core.call("mpreg.kv.lease.keepalive", [lease_id], { idempotent: true }) as Promise<{ ttl_ms: number }>;
  }

  /** Ends a lease now; its keys are deleted. */
  revoke(lease_id: KvLeaseId): Promise<{ revoked: boolean }> {
    return this.core.call("mpreg.kv.lease.revoke", [lease_id], { idempotent: true }) as Promise<{ revoked: boolean }>;
  }

  /** Grants a lease that the client keeps alive until `revoke()`, its loss, or `close()`. */
  lease(ttl_ms: number): Promise<KvLease> {
    return KvLease.grant(this.core, ttl_ms);
  }

  /**
   * Waits for the lock `name` and resolves once this client holds it (etcd's recipe: see
   * `campaign`). Rejects with the signal's reason when `options.signal` aborts first.
   */
  async lock(name: string, options: CampaignOptions = {}): Promise<KvLock> {
    const dir = campaignDir(options.prefix ?? DEFAULT_LOCK_PREFIX, name);
    const { key, revision, lease } = await campaign(this, dir, "", options);
    return new KvLock(name, key, revision, lease);
  }

  /** Campaigns in the election `name` with `value`; resolves once this candidate leads. */
  async elect(name: string, value: unknown, options: CampaignOptions = {}): Promise<KvElection> {
    const dir = campaignDir(options.prefix ?? DEFAULT_ELECTION_PREFIX, name);
    const { key, revision, lease } = await campaign(this, dir, value, options);
    return new KvElection(this, name, dir, key, value, revision, lease);
  }

  /** The current leader of the election `name`, without campaigning. */
  async leader(name: string, options: { prefix?: string } = {}): Promise<KvLeader | undefined> {
    return firstInLine(this, campaignDir(options.prefix ?? DEFAULT_ELECTION_PREFIX, name));
  }
}

function campaignDir(prefix: string, name: string): string {
  if (typeof name !== "string" || name.length === 0) throw MpregError.invalid("a lock or election name must be a non-empty string", "name");
  if (typeof prefix !== "string") throw MpregError.invalid("prefix must be a string", "prefix");
  return `${prefix}${name}/`;
}
