import { ErrorCode, MpregError, isMpregError } from "@mpreg/envelope";
import type { KvClient, KvItem } from "./kv-client.js";
import { KvLease } from "./kv-lease.js";
import { kvPrefixEnd } from "./kv-prefix.js";

/** Default `ttl_ms` of the lease under a lock or a campaign. */
export const DEFAULT_CAMPAIGN_TTL_MS = 10_000;

/** Options of `kv.lock` and `kv.elect`. */
export interface CampaignOptions {
  /**
   * TTL of the lease the key lives under, kept alive by the client. If this client dies, the
   * lock (or leadership) passes on after at most this long. Default 10 000.
   */
  ttl_ms?: number;
  /** Key prefix of all locks (`mpreg/lock/`) or elections (`mpreg/election/`). */
  prefix?: string;
  /** Stops waiting: the promise rejects with the signal's reason and the key is removed. */
  signal?: AbortSignal;
}

/** The current leader of an election. */
export interface KvLeader {
  key: string;
  value: unknown;
  /** Revision at which it campaigned (its position in the line). */
  revision: number;
}

/**
 * The etcd recipe for locks and elections. Each contender puts one key `<dir><lease id>` under
 * its own lease, in a txn that only writes when the key does not exist yet (`version == 0`), so
 * a retried attempt finds its own key instead of queueing twice. The key's `mod_revision` is
 * its place in line (keys under `dir` are written once, never updated). The holder is the key
 * with the lowest revision; every other contender watches only the key just before its own
 * and checks again when that one is deleted (no thundering herd). A contender whose lease is
 * lost drops out; a holder that dies frees the line when its lease expires.
 */
export async function campaign(
  kv: KvClient,
  dir: string,
  value: unknown,
  options: CampaignOptions,
): Promise<{ key: string; revision: number; lease: KvLease }> {
  const lease = await kv.lease(options.ttl_ms ?? DEFAULT_CAMPAIGN_TTL_MS);
  const key = `${dir}${lease.id}`;
  const stop = anySignal(options.signal, lease.signal);
  try {
    const t = await kv.txn({
      compare: [{ key, target: "version", op: "==", value: 0 }],
      success: [{ put: [key, value, { lease: lease.id }] }],
      failure: [{ get: key }],
    }, { idempotent: true });
    const revision = t.succeeded ? t.revision : (t.results[0] as { mod_revision?: unknown } | undefined)?.mod_revision;
    if (typeof revision !== "number") throw MpregError.invalid("mpreg.kv.txn answered without the key's revision", "revision");
    for (;;) {
      throwIfAborted(stop.signal);
      const { items, revision: seen } = await rangeAll(kv, dir);
      if (!items.some((i) => i.key === key)) {
        throw new MpregError(ErrorCode.NOT_FOUND, `campaign key ${key} is gone (lease lost)`, { reason: "key lost", key });
      }
      let before: KvItem | undefined;
      for (const i of items) if (i.mod_revision < revision && (before === undefined || i.mod_revision > before.mod_revision)) before = i;
      if (before === undefined) return { key, revision, lease };
      await waitForDelete(kv, before.key, seen + 1, stop.signal);
    }
  } catch (e) {
    // Out of line: take the key away (revoking the lease deletes it) so nobody waits on it.
    await lease.revoke().catch(() => {});
    throw isMpregError(e) ? e : stop.signal.aborted ? abortError(stop.signal) : e;
  } finally {
    stop.dispose();
  }
}

/** The key with the lowest revision under `dir`: the holder of a lock, the leader of an election. */
export async function firstInLine(kv: KvClient, dir: string): Promise<KvLeader | undefined> {
  const { items } = await rangeAll(kv, dir);
  let first: KvItem | undefined;
  for (const i of items) if (first === undefined || i.mod_revision < first.mod_revision) first = i;
  return first === undefined ? undefined : { key: first.key, value: first.value, revision: first.mod_revision };
}

