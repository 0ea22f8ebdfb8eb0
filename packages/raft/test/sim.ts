import { createLogger, isMpregError } from "@mpreg/envelope";
import { MemoryBackend, MemoryVolume, type StorageBackend } from "@mpreg/persistence";
import { checkLinearizable, type CheckResult, type Model, type Operation } from "@mpreg/testkit";
import type { KvLimits } from "../src/kv.js";
import { RaftKV, type KvWatchEvent } from "../src/raft-kv.js";
import { checkLeaseSafety, checkWatch, historyChecker, replay, type KvOp, type KvOpKind, type WatchRecord } from "./kv-checker.js";
import { validateMessage } from "../src/validate.js";
import type { Entry, Message, NodeId, Ready } from "../src/types.js";
import { rng } from "./core-net.js";

/**
 * Deterministic simulation of a Raft KV cluster: seeded message loss, duplication, reordering
 * (random delays), partitions and crash-restarts from storage (the MemoryVolume survives, the
 * node object is dropped). A client workload runs against it: single-key get/put/delete/cas
 * (checked for linearizability per key, Wing–Gong/Lowe), range reads, transactions and leases
 * (checked against the replayed log at the revisions they report, in real-time order, see
 * kv-checker.ts), and watches that resume on another member when theirs crashes (every change
 * once, in order). Safety invariants are checked after every event.
 */
// Simulated crashes make storage calls fail on purpose; the driver's error log would only be noise.
createLogger("raft").setLevel("silent", false);

export interface SimOptions {
  seed: number;
  nodes: number;
  /** Simulated milliseconds of faulty operation (then faults stop and the cluster settles). */
  durationMs?: number;
  clients?: number;
  keys?: number;
  loss?: number;
  duplicate?: number;
  maxDelayMs?: number;
  /** Chance per 100 ms that a node crashes. */
  crashRate?: number;
  /** Chance per 100 ms that a partition starts. */
  partitionRate?: number;
  snapshotEvery?: number;
  /** Chance per 100 ms that the leader is asked to transfer leadership. */
  transferRate?: number;
  /** Share of client operations that are range reads, transactions and lease calls. Default 0.45. */
  kvShare?: number;
  /** Snapshot chunk size (small, so transfers take several messages). Default 64 bytes. */
  snapshotChunkBytes?: number;
}

export type KvIn =
  | { key: string; op: "get" }
  | { key: string; op: "put"; value: string }
  | { key: string; op: "delete" }
  | { key: string; op: "cas"; version: number; value: string };
export type KvOut = { value: string; version: number } | null | { version: number } | { deleted: boolean } | { ok: boolean; version: number };
type KvState = { value: string; version: number } | null;

/** The sequential specification of the KV store, partitioned per key. */
export const kvModel: Model<KvState, KvIn, KvOut> = {
  init: () => null,
  step(s, i, o) {
    switch (i.op) {
      case "get": {
        if (o === undefined) return s;
        const got = o as { value: string; version: number } | null;
        if (got === null) return s === null ? s : undefined;
        return s !== null && s.value === got.value && s.version === got.version ? s : undefined;
      }
      case "put": {
        const next = { value: i.value, version: (s?.version ?? 0) + 1 };
        if (o !== undefined && (o as { version: number }).version !== next.version) return undefined;
        return next;
      }
      case "delete":
        if (o !== undefined && (o as { deleted: boolean }).deleted !== (s !== null)) return undefined;
        return null;
      case "cas": {
        const cur = s?.version ?? 0;
        const ok = cur === i.version;
        const next = ok ? { value: i.value, version: cur + 1 } : s;
        if (o !== undefined) {
          const r = o as { ok: boolean; version: number };
          if (r.ok !== ok || r.version !== (next?.version ?? 0)) return undefined;
        }
        return next;
      }
    }
  },
  hash: (s) => (s === null ? "-" : `${s.version}:${s.value}`),
  partition(ops) {
    const by = new Map<string, Operation<KvIn, KvOut>[]>();
    for (const op of ops) {
      const l = by.get(op.input.key);
      if (l) l.push(op);
      else by.set(op.input.key, [op]);
    }
    return [...by.values()];
  },
};

