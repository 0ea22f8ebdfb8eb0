import { ErrorCode, MpregError } from "@mpreg/envelope";
import {
  KvStateMachine,
  decodeValue,
  encodeKvCommand,
  encodeValue,
  type KvCommand,
  type KvCompareCommand,
  type KvError,
  type KvEvent,
  type KvGetResult,
  type KvLimits,
  type KvResult,
  type KvTxnOpCommand,
} from "./kv.js";
import { compareKeys as compareOrder } from "./key-order.js";
import { Lessor } from "./lessor.js";
import { RaftNode, type RaftNodeOptions } from "./node.js";
import { notLeader } from "./raft.js";
import { WatchHub, type WatchHubOptions } from "./watch-hub.js";

/** A value as read: `{found: false}` or the value (decoded) with its version and mod_revision. */
export type KvGetReply = { found: false } | { found: true; value: unknown; version: number; mod_revision: number };

/** One key of a range read. */
export interface KvItem {
  key: string;
  value: unknown;
  version: number;
  mod_revision: number;
}

export interface KvRangeReply {
  items: KvItem[];
  /** True when keys of the range were left out (limit or size of the answer). */
  more: boolean;
  /** The store's revision the read saw. */
  revision: number;
}

/** One comparison of a transaction (PROTOCOL section 10). */
export interface KvTxnCompare {
  key: string;
  target: "version" | "value" | "mod_revision";
  op: "==" | "!=" | "<" | ">";
  value: unknown;
}

/** One operation of a transaction. */
export type KvTxnOp = { put: [key: string, value: unknown, opts?: { lease?: number }] } | { delete: string } | { get: string };

export interface KvTxnRequest {
  compare?: KvTxnCompare[];
  success?: KvTxnOp[];
  failure?: KvTxnOp[];
}

export interface KvTxnReply {
  succeeded: boolean;
  /** One per operation of the branch taken: `{version, revision}`, `{deleted, revision}` or a get's reply. */
  results: unknown[];
  revision: number;
}

/** A change as a watch delivers it (the value decoded; only on puts). */
export interface KvWatchEvent {
  type: "put" | "delete";
  key: string;
  value?: unknown;
  mod_revision: number;
}

/** Options of {@link RaftKV.open}. */
export interface RaftKVOptions extends Omit<RaftNodeOptions, "stateMachine"> {
  /** Store limits; must be the same on every member. */
  limits?: KvLimits;
  /** Clock for lease deadlines (ms). Default `Date.now`. */
  now?: () => number;
  /** Watch limits and scheduling. */
  watch?: WatchHubOptions;
  /** Most keys one range read returns (and its default limit). Default 10,000. */
  maxRangeItems?: number;
  /** Bytes of keys and values after which a range read stops (at least one key). Default 4 MiB. */
  maxRangeBytes?: number;
}

/** The MpregError of a refused command (nothing was applied). */
export function kvError(e: KvError): MpregError {
  const details: Record<string, unknown> = { reason: e.reason };
  if (e.path !== undefined) details.path = e.path;
  return new MpregError(e.code, `raft kv: ${e.message}`, details);
}

function decodeGet(r: KvGetResult): KvGetReply {
  return r.found ? { found: true, value: decodeValue(r.value), version: r.version, mod_revision: r.mod_revision } : { found: false };
}

/** A watch event with its value decoded. */
export function decodeEvent(e: KvEvent): KvWatchEvent {
  return e.value === undefined
    ? { type: e.type, key: e.key, mod_revision: e.mod_revision }
    : { type: e.type, key: e.key, value: decodeValue(e.value), mod_revision: e.mod_revision };
}

/**
 * A replicated key-value store: a RaftNode running a KvStateMachine, with the client-facing
 * calls of PROTOCOL section 10. Writes run on the leader: on a follower they reject with
 * UNREACHABLE `{reason:"not_leader", leader}` and the caller forwards to `leader` (see
 * `RaftNode.propose` for the other errors). Reads (`get`, `range`) and watches run on any
 * member (ReadIndex through the leader). Lease keepalives run on the leader only.
 */
export class RaftKV {
  private constructor(
    readonly node: RaftNode,
    readonly state: KvStateMachine,
    readonly watches: WatchHub,
    readonly lessor: Lessor,
    private readonly maxRangeItems: number,
    private readonly maxRangeBytes: number,
  ) {}

