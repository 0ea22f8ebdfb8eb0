import { ErrorCode, MpregError, createLogger, newId } from "@mpreg/envelope";
import type { AppendLog, KVStore, SnapshotStore, StorageBackend } from "@mpreg/persistence";
import { decodeEntry, decodeJson, encodeEntry, encodeJson, isConfState, isHardState } from "./codec.js";
import { RaftCore, notLeader, type RaftConfig } from "./raft.js";
import type { ConfChange, ConfState, Entry, HardState, Message, NodeId, Ready, Snapshot, SoftState } from "./types.js";

const log = createLogger("raft");

/** The application's replicated state machine. `apply` must be deterministic. */
export interface StateMachine {
  /** Applies one committed command; the result resolves the proposer's promise (leader only). */
  apply(data: Uint8Array, index: number): unknown;
  /** An image of the whole state (taken at the last applied index). */
  snapshot(): Uint8Array;
  /** Replaces the state by an image made by `snapshot`. */
  restore(data: Uint8Array): void;
}

export interface RaftNodeOptions extends Omit<RaftConfig, "random"> {
  storage: StorageBackend;
  /** Storage namespace (several Raft groups can share a backend). Default "raft". */
  namespace?: string;
  /** Membership of a brand-new cluster; used only when the storage holds nothing yet. */
  bootstrap?: ConfState;
  stateMachine: StateMachine;
  /** Transport: called after the state a message depends on is durable. Must not throw. */
  send: (to: NodeId, msg: Message) => void;
  /** Random source for election timeouts (default Math.random). */
  random?: () => number;
  /** Milliseconds per tick for the built-in timer; 0 = the caller calls `tick()` (simulations). Default 0. */
  tickMs?: number;
  /** Take a snapshot and compact the log after this many applied entries. Default 10,000. */
  snapshotEvery?: number;
  /** A proposal or read not finished after this many ticks fails with TIMEOUT. Default 100. */
  requestTimeoutTicks?: number;
  /** Most proposals plus reads waiting; beyond it requests fail with OVERLOADED. Default 10,000. */
  maxPendingRequests?: number;
  /** Most queued inputs (messages, ticks) not yet fed to the core; extra messages and ticks are dropped. Default 100,000. */
  maxInbox?: number;
  /** Called after each Ready is processed (for metrics and tests). */
  onReady?: (rd: Ready) => void;
  /** Called on each tick, after the core ticked (the KV store checks its leases here). */
  onTick?: () => void;
}

interface PendingProposal {
  term: number;
  age: number;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

interface PendingRead {
  fn: () => unknown;
  index: number | undefined;
  age: number;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** Raised when a request's fate is unknown (it may still commit): retry only if idempotent. */
export function outcomeUnknown(reason: string): MpregError {
  return new MpregError(ErrorCode.TIMEOUT, `raft: ${reason}`, { reason, outcome: "unknown" });
}

/**
 * Runs the Raft core against real storage: persists the hard state and entries before sending
 * the messages that depend on them, applies committed entries to the state machine, snapshots
 * and compacts, and turns proposals and reads into promises.
 */
export class RaftNode {
  readonly id: NodeId;
  private core: RaftCore;
  private readonly opts: RaftNodeOptions;
  private readonly sm: StateMachine;
  private readonly kv: KVStore;
  private readonly alog: AppendLog;
  private readonly snaps: SnapshotStore;
  /** Raft index = append-log index + base (the base moves when a received snapshot replaces the log). */
  private base: number;
  /** Append-log index the next append gets. */
  private nextLogIdx: number;
  /** Highest Raft index on disk. */
  private storedLast: number;
  private appliedIndex: number;
  private snapIndex: number;
  private inbox: (() => void)[] = [];
  private pumping: Promise<void> | undefined;
  private pumpActive = false;
  private failure: unknown;
  private readonly proposals = new Map<number, PendingProposal>();
  private readonly reads = new Map<string, PendingRead>();
  private readSeq = 0;
  private readonly readNonce = newId();
  /** The hard state last written, and a commit-only update not yet written. */
  private persistedHs: HardState | undefined;
  private lazyHs: HardState | undefined;
  /** Requests queued in the inbox, not yet in `proposals`/`reads`. */
  private queuedRequests = 0;
  private soft: SoftState = { lead: null, role: "follower" };
  private timer: ReturnType<typeof setInterval> | undefined;
  private stopped = false;
  private readonly snapshotEvery: number;
  private readonly timeoutTicks: number;
  private readonly maxPending: number;
  private readonly maxInbox: number;

