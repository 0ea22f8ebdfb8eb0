import { KvStateMachine, decodeKvCommand, decodeValue, type KvCommand, type KvEvent, type KvLimits, type KvResult } from "../src/kv.js";
import type { KvWatchEvent } from "../src/raft-kv.js";
import type { Entry } from "../src/types.js";

/**
 * Checks of a simulated KV history that the per-key linearizability checker cannot do (range
 * reads and transactions span keys; leases and watches have no sequential spec of their own):
 *
 * 1. **Replay.** The committed log (every index, as applied somewhere) is replayed on a fresh
 *    state machine. This gives, per revision, the state and the events, and per entry, its
 *    result.
 * 2. **Results at their revision.** Every completed operation that went through the log is found
 *    in it (by the unique value it wrote; a `delete` by the revision it reported) exactly once,
 *    and its result is the replay's result for that entry. A range read's items are the
 *    replay's state at the revision it reported.
 * 3. **Real-time order.** Writes take the position (revision, 0), everything else (reads, and
 *    log entries that changed nothing) (revision, 1). If A returned before B was called, A's
 *    position must not be after B's. With results checked at their positions this is
 *    linearizability (the order by position is a legal sequential history).
 * 4. **Watches.** Each logical watch (resumed on another member after a crash, from the revision
 *    after the last it saw) received exactly the replay's events under its prefix, from its
 *    start revision to the last it saw: in order, none missing, none twice.
 * 5. **Leases.** No lease expires (its expire entry first applied anywhere) sooner than its TTL
 *    after the grant's call or the call of its last acknowledged keepalive.
 */

export type KvOpKind = "put" | "delete" | "cas" | "range" | "txn" | "lput" | "grant" | "keepalive" | "revoke";

export interface KvOp {
  client: number;
  kind: KvOpKind;
  /** The call's arguments (`tag`: the unique value it writes, when it writes one). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the shapes of the RaftKV calls
  input: any;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the shapes of the RaftKV results
  output?: any;
  /** Logical call/return times (one counter). */
  call: number;
  ret?: number;
  /** Simulated ms when it was called. */
  callTime: number;
}

export interface Replay {
  /** Result of each entry applied (normal, non-empty entries). */
  results: Map<number, KvResult>;
  commands: Map<number, KvCommand>;
  /** Store revision right after and right before each entry. */
  revAfter: Map<number, number>;
  revBefore: Map<number, number>;
  /** Entry index that produced each revision. */
  indexOfRev: Map<number, number>;
  /** Events of each revision. */
  events: Map<number, KvEvent[]>;
  /** Entry index of each unique value tag written. */
  tagIndex: Map<string, number>;
  /** Lease id -> [index of its expire entry, ttl], for leases that expired. */
  expired: Map<number, { index: number; ttl: number }>;
  finalRevision: number;
  violations: string[];
  /** The replayed state machine at the end. */
  sm: KvStateMachine;
  /** Runs `check(sm, revision)` with the state at each revision in `revisions` (sorted ascending). */
  atRevisions: Map<number, ((sm: KvStateMachine) => void)[]>;
}

/** The unique value a command writes, used to find a client's operation in the log. */
function tagOf(cmd: KvCommand): string | undefined {
  const dec = (v: Uint8Array) => {
    const x = decodeValue(v);
    return typeof x === "string" ? x : undefined;
  };
  if (cmd.op === "put" || cmd.op === "cas") return dec(cmd.value);
  if (cmd.op === "txn") {
    const first = cmd.success[0];
    return first && "put" in first ? dec(first.put.value) : undefined;
  }
  return undefined;
}

/**
 * Replays the log and calls the checks registered per revision with the state at that
 * revision. `entries` must hold every index from 1 to its largest.
 */