/** Every key under `dir`, following `more` (bounded by the store itself). */
async function rangeAll(kv: KvClient, dir: string): Promise<{ items: KvItem[]; revision: number }> {
  const end = kvPrefixEnd(dir);
  const items: KvItem[] = [];
  let start = dir;
  let revision = 0;
  for (;;) {
    const r = await kv.range(start, end);
    if (revision === 0) revision = r.revision;
    items.push(...r.items);
    const last = r.items[r.items.length - 1];
    if (!r.more || last === undefined) return { items, revision };
    start = `${last.key}\u0000`;
  }
}

/** Resolves once `key` is deleted at or after `fromRevision`. */
async function waitForDelete(kv: KvClient, key: string, fromRevision: number, signal: AbortSignal): Promise<void> {
  let watch;
  try {
    watch = await kv.watch(key, { start_revision: fromRevision });
  } catch (e) {
    // Compacted past it: it changed since; the caller looks again.
    if (isMpregError(e) && e.code === ErrorCode.INVALID_REQUEST && e.details.reason === "compacted") return;
    throw e;
  }
  const onAbort = (): void => void watch.cancel();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    if (signal.aborted) return;
    // The watch is on a prefix: other keys that start with `key` are not ours.
    for await (const ev of watch) if (ev.key === key && ev.type === "delete") return;
  } finally {
    signal.removeEventListener("abort", onAbort);
    await watch.cancel();
  }
}

function anySignal(...signals: Array<AbortSignal | undefined>): { signal: AbortSignal; dispose(): void } {
  const ctl = new AbortController();
  const offs: Array<() => void> = [];
  for (const s of signals) {
    if (s === undefined) continue;
    if (s.aborted) {
      ctl.abort(s.reason);
      break;
    }
    const h = (): void => ctl.abort(s.reason);
    s.addEventListener("abort", h, { once: true });
    offs.push(() => s.removeEventListener("abort", h));
  }
  return { signal: ctl.signal, dispose: () => offs.forEach((f) => f()) };
}

/** The signal's reason as an MpregError: its own, 1004 for `AbortSignal.timeout`, else 1003 cancelled. */
function abortError(signal: AbortSignal): MpregError {
  const r: unknown = signal.reason;
  if (isMpregError(r)) return r;
  if (r instanceof Error && r.name === "TimeoutError") return new MpregError(ErrorCode.TIMEOUT, r.message, { reason: "timeout" });
  return new MpregError(ErrorCode.EXECUTION_FAILED, r instanceof Error ? r.message : "cancelled", { reason: "cancelled" });
}

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw abortError(signal);
}

/**
 * A held lock (`kv.lock`). `signal` aborts if the lock is lost (its lease could not be kept
 * alive): work guarded by it should stop. `unlock()` releases it.
 */
export class KvLock {
  /** @internal */
  constructor(
    readonly name: string,
    /** The key that holds the lock. */
    readonly key: string,
    /** Revision at which it was queued (a fencing token: higher for each later holder). */
    readonly revision: number,
    private readonly lease: KvLease,
  ) {}

  /** Aborted when the lock is lost or released. */
  get signal(): AbortSignal {
    return this.lease.signal;
  }

  /** Releases the lock (revoking its lease deletes the key; the next in line takes it). */
  unlock(): Promise<void> {
    return this.lease.revoke();
  }
}

/**
 * Leadership won in an election (`kv.elect`). `signal` aborts if it is lost; `resign()` gives
 * it up; `leader()` reads who leads now.
 */
export class KvElection {
  /** @internal */
  constructor(
    private readonly kv: KvClient,
    readonly name: string,
    private readonly dir: string,
    /** This candidate's key. */
    readonly key: string,
    readonly value: unknown,
    readonly revision: number,
    private readonly lease: KvLease,
  ) {}

  /** Aborted when leadership is lost or given up. */
  get signal(): AbortSignal {
    return this.lease.signal;
  }

  /** True while this candidate leads (as far as its lease is alive). */
  get isLeader(): boolean {
    return this.lease.alive;
  }

  /** The current leader, read from the store (undefined when nobody campaigns). */
  leader(): Promise<KvLeader | undefined> {
    return firstInLine(this.kv, this.dir);
  }

  /** Gives up leadership: the next candidate in line becomes leader. */
  resign(): Promise<void> {
    return this.lease.revoke();
  }
}