  private constructor(
    opts: RaftNodeOptions,
    core: RaftCore,
    stores: { kv: KVStore; alog: AppendLog; snaps: SnapshotStore },
    pos: { base: number; nextLogIdx: number; storedLast: number; snapIndex: number },
  ) {
    this.id = opts.id;
    this.opts = opts;
    this.core = core;
    this.sm = opts.stateMachine;
    this.kv = stores.kv;
    this.alog = stores.alog;
    this.snaps = stores.snaps;
    this.base = pos.base;
    this.nextLogIdx = pos.nextLogIdx;
    this.storedLast = pos.storedLast;
    this.snapIndex = pos.snapIndex;
    this.appliedIndex = pos.snapIndex;
    this.snapshotEvery = opts.snapshotEvery ?? 10_000;
    this.timeoutTicks = opts.requestTimeoutTicks ?? 100;
    this.maxPending = opts.maxPendingRequests ?? 10_000;
    this.maxInbox = opts.maxInbox ?? 100_000;
  }

  /** Opens a node: recovers term, vote, log, membership and state from storage alone. */
  static async open(opts: RaftNodeOptions): Promise<RaftNode> {
    const ns = opts.namespace ?? "raft";
    const kv = opts.storage.kv(`${ns}/state`);
    const alog = opts.storage.log(`${ns}/log`);
    const snaps = opts.storage.snapshots(`${ns}/snap`);

    const hsRaw = await kv.get(KEY_HS);
    const hs = hsRaw ? decodeJson<unknown>(hsRaw) : undefined;
    if (hs !== undefined && !isHardState(hs)) throw MpregError.invalid("raft: stored hard state is malformed", "hardState");
    const baseRaw = await kv.get(KEY_BASE);
    let base = baseRaw ? decodeJson<number>(baseRaw) : 0;

    let snapshot: Snapshot | undefined;
    const stored = await snaps.loadLatest();
    if (stored) {
      const term = stored.meta.meta.term;
      const conf = stored.meta.meta.conf;
      if (typeof term !== "number" || !isConfState(conf)) {
        throw MpregError.invalid("raft: stored snapshot metadata is malformed", "snapshot");
      }
      snapshot = { meta: { index: stored.meta.index, term, conf }, data: stored.data };
      opts.stateMachine.restore(stored.data);
    }
    const snapIndex = snapshot?.meta.index ?? 0;

    const first = await alog.firstIndex();
    const last = await alog.lastIndex();
    let nextLogIdx = last + 1;
    let entries: Entry[] = [];
    if (last >= first && last > 0) {
      const recs = await alog.read(first, last + 1);
      entries = recs.map((r) => {
        const e = decodeEntry(r.data);
        if (e.index !== r.index + base) throw MpregError.invalid("raft: stored log is out of place", "log");
        return e;
      });
    }
    // Keep only entries that continue the snapshot (Raft §7: if the entry at the snapshot's
    // index has the snapshot's term, keep what follows; otherwise the whole log is stale).
    if (snapshot) {
      const at = entries.find((e) => e.index === snapIndex);
      const after = entries.filter((e) => e.index > snapIndex);
      const continues = after.length > 0 && after[0]!.index === snapIndex + 1 && (at === undefined ? entries[0]!.index === snapIndex + 1 : at.term === snapshot.meta.term);
      if (continues) {
        if (entries[0]!.index <= snapIndex) await alog.dropHead(snapIndex - base);
        entries = after;
      } else {
        if (last >= first && last > 0) await alog.truncateTail(first);
        nextLogIdx = last >= first && last > 0 ? first : last + 1;
        base = snapIndex + 1 - nextLogIdx;
        await kv.put(KEY_BASE, encodeJson(base));
        entries = [];
      }
    }
    const storedLast = entries.length > 0 ? entries[entries.length - 1]!.index : snapIndex;
    let hardState: HardState | undefined = hs as HardState | undefined;
    if (hardState) hardState = { ...hardState, commit: Math.max(snapIndex, Math.min(hardState.commit, storedLast)) };
    const fresh = !hardState && !snapshot && entries.length === 0;

    const core = new RaftCore(
      { ...opts, random: opts.random ?? Math.random },
      {
        ...(hardState ? { hardState } : {}),
        ...(snapshot ? { snapshot } : {}),
        entries,
        ...(fresh && opts.bootstrap ? { bootstrap: opts.bootstrap } : {}),
      },
    );
    const node = new RaftNode(opts, core, { kv, alog, snaps }, { base, nextLogIdx, storedLast, snapIndex });
    node.persistedHs = hardState;
    if ((opts.tickMs ?? 0) > 0) {
      node.timer = setInterval(() => node.tick(), opts.tickMs);
      node.timer.unref?.();
    }
    node.schedule();
    await node.idle();
    return node;
  }

