import { MpregError, type BuiltinContext, type ServiceBuiltin } from "@mpreg/envelope";
import { onLeader, onMember } from "./leader.js";
import type { KvTxnCompare, KvTxnOp, KvTxnRequest, RaftKV } from "./raft-kv.js";
import type { NodeId } from "./types.js";

/** Options of {@link kvBuiltins}. */
export interface KvBuiltinsOptions {
  kv: RaftKV;
  /** The group's name (shown in descriptions and status). */
  group: string;
  /**
   * Carries a call to the leader when this member is a follower (the node's remote dispatch);
   * the leader runs the same built-in. Its errors are passed on to the caller.
   */
  forwardToLeader: (leader: NodeId, fun: string, args: readonly unknown[], ctx: BuiltinContext) => Promise<unknown>;
  /** How long a call waits for an election to produce a leader before failing with 1005. Default 10 s. */
  leaderWaitMs?: number;
}

const TARGETS = new Set(["version", "value", "mod_revision"]);
const OPS = new Set(["==", "!=", "<", ">"]);

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function str(v: unknown, path: string, what: string): string {
  if (typeof v !== "string") throw MpregError.invalid(`${what} must be a string`, path);
  return v;
}

function int(v: unknown, path: string, what: string, min: number): number {
  if (!Number.isSafeInteger(v) || (v as number) < min) throw MpregError.invalid(`${what} must be an integer >= ${min}`, path);
  return v as number;
}

function opts(v: unknown, path: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (!isObj(v)) throw MpregError.invalid("options must be an object", path);
  return v;
}

function leaseOpt(o: Record<string, unknown>, path: string): { lease?: number } {
  return o.lease === undefined || o.lease === null ? {} : { lease: int(o.lease, `${path}.lease`, "lease", 1) };
}

/** Reads a transaction request (PROTOCOL section 10) from the wire, naming the bad field. */
export function parseTxn(v: unknown, path = "args.0"): KvTxnRequest {
  if (!isObj(v)) throw MpregError.invalid("txn takes {compare, success, failure}", path);
  const list = (x: unknown, p: string): unknown[] => {
    if (x === undefined || x === null) return [];
    if (!Array.isArray(x)) throw MpregError.invalid("must be a list", p);
    return x;
  };
  const compare = list(v.compare, `${path}.compare`).map((c, i): KvTxnCompare => {
    const p = `${path}.compare.${i}`;
    if (!isObj(c)) throw MpregError.invalid("a compare is {key, target, op, value}", p);
    if (!TARGETS.has(c.target as string)) throw MpregError.invalid('target must be "version", "value" or "mod_revision"', `${p}.target`);
    if (!OPS.has(c.op as string)) throw MpregError.invalid('op must be "==", "!=", "<" or ">"', `${p}.op`);
    const target = c.target as KvTxnCompare["target"];
    const value = target === "value" ? c.value : int(c.value, `${p}.value`, target, 0);
    return { key: str(c.key, `${p}.key`, "key"), target, op: c.op as KvTxnCompare["op"], value };
  });
  const ops = (x: unknown, p: string) =>
    list(x, p).map((op, i): KvTxnOp => {
      const q = `${p}.${i}`;
      if (!isObj(op)) throw MpregError.invalid("an operation is {put: [key, value, opts?]}, {delete: key} or {get: key}", q);
      const kinds = ["put", "delete", "get"].filter((k) => op[k] !== undefined);
      if (kinds.length !== 1) throw MpregError.invalid("an operation has exactly one of put, delete, get", q);
      if (op.put !== undefined) {
        if (!Array.isArray(op.put) || op.put.length < 2) throw MpregError.invalid("put takes [key, value, opts?]", `${q}.put`);
        return { put: [str(op.put[0], `${q}.put.0`, "key"), op.put[1], leaseOpt(opts(op.put[2], `${q}.put.2`), `${q}.put.2`)] };
      }
      if (op.delete !== undefined) return { delete: str(op.delete, `${q}.delete`, "key") };
      return { get: str(op.get, `${q}.get`, "key") };
    });
  return { compare, success: ops(v.success, `${path}.success`), failure: ops(v.failure, `${path}.failure`) };
}

/**
 * The built-in functions of a Raft KV group member (PROTOCOL section 10), as a table the node
 * registers: `mpreg.kv.get/put/delete/cas/range/txn/watch/unwatch`,
 * `mpreg.kv.lease.grant/keepalive/revoke`, `mpreg.raft.status`, and the administrative
 * `mpreg.raft.add_member/remove_member/transfer_leader`.
 *
 * Writes, lease calls and membership changes run on the leader: here when this member leads,
 * else through `forwardToLeader`; during an election a call waits for a leader (up to
 * `leaderWaitMs`, then 1005 `{reason: "no_leader"}`). Reads (`get`, `range`) and watches are
 * served by this member (ReadIndex through the leader). `mpreg.kv.watch` is bound to the
 * calling connection: its events are pushed with `ctx.push` as
 * `{role: "kv-event", watch_id, events}`, and the node must call `kv.closeOwner(owner)` when
 * that connection closes. A watch that ends on its own (its history was compacted under it
 * after a snapshot, it fell too far behind, the node stops) gets one last frame
 * `{role: "kv-event", watch_id, events: [], error: {code, message, details}}`.
 */