  static async open(opts: RaftKVOptions): Promise<RaftKV> {
    const state = new KvStateMachine(opts.limits);
    const hub = new WatchHub(state, opts.watch);
    let lessor: Lessor | undefined;
    const node = await RaftNode.open({
      ...opts,
      stateMachine: state,
      onReady: (rd) => {
        hub.flush();
        opts.onReady?.(rd);
      },
      onTick: () => {
        lessor?.tick();
        opts.onTick?.();
      },
    });
    lessor = new Lessor(node, state, opts.now ?? Date.now, (id) => node.propose(encodeKvCommand({ op: "lease_expire", id })));
    const l = lessor;
    state.listener = {
      onRevision: (rev, events) => hub.onRevision(rev, events),
      onLease: (id, ttl) => l.onLease(id, ttl),
      onRestore: () => {
        hub.onRestore();
        l.onRestore();
      },
    };
    return new RaftKV(node, state, hub, lessor, opts.maxRangeItems ?? 10_000, opts.maxRangeBytes ?? 4 * 1024 * 1024);
  }

  // ---------------------------------------------------------------- reads (any member)

  /** Linearizable read on any member (ReadIndex through the leader; see `RaftNode.read`). */
  get(key: string): Promise<KvGetReply> {
    const bad = this.state.check({ op: "delete", key });
    if (bad) return Promise.reject(kvError(bad));
    return this.node.read(() => {
      const r = this.state.get(key);
      return r ? { found: true as const, value: r.value, version: r.version, mod_revision: r.mod_revision } : { found: false as const };
    }).then(decodeGet);
  }