  // ---------------------------------------------------------------- inputs

  /** Feeds a message from the transport. Messages beyond the inbox bound are dropped (Raft retries). */
  step(msg: Message): void {
    if (this.stopped) return;
    if (this.inbox.length >= this.maxInbox) return;
    this.inbox.push(() => this.core.step(msg));
    this.schedule();
  }

  /** Advances logical time by one tick (called by the built-in timer or by a simulation). */
  tick(): void {
    // A full inbox means the loop is far behind (slow storage): a lost tick only delays timers.
    if (this.stopped || this.inbox.length >= this.maxInbox) return;
    this.inbox.push(() => {
      this.core.tick();
      this.ageRequests();
      this.opts.onTick?.();
    });
    this.schedule();
  }

  /**
   * Replicates a command; resolves with the state machine's result once it is applied here.
   * Rejects with UNREACHABLE `{reason:"not_leader", leader}` on a follower (forward it to
   * `leader`), OVERLOADED when too much is pending, TIMEOUT `{outcome:"unknown"}` when its fate
   * is unknown, and EXECUTION_FAILED `{reason:"dropped"}` when it was certainly not committed.
   */
  propose(data: Uint8Array): Promise<unknown> {
    return this.request((resolve, reject) => {
      const { index, term } = this.core.propose(data);
      this.track(index, { term, age: 0, resolve, reject });
    });
  }

  /** Proposes a single-server membership change; resolves once it is applied here. */
  proposeConfChange(cc: ConfChange): Promise<void> {
    return this.request((resolve, reject) => {
      const { index, term } = this.core.proposeConfChange(cc);
      this.track(index, { term, age: 0, resolve: () => resolve(undefined), reject });
    }) as Promise<void>;
  }

  /**
   * A linearizable read on any member: gets a read index confirmed by a quorum (ReadIndex: on
   * the leader directly, on a follower or learner from the leader it knows), waits until that
   * index is applied here, then runs `fn` against this node's state machine. Without a known
   * leader it rejects with UNREACHABLE `{reason:"not_leader", leader: null}`; a request or
   * answer lost on the way ends in TIMEOUT after the request timeout.
   */
  read<T>(fn: () => T): Promise<T> {
    return this.request((resolve, reject) => {
      // Unique across restarts: a late answer to a previous run's read must match nothing.
      const ctx = `${this.id}/${this.readNonce}/${++this.readSeq}`;
      this.core.readIndex(ctx);
      this.reads.set(ctx, { fn, index: undefined, age: 0, resolve, reject });
    }) as Promise<T>;
  }

  /** Asks the leader to hand leadership to `target`. */
  transferLeader(target: NodeId): Promise<void> {
    return this.request((resolve) => {
      this.core.transferLeader(target);
      resolve(undefined);
    }) as Promise<void>;
  }

  /** Starts an election at once (tests, operator action). */
  campaign(): void {
    this.inbox.push(() => this.core.campaign());
    this.schedule();
  }

  /** Resolves when every queued input has been processed and its Ready handled. */
  async idle(): Promise<void> {
    while (this.pumping) await this.pumping;
    if (this.failure) throw this.failure;
  }

  /** Stops the timer and fails every waiting request (outcome unknown). Storage stays open. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.idle().catch(() => undefined);
    this.stopped = true;
    if (this.lazyHs && !this.failure) {
      await this.kv.put(KEY_HS, encodeJson(this.lazyHs)).catch(() => undefined);
      this.lazyHs = undefined;
    }
    this.failAll(outcomeUnknown("node stopped"));
  }

  // ---------------------------------------------------------------- status

  get role(): SoftState["role"] {
    return this.core.role;
  }

  /** The leader this node knows of (null during elections). Forward client requests there. */
  get leaderId(): NodeId | null {
    return this.core.lead;
  }

  get term(): number {
    return this.core.term;
  }