export function kvBuiltins(o: KvBuiltinsOptions): ServiceBuiltin[] {
  const { kv, group } = o;
  const waitMs = o.leaderWaitMs ?? 10_000;
  const key = (v: unknown, path = "args.0") => str(v, path, "key");
  const member = <T>(ctx: BuiltinContext, run: () => Promise<T>) => onMember(kv.node, { run, signal: ctx.signal, waitMs });
  /** A built-in that runs on the leader (here, or forwarded there). */
  const leader = (name: string, description: string, run: (args: readonly unknown[]) => Promise<unknown>, admin = false): ServiceBuiltin => ({
    name,
    description: `${description} (raft group ${group}; runs on the leader)`,
    ...(admin ? { admin: true } : {}),
    run: (args, ctx) =>
      onLeader(kv.node, {
        local: () => run(args),
        forward: (l) => o.forwardToLeader(l, name, args, ctx),
        signal: ctx.signal,
        waitMs,
      }),
  });
  const nodeId = (v: unknown) => {
    if (typeof v !== "string" || v.length === 0) throw MpregError.invalid("node_id must be a non-empty string", "args.0");
    return v;
  };
  const conf = () => ({ group, conf: kv.node.status().conf });
  return [
    {
      name: "mpreg.kv.get",
      description: `Value, version and mod_revision of a key (raft group ${group}; linearizable, served by any member)`,
      run: (args, ctx) => member(ctx, () => kv.get(key(args[0]))),
    },
    {
      name: "mpreg.kv.range",
      description: `Keys in [start, end) in UTF-8 byte order (raft group ${group}; linearizable, served by any member)`,
      run: (args, ctx) => {
        const start = str(args[0], "args.0", "start");
        const end = args[1] === undefined || args[1] === null ? undefined : str(args[1], "args.1", "end");
        const op = opts(args[2], "args.2");
        const limit = op.limit === undefined || op.limit === null ? undefined : int(op.limit, "args.2.limit", "limit", 1);
        return member(ctx, () => kv.range(start, end, limit === undefined ? {} : { limit }));
      },
    },
    leader("mpreg.kv.put", "Writes a key ({lease} attaches it to a lease)", async ([k, v, op]) =>
      kv.put(key(k), v, leaseOpt(opts(op, "args.2"), "args.2"))),
    leader("mpreg.kv.delete", "Deletes a key", async ([k]) => kv.delete(key(k))),
    leader("mpreg.kv.cas", "Writes a key only if its version matches (0: absent)", async ([k, ver, v]) => {
      const r = await kv.cas(key(k), int(ver, "args.1", "version", 0), v);
      return { ok: r.ok, version: r.version };
    }),
    leader("mpreg.kv.txn", "Compares, then puts/deletes/gets, applied atomically at one revision", async ([t]) => kv.txn(parseTxn(t))),
    {
      name: "mpreg.kv.watch",
      description: `Pushes kv-event frames for every change under a prefix, from a revision (raft group ${group}; bound to this connection)`,
      run: (args, ctx) => {
        const prefix = str(args[0] ?? "", "args.0", "prefix");
        const op = opts(args[1], "args.1");
        const start = op.start_revision === undefined || op.start_revision === null ? undefined : int(op.start_revision, "args.1.start_revision", "start_revision", 1);
        return member(ctx, () =>
          kv.watch(ctx.owner, prefix, start, {
            deliver: (events, watch_id) => ctx.push({ role: "kv-event", watch_id, events }),
            end: (e, watch_id) => ctx.push({ role: "kv-event", watch_id, events: [], error: { code: e.code, message: e.message, details: e.details } }),
          }),
        );
      },
    },
    {
      name: "mpreg.kv.unwatch",
      description: `Ends a watch of this connection (raft group ${group})`,
      run: (args, ctx) => ({ ok: kv.unwatch(str(args[0], "args.0", "watch_id"), ctx.owner) }),
    },
    leader("mpreg.kv.lease.grant", "Grants a lease of ttl_ms", async ([op]) => {
      const o2 = opts(op, "args.0");
      return kv.leaseGrant(int(o2.ttl_ms, "args.0.ttl_ms", "ttl_ms", 1));
    }),
    leader("mpreg.kv.lease.keepalive", "Restarts a lease's clock at its full TTL", async ([id]) => kv.leaseKeepAlive(int(id, "args.0", "lease_id", 1))),
    leader("mpreg.kv.lease.revoke", "Revokes a lease and deletes its keys", async ([id]) => kv.leaseRevoke(int(id, "args.0", "lease_id", 1))),
    {
      name: "mpreg.raft.status",
      description: `Raft status of group ${group} on this node`,
      run: () => ({ group, ...kv.node.status(), revision: kv.state.revision, compact_revision: kv.state.compactRevision }),
    },
    leader(
      "mpreg.raft.add_member",
      "Adds a member (voter, or learner with {learner: true}); resolves once committed",
      async ([id, op]) => {
        const learner = opts(op, "args.1").learner === true;
        await kv.node.proposeConfChange({ type: learner ? "addLearner" : "addVoter", node: nodeId(id) });
        return conf();
      },
      true,
    ),
    leader(
      "mpreg.raft.remove_member",
      "Removes a member; resolves once committed",
      async ([id]) => {
        await kv.node.proposeConfChange({ type: "remove", node: nodeId(id) });
        return conf();
      },
      true,
    ),
    leader(
      "mpreg.raft.transfer_leader",
      "Hands the leadership to a voter",
      async ([id]) => {
        await kv.node.transferLeader(nodeId(id));
        return { group, leader: kv.node.leaderId };
      },
      true,
    ),
  ];
}