export function replay(entries: Map<number, Entry>, limits: KvLimits, checksAt: Map<number, ((sm: KvStateMachine) => void)[]>): Replay {
  const sm = new KvStateMachine(limits);
  const r: Replay = {
    results: new Map(),
    commands: new Map(),
    revAfter: new Map(),
    revBefore: new Map(),
    indexOfRev: new Map(),
    events: new Map(),
    tagIndex: new Map(),
    expired: new Map(),
    finalRevision: 0,
    violations: [],
    sm,
    atRevisions: checksAt,
  };
  sm.listener = { onRevision: (rev, evs) => r.events.set(rev, [...evs]), onLease: () => undefined, onRestore: () => undefined };
  const max = Math.max(0, ...entries.keys());
  const leaseTtl = new Map<number, number>();
  const runChecks = (rev: number) => {
    for (const check of checksAt.get(rev) ?? []) check(sm);
    checksAt.delete(rev);
  };
  for (let i = 1; i <= max; i++) {
    const e = entries.get(i);
    if (!e) {
      r.violations.push(`replay: no node applied entry ${i}`);
      break;
    }
    if (e.type !== "normal" || e.data.length === 0) continue;
    const before = sm.revision;
    runChecks(before);
    const cmd = decodeKvCommand(e.data);
    const res = sm.apply(e.data, i);
    r.results.set(i, res);
    r.commands.set(i, cmd);
    r.revAfter.set(i, sm.revision);
    r.revBefore.set(i, before);
    if (sm.revision !== before) r.indexOfRev.set(sm.revision, i);
    const tag = tagOf(cmd);
    if (tag !== undefined) {
      if (r.tagIndex.has(tag)) r.violations.push(`exactly once: ${tag} applied at ${r.tagIndex.get(tag)} and ${i}`);
      r.tagIndex.set(tag, i);
    }
    if (res.op === "lease_grant") leaseTtl.set(res.id, res.ttl);
    if (res.op === "lease_expire" && res.expired && cmd.op === "lease_expire") r.expired.set(cmd.id, { index: i, ttl: leaseTtl.get(cmd.id) ?? 0 });
  }
  runChecks(sm.revision);
  for (const rev of checksAt.keys()) r.violations.push(`a read reported revision ${rev}, beyond the last one applied (${sm.revision})`);
  r.finalRevision = sm.revision;
  return r;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
/** Canonical text of a value as a client sees it. */
const show = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array ? `bin:${hex(x)}` : x));

/** A replay result in the shape RaftKV returns it (values decoded). */
function asReply(kind: KvOpKind, res: KvResult): unknown {
  switch (res.op) {
    case "put":
      return { version: res.version, revision: res.revision };
    case "cas":
      return { ok: res.ok, version: res.version, revision: res.revision };
    case "delete":
      return { deleted: res.deleted, revision: res.revision };
    case "txn":
      return {
        succeeded: res.succeeded,
        results: res.results.map((x) =>
          "found" in x ? (x.found ? { found: true, value: decodeValue(x.value), version: x.version, mod_revision: x.mod_revision } : { found: false }) : x,
        ),
        revision: res.revision,
      };
    case "error":
      return { error: res.reason };
    default:
      return { kind, res };
  }
}

/**
 * Checks 2 and 3 for the completed operations of `ops` (those with an output). Registers the
 * range checks with `checksAt` before the replay runs; call `finish` after it.
 */