  status(): {
    id: NodeId;
    role: SoftState["role"];
    term: number;
    leader: NodeId | null;
    commit: number;
    applied: number;
    lastIndex: number;
    snapshotIndex: number;
    conf: ConfState;
  } {
    return {
      id: this.id,
      role: this.core.role,
      term: this.core.term,
      leader: this.core.lead,
      commit: this.core.log.committed,
      applied: this.appliedIndex,
      lastIndex: this.core.log.lastIndex(),
      snapshotIndex: this.snapIndex,
      conf: this.core.confState(),
    };
  }

  /** Read-only access to the core (tests check invariants on it). */
  get raft(): RaftCore {
    return this.core;
  }

  // ---------------------------------------------------------------- the loop

  private request(start: (resolve: (v: unknown) => void, reject: (e: unknown) => void) => void): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.stopped || this.failure) {
        reject(outcomeUnknown("node stopped"));
        return;
      }
      if (this.proposals.size + this.reads.size + this.queuedRequests >= this.maxPending) {
        reject(MpregError.overloaded("raft: too many pending requests"));
        return;
      }
      this.queuedRequests++;
      this.inbox.push(() => {
        this.queuedRequests--;
        try {
          start(resolve, reject);
        } catch (e) {
          reject(e);
        }
      });
      this.schedule();
    });
  }

  private schedule(): void {
    // `pumpActive` is set before `pump()` runs: an input queued while the loop runs its first
    // synchronous part (a proposal made by `onTick`, say) must not start a second loop.
    if (this.pumpActive || this.failure) return;
    this.pumpActive = true;
    this.pumping = this.pump().then(
      () => {
        this.pumping = undefined;
        this.pumpActive = false;
        // An input queued after the loop's last check (by a callback it resolved) still runs.
        if (this.inbox.length > 0) this.schedule();
      },
      (e: unknown) => {
        // A storage failure: stop taking part (safer than acting on state we could not persist).
        this.pumping = undefined;
        this.pumpActive = false;
        this.failure = e;
        this.stopped = true;
        if (this.timer) clearInterval(this.timer);
        log.error(`raft ${this.id}: storage failure, node stopped`, e);
        this.failAll(outcomeUnknown("storage failure"));
      },
    );
  }

  private async pump(): Promise<void> {
    for (;;) {
      while (this.inbox.length > 0) this.inbox.shift()!();
      if (!this.core.hasReady()) return;
      const rd = this.core.ready();
      await this.persist(rd);
      for (const m of rd.messages) this.opts.send(m.to, m);
      if (rd.snapshot) this.applySnapshot(rd.snapshot);
      for (const e of rd.committedEntries) this.applyEntry(e);
      if (rd.softState) this.onSoftState(rd.softState);
      for (const rs of rd.readStates) {
        const r = this.reads.get(rs.context);
        if (r) r.index = rs.index;
      }
      this.serveReads();
      this.core.advance(rd);
      this.opts.onReady?.(rd);
      if (this.appliedIndex - this.snapIndex >= this.snapshotEvery) await this.takeSnapshot();
    }
  }

  private async persist(rd: Ready): Promise<void> {
    if (rd.snapshot) {
      const s = rd.snapshot;
      await this.snaps.save({ index: s.meta.index, meta: { term: s.meta.term, conf: s.meta.conf }, data: s.data });
      // The received snapshot replaces the whole log; the next append must land at index+1.
      const first = await this.alog.firstIndex();
      const last = await this.alog.lastIndex();
      if (last >= first && last > 0) {
        await this.alog.truncateTail(first);
        this.nextLogIdx = first;
      }
      this.base = s.meta.index + 1 - this.nextLogIdx;
      await this.kv.put(KEY_BASE, encodeJson(this.base));
      this.storedLast = s.meta.index;
      this.snapIndex = s.meta.index;
    }
    // A change of the commit index alone need not be durable (Raft recomputes it), so it is
    // written together with the next write instead of costing an fsync of its own.
    let hs: HardState | undefined;
    if (rd.hardState) {
      const p = this.persistedHs;
      const commitOnly = p !== undefined && p.term === rd.hardState.term && p.vote === rd.hardState.vote;
      if (commitOnly && rd.entries.length === 0 && !rd.snapshot) this.lazyHs = rd.hardState;
      else hs = rd.hardState;
    }
    if (hs === undefined && rd.entries.length > 0 && this.lazyHs) hs = this.lazyHs;
    if (hs) this.lazyHs = undefined;
    if (rd.entries.length > 0) {
      const firstNew = rd.entries[0]!.index;
      if (firstNew <= this.storedLast) {
        await this.alog.truncateTail(firstNew - this.base);
        this.nextLogIdx = firstNew - this.base;
      }
      if (firstNew - this.base !== this.nextLogIdx) {
        throw new MpregError(ErrorCode.EXECUTION_FAILED, "raft: log append out of place", {
          first: firstNew,
          expected: this.nextLogIdx + this.base,
        });
      }
      // The entries and the hard state go to different stores: write them concurrently (one
      // group commit on the file backend). Recovery clamps a commit index that got ahead.
      const appended = this.alog.append(rd.entries.map(encodeEntry));
      const hsWrite = hs ? this.kv.put(KEY_HS, encodeJson(hs)) : undefined;
      await Promise.all([appended, hsWrite]);
      this.nextLogIdx += rd.entries.length;
      this.storedLast = rd.entries[rd.entries.length - 1]!.index;
    } else if (hs) {
      await this.kv.put(KEY_HS, encodeJson(hs));
    }
    if (hs) this.persistedHs = hs;
  }

  private track(index: number, p: PendingProposal): void {
    const old = this.proposals.get(index);
    if (old) {
      // Our earlier entry at this index was truncated away (committed entries never are).
      old.reject(new MpregError(ErrorCode.EXECUTION_FAILED, "raft: proposal was overwritten by another leader", { reason: "dropped" }));
    }
    this.proposals.set(index, p);
  }

  private applySnapshot(s: Snapshot): void {
    this.sm.restore(s.data);
    this.appliedIndex = s.meta.index;
    // Proposals covered by a snapshot cannot be matched to a result any more.
    for (const [idx, p] of this.proposals) {
      if (idx <= s.meta.index) {
        this.proposals.delete(idx);
        p.reject(outcomeUnknown("superseded by a snapshot"));
      }
    }
  }

  private applyEntry(e: Entry): void {
    let result: unknown;
    let failed: unknown;
    if (e.type === "normal" && e.data.length > 0) {
      try {
        result = this.sm.apply(e.data, e.index);
      } catch (err) {
        // A throwing state machine is a bug in it; every replica throws the same way.
        failed = err;
      }
    }
    this.appliedIndex = e.index;
    const p = this.proposals.get(e.index);
    if (!p) return;
    this.proposals.delete(e.index);
    if (p.term !== e.term) {
      p.reject(new MpregError(ErrorCode.EXECUTION_FAILED, "raft: proposal was overwritten by another leader", { reason: "dropped" }));
    } else if (failed !== undefined) {
      p.reject(failed);
    } else {
      p.resolve(result);
    }
  }

  private onSoftState(ss: SoftState): void {
    const wasLeader = this.soft.role === "leader";
    this.soft = ss;
    if (wasLeader && ss.role !== "leader") {
      // Unconfirmed reads were dropped by the core: they had no effect, so they fail cleanly.
      for (const [ctx, r] of this.reads) {
        if (r.index === undefined) {
          this.reads.delete(ctx);
          r.reject(notLeader(ss.lead));
        }
      }
    }
  }

  private serveReads(): void {
    for (const [ctx, r] of this.reads) {
      if (r.index !== undefined && r.index <= this.appliedIndex) {
        this.reads.delete(ctx);
        try {
          r.resolve(r.fn());
        } catch (e) {
          r.reject(e);
        }
      }
    }
  }

  private ageRequests(): void {
    for (const [idx, p] of this.proposals) {
      if (++p.age > this.timeoutTicks) {
        this.proposals.delete(idx);
        p.reject(outcomeUnknown("proposal timed out"));
      }
    }
    for (const [ctx, r] of this.reads) {
      if (++r.age > this.timeoutTicks) {
        this.reads.delete(ctx);
        r.reject(new MpregError(ErrorCode.TIMEOUT, "raft: read timed out", { reason: "read_timeout" }));
      }
    }
  }

  private async takeSnapshot(): Promise<void> {
    const index = this.appliedIndex;
    const data = this.sm.snapshot();
    const snap = this.core.compact(index, data);
    await this.snaps.save({ index, meta: { term: snap.meta.term, conf: snap.meta.conf }, data });
    await this.alog.dropHead(index - this.base);
    this.snapIndex = index;
  }

  private failAll(err: MpregError): void {
    for (const p of this.proposals.values()) p.reject(err);
    this.proposals.clear();
    for (const r of this.reads.values()) r.reject(err);
    this.reads.clear();
  }
}

const KEY_HS = new TextEncoder().encode("hardstate");
const KEY_BASE = new TextEncoder().encode("logbase");