  /**
   * Keys in `[start, end)` in UTF-8 byte order (no `end`: every key >= start), at most `limit`
   * (default and maximum `maxRangeItems`) and about `maxRangeBytes` of data; `more` says keys
   * were left out. A linearizable read on any member.
   */
  range(start: string, end?: string, opts: { limit?: number } = {}): Promise<KvRangeReply> {
    if (typeof start !== "string") return Promise.reject(MpregError.invalid("range start must be a string", "start"));
    if (end !== undefined) {
      const bad = this.state.check({ op: "delete", key: end });
      if (bad) return Promise.reject(kvError({ ...bad, path: "end" }));
      if (compareOrder(end, start) <= 0) {
        return Promise.reject(new MpregError(ErrorCode.INVALID_REQUEST, "raft kv: range end must be after start", { reason: "bad_range", path: "end" }));
      }
    }
    const limit = opts.limit ?? this.maxRangeItems;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > this.maxRangeItems) {
      return Promise.reject(MpregError.invalid(`limit must be an integer in [1, ${this.maxRangeItems}]`, "limit"));
    }
    return this.node
      .read(() => ({ ...this.state.range(start, end, limit, this.maxRangeBytes), revision: this.state.revision }))
      .then((r) => ({
        items: r.items.map(([key, rec]) => ({ key, value: decodeValue(rec.value), version: rec.version, mod_revision: rec.mod_revision })),
        more: r.more,
        revision: r.revision,
      }));
  }

  /**
   * Watches keys starting with `prefix` on this member: `sink` receives every change at or
   * after `startRevision` (default: the next revision), in revision order, each once. Resolves
   * once the watch is in place (`revision`: the store's revision then); rejects 1002
   * `{reason: "compacted", compact_revision}` when the start is no longer in the history.
   */
  watch(
    owner: string,
    prefix: string,
    startRevision: number | undefined,
    sink: { deliver(events: KvWatchEvent[], watchId: string): void; end(error: MpregError, watchId: string): void },
  ): Promise<{ watch_id: string; revision: number }> {
    if (typeof prefix !== "string") return Promise.reject(MpregError.invalid("prefix must be a string", "prefix"));
    if (startRevision !== undefined && (!Number.isSafeInteger(startRevision) || startRevision < 1)) {
      return Promise.reject(MpregError.invalid("start_revision must be a positive integer", "start_revision"));
    }
    return this.node.read(() =>
      this.watches.create(owner, prefix, startRevision, {
        deliver: (events, id) => sink.deliver(events.map(decodeEvent), id),
        end: (e, id) => sink.end(e, id),
      }),
    );
  }

  /** Ends a watch of `owner`; false when there is no such watch. */
  unwatch(watchId: string, owner?: string): boolean {
    return this.watches.cancel(watchId, owner);
  }

  /** Ends every watch of `owner` (its connection closed). */
  closeOwner(owner: string): void {
    this.watches.closeOwner(owner);
  }

  // ---------------------------------------------------------------- writes (leader)

  async put(key: string, value: unknown, opts: { lease?: number } = {}): Promise<{ version: number; revision: number }> {
    const cmd: KvCommand = { op: "put", key, value: encodeValue(value) };
    if (opts.lease !== undefined) cmd.lease = opts.lease;
    const r = await this.run(cmd, "put");
    return { version: r.version, revision: r.revision };
  }

  async delete(key: string): Promise<{ deleted: boolean; revision: number }> {
    const r = await this.run({ op: "delete", key }, "delete");
    return { deleted: r.deleted, revision: r.revision };
  }

  /** Writes `value` only if the key's version is `version` (0: only if absent). */
  async cas(key: string, version: number, value: unknown): Promise<{ ok: boolean; version: number; revision: number }> {
    const r = await this.run({ op: "cas", key, version, value: encodeValue(value) }, "cas");
    return { ok: r.ok, version: r.version, revision: r.revision };
  }

  /** Compares, then the success or failure operations, applied atomically at one revision. */
  async txn(req: KvTxnRequest): Promise<KvTxnReply> {
    const compare: KvCompareCommand[] = (req.compare ?? []).map((c) => ({
      key: c.key,
      target: c.target,
      op: c.op,
      value: c.target === "value" ? encodeValue(c.value) : (c.value as number),
    }));
    const ops = (list: KvTxnOp[] | undefined): KvTxnOpCommand[] =>
      (list ?? []).map((op): KvTxnOpCommand => {
        if ("put" in op) {
          const [key, value, o] = op.put;
          const put: { key: string; value: Uint8Array; lease?: number } = { key, value: encodeValue(value) };
          if (o?.lease !== undefined) put.lease = o.lease;
          return { put };
        }
        return "delete" in op ? { delete: op.delete } : { get: op.get };
      });
    const r = await this.run({ op: "txn", compare, success: ops(req.success), failure: ops(req.failure) }, "txn");
    return {
      succeeded: r.succeeded,
      results: r.results.map((x) => ("found" in x ? decodeGet(x) : x)),
      revision: r.revision,
    };
  }

  /** Grants a lease of `ttlMs`; its id is unique in the group. */
  async leaseGrant(ttlMs: number): Promise<{ lease_id: number; ttl_ms: number }> {
    const r = await this.run({ op: "lease_grant", ttl: ttlMs }, "lease_grant");
    return { lease_id: r.id, ttl_ms: r.ttl };
  }

  /** Revokes a lease, deleting its keys (at one revision). */
  async leaseRevoke(id: number): Promise<{ revoked: boolean }> {
    const r = await this.run({ op: "lease_revoke", id }, "lease_revoke");
    return { revoked: r.revoked };
  }

  /**
   * Restarts a lease's clock at its full TTL. Leader only (UNREACHABLE `not_leader` elsewhere):
   * the lease clocks live on the leader. Confirms leadership and the lease's existence with a
   * ReadIndex first; 1001 `{reason: "lease_not_found"}` when the lease is gone or its expiry is
   * already proposed.
   */
  async leaseKeepAlive(id: number): Promise<{ ttl_ms: number }> {
    const bad = this.state.check({ op: "lease_revoke", id });
    if (bad) throw kvError(bad);
    if (this.node.role !== "leader") throw notLeader(this.node.leaderId);
    await this.node.read(() => undefined);
    if (this.node.role !== "leader") throw notLeader(this.node.leaderId);
    const ttl = this.lessor.keepAlive(id);
    if (ttl === undefined) {
      throw new MpregError(ErrorCode.NOT_FOUND, `raft kv: lease ${id} does not exist (expired or revoked)`, { reason: "lease_not_found" });
    }
    return { ttl_ms: ttl };
  }

  /** Ends every watch and stops the node (storage stays open). */
  async stop(): Promise<void> {
    this.watches.closeAll(new MpregError(ErrorCode.UNREACHABLE, "raft kv: the store is stopping", { reason: "shutdown" }));
    await this.node.stop();
  }

  private async run<O extends Exclude<KvResult, KvError>["op"]>(cmd: KvCommand, op: O): Promise<Extract<KvResult, { op: O }>> {
    const bad = this.state.check(cmd);
    if (bad) throw kvError(bad);
    const r = (await this.node.propose(encodeKvCommand(cmd))) as KvResult;
    if (r.op === "error") throw kvError(r);
    if (r.op !== op) throw new MpregError(ErrorCode.EXECUTION_FAILED, `raft kv: unexpected result ${r.op}`, { reason: "internal" });
    return r as Extract<KvResult, { op: O }>;
  }
}
