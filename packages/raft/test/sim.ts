import { createLogger, isMpregError } from "@mpreg/envelope";
import { MemoryBackend, MemoryVolume, type StorageBackend } from "@mpreg/persistence";
import { checkLinearizable, type CheckResult, type Model, type Operation } from "@mpreg/testkit";
import { RaftKV } from "../src/raft-kv.js";
import { validateMessage } from "../src/validate.js";
import type { Entry, Message, NodeId, Ready } from "../src/types.js";
import { rng } from "./core-net.js";

/**
 * Deterministic simulation of a Raft KV cluster: seeded message loss, duplication, reordering
 * (random delays), partitions and crash-restarts from storage (the MemoryVolume survives, the
 * node object is dropped). A client workload runs against it; its history is checked for
 * linearizability and safety invariants are checked after every event.
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
  | { t: number; seq: number; kind: "restart"; node: NodeId };

export interface SimResult {
  violations: string[];
  history: Operation<KvIn, KvOut>[];
  check: CheckResult<KvIn, KvOut>;
  stats: { ops: number; ok: number; unknown: number; crashes: number; partitions: number; elections: number; snapshotsSent: number; msgs: number; transfers: number; followerReads: number };
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
  const stats = { ops: 0, ok: 0, unknown: 0, crashes: 0, partitions: 0, elections: 0, snapshotsSent: 0, msgs: 0, transfers: 0, followerReads: 0 };

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
  const appliedAt = new Map<number, string>(); // index -> "term/content"
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
      const c = `${e.term}/${content(e)}`;
      const prev = appliedAt.get(e.index);
      if (prev === undefined) appliedAt.set(e.index, c);
      else if (prev !== c) violations.push(`state machine safety: ${id} applied a different entry at ${e.index}`);
    }
    if (rd.snapshot) {
      const k = `${rd.snapshot.meta.index}/${rd.snapshot.meta.term}`;
      const prev = appliedAt.get(rd.snapshot.meta.index);
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
      onReady: observe(n.id),
    });
  };
  for (const id of ids) {
    const n: SimNode = { id, volume: new MemoryVolume(), kv: undefined, inflight: new Set(), inc: { dead: false, writesLeft: 0 } };
    nodes.set(id, n);
    await open(n);
    push({ t: 1 + Math.floor(r() * TICK), kind: "tick", node: id });
  }

  // ---- clients
  const history: Operation<KvIn, KvOut>[] = [];
  let clock = 0; // logical time of calls and returns
  const guess: (NodeId | undefined)[] = Array.from({ length: nClients }, () => undefined);
  let clientsOn = true;
  for (let c = 0; c < nClients; c++) push({ t: 5 + Math.floor(r() * 20), kind: "client", client: c });

  const startOp = (c: number) => {
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
    const target = (anyMember ? undefined : guess[c]) ?? ids[Math.floor(r() * ids.length)]!;
    const n = nodes.get(target)!;
    const op: Operation<KvIn, KvOut> = { client: c, input, call: ++clock };
    const idx = history.push(op) - 1;
    stats.ops++;
    const next = () => {
      if (clientsOn) push({ t: now + 1 + Math.floor(r() * 15), kind: "client", client: c });
    };
    if (!n.kv) {
      // Nothing listening: a connection error, the op never started.
      history.pop();
      guess[c] = undefined;
      next();
      return;
    }
    const kv = n.kv;
    n.inflight.add(idx);
    const p: Promise<KvOut> =
      input.op === "get"
        ? kv.get(key).then((v) => (v.found ? { value: v.value as string, version: v.version } : null))
        : input.op === "put"
          ? kv.put(key, input.value).then((r) => ({ version: r.version }))
          : input.op === "delete"
            ? kv.delete(key).then((r) => ({ deleted: r.deleted }))
            : kv.cas(key, input.version, input.value).then((r) => ({ ok: r.ok, version: r.version }));
    p.then(
      (out) => {
        if (!n.inflight.delete(idx)) return;
        op.output = out;
        op.ret = ++clock;
        stats.ok++;
        // Reads are served by every member (ReadIndex through the leader): count the others'.
        if (input.op === "get" && kv.node.role !== "leader") stats.followerReads++;
        next();
      },
      (err: unknown) => {
        if (!n.inflight.delete(idx)) return;
        const d = isMpregError(err) ? err.details : {};
        if (d.outcome === "unknown") {
          stats.unknown++; // stays pending: it may or may not have happened
        } else {
          op.ret = -1; // a definite failure: removed from the history below
        }
        if (d.reason === "not_leader") guess[c] = (d.leader as NodeId | null) ?? undefined;
        else guess[c] = undefined;
        next();
      },
    );
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
        for (const [idx, c] of appliedAt) {
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
    return JSON.stringify(Array.from({ length: nKeys }, (_, k) => st.get(`k${k}`) ?? null, (_k: string, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v)));
  });
  if (violations.length === 0 && new Set(states).size !== 1) {
    const detail = [...nodes.values()].map((n) => `${n.id}:${JSON.stringify(n.kv!.node.status())}`).join(" ");
    violations.push(`replicas did not converge after healing: ${states.join(" | ")} ${detail}`);
  }

  const finished = history.filter((op) => op.ret !== -1);
  const check = checkLinearizable(kvModel, finished, { maxSteps: 2_000_000 });
  if (check.result === "illegal") violations.push("history is not linearizable");
  return { violations, history: finished, check, stats };
}