interface SimNode {
  id: NodeId;
  volume: MemoryVolume;
  kv: RaftKV | undefined;
  /** Pending client ops on this node (marked unknown on a crash). */
  inflight: Set<number>;
  /** The running incarnation: once dead, its storage refuses every call and its sends vanish. */
  inc: Incarnation;
}

interface Incarnation {
  dead: boolean;
  /** Storage writes left before the process dies (power loss between two writes). */
  writesLeft: number;
}

/**
 * Storage as one process incarnation sees it: after the crash every call fails, so a dead
 * process can never write again, and a crash can be placed between any two writes of a Ready
 * (entries written but not the hard state, a snapshot saved but the log not reset, ...).
 */
function fenced(inner: StorageBackend, inc: Incarnation): StorageBackend {
  const guard = () => {
    if (inc.dead) throw new Error("process crashed");
  };
  const write = () => {
    guard();
    if (--inc.writesLeft < 0) {
      inc.dead = true;
      throw new Error("process crashed");
    }
  };
  const wrap = <T extends object>(store: T, writes: readonly string[]): T =>
    new Proxy(store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== "function") return v;
        return async (...args: unknown[]) => {
          if (writes.includes(prop as string)) write();
          else guard();
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  return {
    kind: inner.kind,
    kv: (ns) => wrap(inner.kv(ns), ["put", "del", "batch"]),
    log: (ns) => wrap(inner.log(ns), ["append", "truncateTail", "dropHead"]),
    snapshots: (ns) => wrap(inner.snapshots(ns), ["save"]),
    flush: () => inner.flush(),
    close: () => inner.close(),
  };
}

type Ev =
  | { t: number; seq: number; kind: "msg"; msg: Message }
  | { t: number; seq: number; kind: "tick"; node: NodeId }
  | { t: number; seq: number; kind: "client"; client: number }
  | { t: number; seq: number; kind: "restart"; node: NodeId }
  | { t: number; seq: number; kind: "watch" };

export interface SimResult {
  violations: string[];
  history: Operation<KvIn, KvOut>[];
  check: CheckResult<KvIn, KvOut>;
  stats: SimStats;
}

export interface SimStats {
  ops: number;
  ok: number;
  unknown: number;
  crashes: number;
  partitions: number;
  elections: number;
  snapshotsSent: number;
  msgs: number;
  transfers: number;
  followerReads: number;
  ranges: number;
  txns: number;
  leaseGrants: number;
  keepalives: number;
  leasesExpired: number;
  watchEvents: number;
  watchResumes: number;
}

export async function runSimulation(o: SimOptions): Promise<SimResult> {
  const r = rng(o.seed);
  const duration = o.durationMs ?? 3000;
  const nClients = o.clients ?? (o.nodes === 3 ? 4 : 6);
  const nKeys = o.keys ?? 3;
  const loss = o.loss ?? 0.05;
  const dup = o.duplicate ?? 0.03;
  const maxDelay = o.maxDelayMs ?? 25;
  const crashRate = o.crashRate ?? 0.06;
  const partitionRate = o.partitionRate ?? 0.08;
  const TICK = 10;
  const ids = Array.from({ length: o.nodes }, (_, i) => `n${i + 1}`);
  const violations: string[] = [];
  const stats: SimStats = {
    ops: 0, ok: 0, unknown: 0, crashes: 0, partitions: 0, elections: 0, snapshotsSent: 0, msgs: 0, transfers: 0, followerReads: 0,
    ranges: 0, txns: 0, leaseGrants: 0, keepalives: 0, leasesExpired: 0, watchEvents: 0, watchResumes: 0,
  };
  const limits: KvLimits = {};

  // ---- event queue (binary heap by time, then sequence)
  const heap: Ev[] = [];
  let seq = 0;
  const less = (a: Ev, b: Ev) => a.t < b.t || (a.t === b.t && a.seq < b.seq);
  type EvIn = Ev extends infer E ? (E extends Ev ? Omit<E, "seq"> : never) : never;
  const push = (e: EvIn) => {
    const ev = { ...e, seq: seq++ } as Ev;
    heap.push(ev);
    let i = heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(heap[i]!, heap[p]!)) break;
      [heap[i], heap[p]] = [heap[p]!, heap[i]!];
      i = p;
    }
  };
  const pop = (): Ev | undefined => {
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const a = 2 * i + 1;
        const b = a + 1;
        let m = i;
        if (a < heap.length && less(heap[a]!, heap[m]!)) m = a;
        if (b < heap.length && less(heap[b]!, heap[m]!)) m = b;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  };

  // ---- invariant bookkeeping
  const leaderOfTerm = new Map<number, NodeId>();
  const entryAt = new Map<string, string>(); // "index/term" -> content
  const appliedTerm = new Map<number, string>(); // index -> "term/content"
  const entriesByIndex = new Map<number, Entry>(); // the committed log, as first applied anywhere
  const appliedAt = new Map<number, number>(); // index -> simulated ms it was first applied
  const content = (e: Entry) => `${e.type}:${e.conf ? JSON.stringify(e.conf) : ""}:${Buffer.from(e.data).toString("hex")}`;
  const observe = (id: NodeId) => (rd: Ready) => {
    for (const e of rd.entries) {
      const k = `${e.index}/${e.term}`;
      const c = content(e);
      const prev = entryAt.get(k);
      if (prev === undefined) entryAt.set(k, c);
      else if (prev !== c) violations.push(`log matching: ${id} holds a different entry at ${k}`);
    }
    for (const e of rd.committedEntries) {
      if (!entriesByIndex.has(e.index)) {
        entriesByIndex.set(e.index, e);
        appliedAt.set(e.index, now);
      }
      const c = `${e.term}/${content(e)}`;
      const prev = appliedTerm.get(e.index);
      if (prev === undefined) appliedTerm.set(e.index, c);
      else if (prev !== c) violations.push(`state machine safety: ${id} applied a different entry at ${e.index}`);
    }
    if (rd.snapshot) {
      const k = `${rd.snapshot.meta.index}/${rd.snapshot.meta.term}`;
      const prev = appliedTerm.get(rd.snapshot.meta.index);
      if (prev !== undefined && !prev.startsWith(`${rd.snapshot.meta.term}/`)) {
        violations.push(`state machine safety: ${id} installed a snapshot ${k} that disagrees with applied entries`);
      }
    }
  };

  // ---- network
  const side = new Map<NodeId, number>(); // partition side; messages across sides are dropped
  for (const id of ids) side.set(id, 0);
  let partitionUntil = -1;
  let faults = true;
  let now = 0;
  const send = (_to: NodeId, msg: Message) => {
    stats.msgs++;
    if (msg.type === "snap") stats.snapshotsSent++;
    if (faults && r() < loss) return;
    const copies = faults && r() < dup ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      // Messages are plain data; a structured clone stands in for encode/decode on the wire.
      push({ t: now + 1 + Math.floor(r() * maxDelay), kind: "msg", msg: structuredClone(msg) });
    }
  };

  // ---- nodes
  const nodes = new Map<NodeId, SimNode>();
  const open = async (n: SimNode) => {
    n.volume.inUse = false; // a crashed process no longer holds its storage
    const inc: Incarnation = { dead: false, writesLeft: Number.POSITIVE_INFINITY };
    n.inc = inc;
    n.kv = await RaftKV.open({
      id: n.id,
      storage: fenced(new MemoryBackend({ volume: n.volume }), inc),
      bootstrap: { voters: ids, learners: [] },
      send: (to, msg) => {
        if (!inc.dead) send(to, msg);
      },
      random: rng(o.seed * 7919 + ids.indexOf(n.id) * 104729 + stats.crashes),
      snapshotEvery: o.snapshotEvery ?? 25,
      requestTimeoutTicks: 60,
      maxSnapshotChunkBytes: o.snapshotChunkBytes ?? 64,
      onReady: observe(n.id),
      limits,
      now: () => now,
      watch: { defer: (fn) => queueMicrotask(fn) },
    });
  };
  for (const id of ids) {
    const n: SimNode = { id, volume: new MemoryVolume(), kv: undefined, inflight: new Set(), inc: { dead: false, writesLeft: 0 } };
    nodes.set(id, n);
    await open(n);
    push({ t: 1 + Math.floor(r() * TICK), kind: "tick", node: id });
  }

  // ---- clients
  const history: Operation<KvIn, KvOut>[] = []; // single-key ops, for the per-key checker
  const kvOps: KvOp[] = []; // every op that goes through the log or reports a revision
  let clock = 0; // logical time of calls and returns
  let opSeq = 0;
  const guess: (NodeId | undefined)[] = Array.from({ length: nClients }, () => undefined);
  const leases: ({ id: number; ttl: number } | undefined)[] = Array.from({ length: nClients }, () => undefined);
  const leaseAcks = new Map<number, number[]>(); // lease -> call times of its grant and acknowledged keepalives
  const kvShare = o.kvShare ?? 0.45;
  let clientsOn = true;
  for (let c = 0; c < nClients; c++) push({ t: 5 + Math.floor(r() * 20), kind: "client", client: c });

  /**
   * Runs one client operation on a member: the leader the client believes in, or any member
   * (`anyMember`, for reads every member serves). Records it in the histories; an operation cut
   * by a crash stays pending (its outcome is unknown).
   */
  const issue = <T>(
    c: number,
    anyMember: boolean,
    kind: KvOpKind | "get" | "range",
    input: unknown,
    fn: (kv: RaftKV) => Promise<T>,
    opts: { wg?: { input: KvIn; out: (o: T) => KvOut }; ok?: (o: T) => void; fail?: (e: unknown) => void } = {},
  ) => {
    const target = (anyMember ? undefined : guess[c]) ?? ids[Math.floor(r() * ids.length)]!;
    const n = nodes.get(target)!;
    const next = () => {
      if (clientsOn) push({ t: now + 1 + Math.floor(r() * 15), kind: "client", client: c });
    };
    if (!n.kv) {
      // Nothing listening: a connection error, the op never started.
      guess[c] = undefined;
      next();
      return;
    }
    const kv = n.kv;
    const id = ++opSeq;
    const call = ++clock;
    const wop: Operation<KvIn, KvOut> | undefined = opts.wg ? { client: c, input: opts.wg.input, call } : undefined;
    if (wop) history.push(wop);
    const kop: KvOp | undefined = kind === "get" ? undefined : { client: c, kind: kind as KvOpKind, input, call, callTime: now };
    if (kop) kvOps.push(kop);
    stats.ops++;
    n.inflight.add(id);
    fn(kv).then(
      (out) => {
        if (!n.inflight.delete(id)) return;
        const ret = ++clock;
        if (wop) {
          wop.output = opts.wg!.out(out);
          wop.ret = ret;
        }
        if (kop) {
          kop.output = out;
          kop.ret = ret;
        }
        stats.ok++;
        // Reads are served by every member (ReadIndex through the leader): count the others'.
        if ((kind === "get" || kind === "range") && kv.node.role !== "leader") stats.followerReads++;
        opts.ok?.(out);
        next();
      },
      (err: unknown) => {
        if (!n.inflight.delete(id)) return;
        const d = isMpregError(err) ? err.details : {};
        if (d.outcome === "unknown") {
          stats.unknown++; // stays pending: it may or may not have happened
        } else {
          // A definite failure: removed from the histories below.
          if (wop) wop.ret = -1;
          if (kop) kop.ret = -1;
        }
        if (d.reason === "not_leader") guess[c] = (d.leader as NodeId | null) ?? undefined;
        else guess[c] = undefined;
        opts.fail?.(err);
        next();
      },
    );
  };

  /** get/put/delete/cas on k0..k2 (keys nothing else writes: the per-key checker sees all their writes). */
  const keyOp = (c: number) => {
    const key = `k${Math.floor(r() * nKeys)}`;
    const roll = r();
    let input: KvIn;
    if (roll < 0.4) input = { key, op: "get" };
    else if (roll < 0.7) input = { key, op: "put", value: `v${c}.${clock}` };
    else if (roll < 0.8) input = { key, op: "delete" };
    else input = { key, op: "cas", version: Math.floor(r() * 4), value: `c${c}.${clock}` };
    // Writes go to the leader the client believes in; half the reads go to any member (every
    // member serves linearizable reads), so followers' reads are checked too.
    const anyMember = input.op === "get" && r() < 0.5;
    const i = input;
    switch (i.op) {
      case "get":
        issue(c, anyMember, "get", i, (kv) => kv.get(key), { wg: { input: i, out: (v) => (v.found ? { value: v.value as string, version: v.version } : null) } });
        return;
      case "put":
        issue(c, false, "put", { key, tag: i.value }, (kv) => kv.put(key, i.value), { wg: { input: i, out: (v) => ({ version: v.version }) } });
        return;
      case "delete":
        issue(c, false, "delete", { key }, (kv) => kv.delete(key), { wg: { input: i, out: (v) => ({ deleted: v.deleted }) } });
        return;
      case "cas":
        issue(c, false, "cas", { key, tag: i.value }, (kv) => kv.cas(key, i.version, i.value), { wg: { input: i, out: (v) => ({ ok: v.ok, version: v.version }) } });
        return;
    }
  };

  /** A transaction on t0..t2: a compare, then writes (each branch writes a unique tag) and reads. */
  const txnOp = (c: number) => {
    const t = () => `t${Math.floor(r() * 3)}`;
    const a = t();
    const target = (["version", "mod_revision", "value"] as const)[Math.floor(r() * 3)]!;
    const op = (["==", "!=", "<", ">"] as const)[Math.floor(r() * 4)]!;
    const value = target === "value" ? (r() < 0.5 ? "x" : `y${Math.floor(r() * 3)}`) : Math.floor(r() * 4);
    const tag = `x${c}.${clock}`;
    const req = {
      compare: [{ key: a, target, op, value }],
      success: [{ put: [t(), tag] as [string, unknown] }, ...(r() < 0.3 ? [{ delete: t() }] : []), { get: a }, ...(r() < 0.3 ? [{ put: [t(), `y${Math.floor(r() * 3)}`] as [string, unknown] }] : [])],
      failure: [{ put: [t(), `${tag}f`] as [string, unknown] }, { get: t() }],
    };
    stats.txns++;
    issue(c, false, "txn", { tag, req }, (kv) => kv.txn(req));
  };

  /** Grants, keyed writes, keepalives, revokes, or forgetting a lease (it then expires). */
  const leaseOp = (c: number) => {
    const mine = leases[c];
    if (!mine) {
      const ttl = 150 + Math.floor(r() * 250);
      const callTime = now;
      stats.leaseGrants++;
      issue(c, false, "grant", { ttl }, (kv) => kv.leaseGrant(ttl), {
        ok: (g) => {
          leases[c] = { id: g.lease_id, ttl: g.ttl_ms };
          leaseAcks.set(g.lease_id, [callTime]);
        },
      });
      return;
    }
    const roll = r();
    if (roll < 0.45) {
      const tag = `L${c}.${clock}`;
      const key = `l/${c}.${clock}`;
      issue(c, false, "lput", { key, tag }, (kv) => kv.put(key, tag, { lease: mine.id }), {
        fail: (e) => {
          if (isMpregError(e) && e.code === 1001) leases[c] = undefined;
        },
      });
    } else if (roll < 0.8) {
      const callTime = now;
      issue(c, false, "keepalive", { id: mine.id }, (kv) => kv.leaseKeepAlive(mine.id), {
        ok: () => {
          stats.keepalives++;
          leaseAcks.get(mine.id)?.push(callTime);
        },
        fail: (e) => {
          if (isMpregError(e) && e.code === 1001) leases[c] = undefined;
        },
      });
    } else if (roll < 0.88) {
      leases[c] = undefined;
      issue(c, false, "revoke", { id: mine.id }, (kv) => kv.leaseRevoke(mine.id));
    } else {
      leases[c] = undefined; // forgotten: no more keepalives, it expires
      push({ t: now + 1 + Math.floor(r() * 15), kind: "client", client: c });
    }
  };

  const startOp = (c: number) => {
    const roll = r();
    if (roll >= kvShare) keyOp(c);
    else if (roll < kvShare * 0.2) {
      stats.ranges++;
      issue(c, r() < 0.5, "range", {}, (kv) => kv.range(""));
    } else if (roll < kvShare * 0.45) txnOp(c);
    else leaseOp(c);
  };

  // ---- watches: one on everything from revision 1, one on "t" from the next revision; each
  // resumes on another member (from the revision after the last it saw) when its member dies.
  interface SimWatch {
    rec: WatchRecord;
    prefix: string;
    /** Where to resume (undefined: "the next revision", before the first attach). */
    from: number | undefined;
    on: { node: SimNode; inc: Incarnation } | undefined;
    attaching: boolean;
  }
  const watchRecords: WatchRecord[] = [];
  const watches: SimWatch[] = [
    { rec: { prefix: "", start: 1, events: [] }, prefix: "", from: 1, on: undefined, attaching: false },
    { rec: { prefix: "t", start: 0, events: [] }, prefix: "t", from: undefined, on: undefined, attaching: false },
  ];
  for (const w of watches) watchRecords.push(w.rec);
  push({ t: 20, kind: "watch" });
  const attachWatches = () => {
    for (const w of watches) {
      if (w.attaching || (w.on && !w.on.inc.dead && w.on.node.kv && w.on.node.inc === w.on.inc)) continue;
      if (w.on && w.rec.events.length > 0) stats.watchResumes++;
      w.on = undefined;
      const up = ids.map((id) => nodes.get(id)!).filter((n) => n.kv && !n.inc.dead);
      const n = up[Math.floor(r() * up.length)];
      if (!n?.kv) continue;
      const inc = n.inc;
      w.attaching = true;
      w.on = { node: n, inc }; // events may come before the creation's answer is seen here
      const deliver = (events: KvWatchEvent[]) => {
        // A dead process delivers nothing; a watch moved elsewhere ignores its old member.
        if (inc.dead || w.on?.inc !== inc) return;
        w.rec.events.push(...events);
        stats.watchEvents += events.length;
        w.from = events[events.length - 1]!.mod_revision + 1;
      };
      n.kv
        .watch(`sim-${w.prefix}`, w.prefix, w.from, {
          deliver,
          end: (e) => {
            if (w.on?.inc !== inc) return;
            w.on = undefined;
            if (e.details.reason === "compacted") violations.push(`watch "${w.prefix}" compacted under it: ${e.message}`);
          },
        })
        .then(
          (res) => {
            w.attaching = false;
            if (w.from === undefined) {
              w.from = res.revision + 1;
              w.rec.start = w.from;
            }
          },
          () => {
            w.attaching = false; // no leader, timed out...: try again later
            if (w.on?.inc === inc) w.on = undefined;
          },
        );
    }
  };

  const checkLeaders = () => {
    for (const n of nodes.values()) {
      if (!n.kv) continue;
      const core = n.kv.node.raft;
      if (core.role !== "leader") continue;
      const known = leaderOfTerm.get(core.term);
      if (known === undefined) {
        leaderOfTerm.set(core.term, n.id);
        stats.elections++;
        // Leader completeness: the new leader holds every entry applied anywhere.
        for (const [idx, c] of appliedTerm) {
          if (idx <= core.log.snapIndex) continue;
          const t = core.log.term(idx);
          if (t === undefined || !c.startsWith(`${t}/`)) {
            violations.push(`leader completeness: ${n.id} (term ${core.term}) lacks applied entry ${idx}`);
            break;
          }
        }
      } else if (known !== n.id) {
        violations.push(`election safety: ${known} and ${n.id} both lead term ${core.term}`);
      }
    }
  };

  const settle = async () => {
    for (const n of nodes.values()) if (n.kv) await n.kv.node.idle().catch(() => undefined); // a crash shows up as a storage failure
  };

  // ---- main loop
  const end = duration + 2000;
  let nextFaultCheck = 100;
  while (heap.length > 0) {
    const ev = pop()!;
    if (ev.t > end) break;
    now = ev.t;
    if (faults && now >= duration) {
      faults = false;
      clientsOn = false;
      for (const id of ids) side.set(id, 0);
      for (const n of nodes.values()) {
        if (!n.inc.dead) n.inc.writesLeft = Number.POSITIVE_INFINITY;
        if (!n.kv) push({ t: now + 1, kind: "restart", node: n.id });
      }
    }
    if (faults && now >= nextFaultCheck) {
      nextFaultCheck += 100;
      if (partitionUntil >= 0 && now >= partitionUntil) {
        for (const id of ids) side.set(id, 0);
        partitionUntil = -1;
      } else if (partitionUntil < 0 && r() < partitionRate) {
        for (const id of ids) side.set(id, r() < 0.5 ? 1 : 0);
        partitionUntil = now + 100 + Math.floor(r() * 500);
        stats.partitions++;
      }
      if (r() < (o.transferRate ?? 0.04)) {
        // Operator-initiated leader transfer, under the same faults.
        const l = [...nodes.values()].find((n) => n.kv?.node.role === "leader");
        if (l?.kv) {
          const target = ids[Math.floor(r() * ids.length)]!;
          l.kv.node.transferLeader(target).catch(() => undefined);
          stats.transfers++;
        }
      }
      if (r() < crashRate) {
        const up = ids.filter((id) => nodes.get(id)!.kv && !nodes.get(id)!.inc.dead);
        const victim = nodes.get(up[Math.floor(r() * up.length)]!);
        if (victim?.kv && up.length > 1) {
          if (r() < 0.5) {
            // Dies now, between two Readies.
            await victim.kv.node.idle().catch(() => undefined);
            victim.inc.dead = true;
          } else {
            // Dies during one of its next few storage writes, possibly in the middle of a Ready.
            victim.inc.writesLeft = Math.floor(r() * 4);
          }
        }
      }
    }
    switch (ev.kind) {
      case "msg": {
        const n = nodes.get(ev.msg.to);
        if (!n?.kv || side.get(ev.msg.from) !== side.get(ev.msg.to)) break;
        // Every message must pass the wire schema check a real receiver applies.
        n.kv.node.step(validateMessage(ev.msg));
        await n.kv.node.idle().catch(() => undefined); // a crash shows up as a storage failure
        break;
      }
      case "tick": {
        const n = nodes.get(ev.node)!;
        if (n.kv) {
          n.kv.node.tick();
          await n.kv.node.idle().catch(() => undefined); // a crash shows up as a storage failure
        }
        push({ t: now + TICK, kind: "tick", node: ev.node });
        break;
      }
      case "client":
        if (clientsOn) startOp(ev.client);
        await settle();
        break;
      case "restart": {
        const n = nodes.get(ev.node)!;
        if (!n.kv) await open(n);
        break;
      }
      case "watch":
        attachWatches();
        await settle();
        push({ t: now + 50, kind: "watch" });
        break;
    }
    for (const n of nodes.values()) {
      if (n.kv && n.inc.dead) {
        await n.kv.node.idle().catch(() => undefined);
        n.kv = undefined; // the process is gone; its storage (volume) survives
        stats.unknown += n.inflight.size;
        n.inflight.clear(); // those ops stay pending (unknown outcome)
        for (let c = 0; c < nClients; c++) if (guess[c] === n.id) guess[c] = undefined;
        stats.crashes++;
        push({ t: now + 50 + Math.floor(r() * 400), kind: "restart", node: n.id });
      }
    }
    checkLeaders();
    if (violations.length > 0) break;
  }
  await settle();

  // ---- convergence: every node applied the same state
  const states = [...nodes.values()].map((n) => {
    const st = n.kv!.state;
    const keys = st.range("", undefined, 100_000).items.map(([k, rec]) => [k, Buffer.from(rec.value).toString("hex"), rec.version, rec.mod_revision, rec.lease]);
    return JSON.stringify({ keys, leases: st.leaseList().sort(), revision: st.revision });
  });
  if (violations.length === 0 && new Set(states).size !== 1) {
    const detail = [...nodes.values()].map((n) => `${n.id}:${JSON.stringify(n.kv!.node.status())}`).join(" ");
    violations.push(`replicas did not converge after healing: ${states.join(" | ")} ${detail}`);
  }
  // Lease liveness: every client stopped at the end of the faults, so every lease expired since.
  for (const n of nodes.values()) {
    const left = n.kv!.state.leaseList();
    if (violations.length === 0 && left.length > 0) violations.push(`${n.id} still holds leases ${JSON.stringify(left)} ${2000} ms after the clients stopped`);
  }

  const finished = history.filter((op) => op.ret !== -1);
  const check = checkLinearizable(kvModel, finished, { maxSteps: 2_000_000 });
  if (check.result === "illegal") violations.push("history is not linearizable");

  // Range reads, transactions, leases and watches: against the replayed log (kv-checker.ts).
  if (violations.length === 0) {
    const hc = historyChecker(kvOps.filter((op) => op.ret !== -1));
    const rep = replay(entriesByIndex, limits, hc.checksAt);
    violations.push(...rep.violations, ...hc.finish(rep));
    for (const w of watchRecords) violations.push(...checkWatch(w, rep));
    violations.push(...checkLeaseSafety(rep, leaseAcks, appliedAt));
    stats.leasesExpired = rep.expired.size;
  }
  return { violations, history: finished, check, stats };
}