export function historyChecker(ops: readonly KvOp[]) {
  const violations: string[] = [];
  const checksAt = new Map<number, ((sm: KvStateMachine) => void)[]>();
  const at = (rev: number, f: (sm: KvStateMachine) => void) => {
    const l = checksAt.get(rev);
    if (l) l.push(f);
    else checksAt.set(rev, [f]);
  };
  for (const op of ops) {
    if (op.kind === "range" && op.output) {
      const out = op.output as { items: { key: string; value: unknown; version: number; mod_revision: number }[]; revision: number };
      at(out.revision, (sm) => {
        const want = sm.range("", undefined, 100_000).items.map(([key, rec]) => ({ key, value: decodeValue(rec.value), version: rec.version, mod_revision: rec.mod_revision }));
        if (show(want) !== show(out.items)) violations.push(`range at revision ${out.revision} saw ${show(out.items)}, the store held ${show(want)}`);
      });
    }
    if (op.kind === "delete" && op.output && !op.output.deleted) {
      at(op.output.revision, (sm) => {
        if (sm.get(op.input.key)) violations.push(`delete of ${op.input.key} found nothing at revision ${op.output.revision}, but the key existed`);
      });
    }
  }

  const finish = (r: Replay): string[] => {
    const positioned: { call: number; ret: number; pos: [number, number]; what: string }[] = [];
    for (const op of ops) {
      if (!op.output || op.ret === undefined) continue;
      let pos: [number, number] | undefined;
      if (op.kind === "range") pos = [op.output.revision, 1];
      else if (op.kind === "delete") {
        if (op.output.deleted) {
          const i = r.indexOfRev.get(op.output.revision);
          const cmd = i === undefined ? undefined : r.commands.get(i);
          const ev = r.events.get(op.output.revision) ?? [];
          if (!cmd || !ev.some((e) => e.type === "delete" && e.key === op.input.key)) {
            violations.push(`delete of ${op.input.key} reported revision ${op.output.revision}, which deleted no such key`);
          }
          pos = [op.output.revision, 0];
        } else pos = [op.output.revision, 1];
      } else if (op.kind === "put" || op.kind === "cas" || op.kind === "txn" || op.kind === "lput") {
        const tag = op.input.tag as string;
        const i = r.tagIndex.get(tag);
        if (i === undefined) {
          violations.push(`${op.kind} ${tag} succeeded but is not in the log`);
          continue;
        }
        const want = asReply(op.kind, r.results.get(i)!);
        if (show(want) !== show(op.output)) violations.push(`${op.kind} ${tag} returned ${show(op.output)}, the log's result is ${show(want)}`);
        const changed = r.revAfter.get(i)! !== r.revBefore.get(i)!;
        pos = [r.revAfter.get(i)!, changed ? 0 : 1];
      }
      if (pos) positioned.push({ call: op.call, ret: op.ret, pos, what: `${op.kind} ${show(op.input)} -> ${show(op.output)}` });
    }
    // Real-time order: sweep by call time, keeping the largest position among ops returned before.
    const byRet = [...positioned].sort((a, b) => a.ret - b.ret);
    const byCall = [...positioned].sort((a, b) => a.call - b.call);
    let k = 0;
    let best: (typeof positioned)[number] | undefined;
    const less = (a: [number, number], b: [number, number]) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
    for (const b of byCall) {
      while (k < byRet.length && byRet[k]!.ret < b.call) {
        const a = byRet[k++]!;
        if (!best || less(best.pos, a.pos)) best = a;
      }
      if (best && less(b.pos, best.pos)) {
        violations.push(`real-time order: ${best.what} (position ${best.pos}) returned before ${b.what} (position ${b.pos}) was called`);
        break;
      }
    }
    return violations;
  };
  return { checksAt, finish };
}

/** A logical watch: its prefix, its first start revision and everything it received, in order. */
export interface WatchRecord {
  prefix: string;
  start: number;
  events: KvWatchEvent[];
}

/** Check 4. */
export function checkWatch(w: WatchRecord, r: Replay): string[] {
  if (w.events.length === 0) return [];
  const last = w.events[w.events.length - 1]!.mod_revision;
  const want: string[] = [];
  for (let rev = w.start; rev <= last; rev++) {
    for (const e of r.events.get(rev) ?? []) {
      if (!e.key.startsWith(w.prefix)) continue;
      want.push(show(e.value === undefined ? { type: e.type, key: e.key, mod_revision: e.mod_revision } : { type: e.type, key: e.key, value: decodeValue(e.value), mod_revision: e.mod_revision }));
    }
  }
  const got = w.events.map((e) => show(e));
  if (show(got) === show(want)) return [];
  let i = 0;
  while (i < got.length && got[i] === want[i]) i++;
  return [`watch "${w.prefix}" from ${w.start}: at event ${i} got ${got[i]}, expected ${want[i]} (${got.length} received, ${want.length} expected)`];
}

/**
 * Check 5: `acks` maps a lease to the call times of its grant and acknowledged keepalives;
 * `appliedAt` gives the simulated time each entry was first applied.
 */
export function checkLeaseSafety(r: Replay, acks: Map<number, number[]>, appliedAt: Map<number, number>): string[] {
  const out: string[] = [];
  for (const [id, { index, ttl }] of r.expired) {
    const last = Math.max(...(acks.get(id) ?? [0]));
    const when = appliedAt.get(index)!;
    if (when < last + ttl) out.push(`lease ${id} (ttl ${ttl}) expired at ${when}, sooner than ${ttl} ms after its last acknowledged keepalive at ${last}`);
  }
  return out;
}
