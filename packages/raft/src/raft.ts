import { ErrorCode, MpregError } from "@mpreg/envelope";
import { RaftLog } from "./log.js";
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  RaftRole,
  ReadState,
  Ready,
  Snapshot,
  SoftState,
} from "./types.js";

/** Tunables of the core. Times are in ticks; the driver decides how long a tick is. */
export interface RaftConfig {
  id: NodeId;
  /** Followers campaign after a random timeout in [electionTick, 2*electionTick). Default 10. */
  electionTick?: number;
  /** Leaders send heartbeats every heartbeatTick ticks. Default 1. Must be < electionTick. */
  heartbeatTick?: number;
  /** Ask for pre-votes before raising the term (default true). */
  preVote?: boolean;
  /** Leaders step down when a majority was not heard from within electionTick (default true). */
  checkQuorum?: boolean;
  /** Most entries in one append message (batching). Default 64. */
  maxMsgEntries?: number;
  /**
   * Most entry data bytes in one append message (at least one entry is always sent). Default
   * 4 MiB: an append must fit the transport's frame limit (a peer link refuses larger frames).
   */
  maxMsgBytes?: number;
  /** Most unacknowledged append messages per follower (pipelining window). Default 64. */
  maxInflight?: number;
  /** Most uncommitted entries a leader accepts before refusing proposals (OVERLOADED). Default 8192. */
  maxUncommitted?: number;
  /** Most ReadIndex requests outstanding; beyond it `readIndex` throws OVERLOADED. Default 4096. */
  maxPendingReads?: number;
  /** Most committed entries handed out in one Ready. Default 1024. */
  maxApplyBatch?: number;
  /**
   * A snapshot travels to a lagging follower in chunks of at most this many bytes (each chunk is
   * one message, so it must fit a transport frame). Default 1 MiB.
   */
  maxSnapshotChunkBytes?: number;
  /** Most snapshot chunks sent but not acknowledged per follower (flow control). Default 4. */
  maxSnapshotInflight?: number;
  /** Largest snapshot a follower accepts (it holds the chunks in memory until the last). Default 1 GiB. */
  maxSnapshotBytes?: number;
  /**
   * While a snapshot is on its way to a follower, the leader keeps the log after that snapshot
   * (so the follower can continue from the log once it is installed, even if the leader
   * compacted meanwhile), up to this many entries. Default 100,000.
   */
  maxRetainedEntries?: number;
  /** Random source in [0,1) for election timeouts (inject a seeded one for determinism). */
  random: () => number;
}

/** What the core is built from: the durable state (empty for a brand-new node). */
export interface RaftInitialState {
  hardState?: HardState;
  snapshot?: Snapshot;
  /** Entries after the snapshot, consecutive. */
  entries?: Entry[];
  /** Membership for a brand-new cluster (ignored when a snapshot or conf entries exist). */
  bootstrap?: ConfState;
}

type ProgressState = "probe" | "replicate" | "snapshot";

/** The leader's view of one follower. */
interface Progress {
  match: number;
  next: number;
  state: ProgressState;
  /** In probe state: one append is out, wait for its answer or a heartbeat answer. */
  probeSent: boolean;
  /** Last index of each append in flight (replicate state), oldest first. */
  inflights: number[];
  recentActive: boolean;
  pendingSnapshot: number;
  /** Ticks since the snapshot transfer last made progress; then it goes back to the last acknowledged byte. */
  snapshotTicks: number;
  /** The snapshot being sent (kept even if the leader takes a newer one, so the transfer can finish). */
  snap: Snapshot | undefined;
  /** Offset of the next chunk to send. */
  snapNext: number;
  /** Bytes the follower acknowledged holding (contiguous from 0). */
  snapAcked: number;
  /** Every chunk was sent at least once since the last rewind. */
  snapSentAll: boolean;
  /** Offset of the last rewind caused by a gap (at most one rewind per acknowledged offset). */
  snapRewound: number;
}

/** A snapshot arriving in chunks (follower side). */
interface IncomingSnapshot {
  index: number;
  term: number;
  total: number;
  received: number;
  chunks: Uint8Array[];
}

interface ReadRequest {
  index: number;
  context: string;
  /** Who asked: this node, or a follower whose `readIndex` message the leader serves. */
  from: NodeId;
  acks: Set<NodeId>;
}

const NONE = null;

/** Raised when a proposal or request reaches a node that is not the leader. */
export function notLeader(leader: NodeId | null): MpregError {
  return new MpregError(ErrorCode.UNREACHABLE, "raft: not the leader", { reason: "not_leader", leader });
}

/**
 * The Raft state machine. Pure: inputs are `step(message)`, `tick()`, `propose`, `readIndex`,
 * `transferLeader`; outputs are collected in `ready()`. No clock, randomness or I/O of its own.
 */
export class RaftCore {
  readonly id: NodeId;
  term = 0;
  vote: NodeId | null = NONE;
  role: RaftRole = "follower";
  lead: NodeId | null = NONE;
  readonly log: RaftLog;

  private voters: NodeId[] = [];
  private learners: NodeId[] = [];
  /** Membership after each applied conf entry past the snapshot (for snapshot metadata). */
  private confHistory: { index: number; conf: ConfState }[] = [];
  private snapConf: ConfState;
  private readonly prs = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();
  private msgs: Message[] = [];
  private readStates: ReadState[] = [];
  private readRequests: ReadRequest[] = [];
  /** Reads asked before this leader committed an entry of its term. */
  private pendingReads: { context: string; from: NodeId }[] = [];
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout: number;
  private leadTransferee: NodeId | null = NONE;
  private pendingConfIndex = 0;
  private pendingBcast = false;
  /** A snapshot made locally whose data we keep for lagging followers. */
  private snapshot: Snapshot | undefined;
  private prevHard: HardState;
  private prevSoft: SoftState;

  private readonly electionTick: number;
  private readonly heartbeatTick: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxMsgEntries: number;
  private readonly maxInflight: number;
  private readonly maxMsgBytes: number;
  private readonly maxUncommitted: number;
  private readonly maxPendingReads: number;
  private readonly maxApplyBatch: number;
  private readonly maxSnapshotChunkBytes: number;
  private readonly maxSnapshotInflight: number;
  private readonly maxSnapshotBytes: number;
  private readonly maxRetainedEntries: number;
  private incoming: IncomingSnapshot | undefined;
  private readonly random: () => number;

  constructor(cfg: RaftConfig, init: RaftInitialState = {}) {
    this.id = cfg.id;
    this.electionTick = cfg.electionTick ?? 10;
    this.heartbeatTick = cfg.heartbeatTick ?? 1;
    if (!(this.heartbeatTick >= 1 && this.electionTick > this.heartbeatTick)) {
      throw MpregError.invalid("raft: need 1 <= heartbeatTick < electionTick", "electionTick");
    }
    this.preVote = cfg.preVote ?? true;
    this.checkQuorum = cfg.checkQuorum ?? true;
    this.maxMsgEntries = cfg.maxMsgEntries ?? 64;
    this.maxMsgBytes = cfg.maxMsgBytes ?? 4 * 1024 * 1024;
    this.maxInflight = cfg.maxInflight ?? 64;
    this.maxUncommitted = cfg.maxUncommitted ?? 8192;
    this.maxPendingReads = cfg.maxPendingReads ?? 4096;
    this.maxApplyBatch = cfg.maxApplyBatch ?? 1024;
    this.maxSnapshotChunkBytes = cfg.maxSnapshotChunkBytes ?? 1024 * 1024;
    this.maxSnapshotInflight = cfg.maxSnapshotInflight ?? 4;
    this.maxSnapshotBytes = cfg.maxSnapshotBytes ?? 1024 * 1024 * 1024;
    this.maxRetainedEntries = cfg.maxRetainedEntries ?? 100_000;
    if (!(this.maxSnapshotChunkBytes >= 1 && this.maxSnapshotInflight >= 1)) {
      throw MpregError.invalid("raft: maxSnapshotChunkBytes and maxSnapshotInflight must be >= 1", "maxSnapshotChunkBytes");
    }
    this.random = cfg.random;

    const snap = init.snapshot;
    let entries = init.entries ?? [];
    let hsInit = init.hardState;
    const fresh = !snap && entries.length === 0 && (hsInit?.term ?? 0) === 0;
    if (fresh && init.bootstrap && init.bootstrap.voters.length > 0) {
      // A new cluster starts from identical conf entries at term 1 on every initial member, so
      // nodes that join later learn the membership from the log itself.
      const b = init.bootstrap;
      const ccs: ConfChange[] = [
        ...b.voters.map((node) => ({ type: "addVoter" as const, node })),
        ...b.learners.map((node) => ({ type: "addLearner" as const, node })),
      ];
      entries = ccs.map((conf, k) => ({ index: k + 1, term: 1, type: "conf", data: new Uint8Array(0), conf }));
      hsInit = { term: 1, vote: NONE, commit: entries.length };
    }
    const snapIndex = snap?.meta.index ?? 0;
    entries.forEach((e, k) => {
      if (e.index !== snapIndex + 1 + k) throw MpregError.invalid("raft: stored entries are not consecutive", "entries");
    });
    const hs = hsInit ?? { term: 0, vote: NONE, commit: 0 };
    this.log = new RaftLog(snapIndex, snap?.meta.term ?? 0, entries.slice(), Math.max(hs.commit, snapIndex));
    if (this.log.committed > this.log.lastIndex()) {
      throw MpregError.invalid("raft: stored commit index is beyond the stored log", "hardState.commit");
    }
    this.term = hs.term;
    this.vote = hs.vote;
    this.snapshot = snap;
    this.snapConf = snap ? cloneConf(snap.meta.conf) : { voters: [], learners: [] };
    this.setConf(this.snapConf);
    // Membership changes apply when committed; replay the committed ones we hold.
    for (let i = snapIndex + 1; i <= this.log.committed; i++) this.applyConfEntry(this.log.entry(i)!);
    // Bootstrap entries are not on disk yet: the first Ready hands them (and the hard state) out.
    if (fresh && entries.length > 0) this.log.stabled = 0;
    this.prevHard = fresh ? { term: 0, vote: NONE, commit: 0 } : this.hardState();
    this.prevSoft = { lead: NONE, role: "follower" };
    this.randomizedElectionTimeout = this.electionTick;
    this.becomeFollower(this.term, NONE);
  }

  // ---------------------------------------------------------------- public inputs

  /** Advances logical time by one tick. */
  tick(): void {
    if (this.role === "leader") this.tickHeartbeat();
    else this.tickElection();
  }

  /** Starts an election now (as if the election timeout elapsed). */
  campaign(): void {
    if (this.role !== "leader") this.hup(false);
  }

  /**
   * Appends a command to the leader's log; returns its position. Throws UNREACHABLE (with
   * `details.leader`) on a non-leader or during a leader transfer, OVERLOADED past maxUncommitted.
   */
  propose(data: Uint8Array): { index: number; term: number } {
    return this.proposeEntry("normal", data, undefined);
  }

  /** Proposes a single-server membership change (one at a time; see docs/raft.md). */
  proposeConfChange(cc: ConfChange): { index: number; term: number } {
    if (this.role === "leader") {
      if (this.pendingConfIndex > this.log.committed) {
        throw MpregError.overloaded("raft: a membership change is already in progress");
      }
      const voter = this.voters.includes(cc.node);
      const learner = this.learners.includes(cc.node);
      if (cc.type === "addVoter" && voter) throw MpregError.invalid(`raft: ${cc.node} is already a voter`, "node");
      if (cc.type === "addLearner" && (voter || learner)) {
        throw MpregError.invalid(`raft: ${cc.node} is already a member`, "node");
      }
      if (cc.type === "remove" && !voter && !learner) throw MpregError.invalid(`raft: ${cc.node} is not a member`, "node");
      if (cc.type === "remove" && voter && this.voters.length === 1) {
        throw MpregError.invalid("raft: cannot remove the last voter", "node");
      }
    }
    const r = this.proposeEntry("conf", new Uint8Array(0), { type: cc.type, node: cc.node });
    this.pendingConfIndex = r.index;
    return r;
  }

  /**
   * Asks for a read index. When it is confirmed (a quorum still follows the leader) a ReadState
   * with this context appears in a Ready; the read is linearizable once the state machine has
   * applied that index. On the leader the confirmation is local (a heartbeat round); a follower
   * (or learner) asks the leader it knows with a `readIndex` message and gets the leader's
   * confirmed index back, so reads can be served by every member. Without a known leader it
   * throws UNREACHABLE `not_leader`. A follower's request lost on the way is not retried here:
   * the caller times it out. Contexts must be unique (also across restarts), or a late answer
   * could release a newer read at an older index.
   */
  readIndex(context: string): void {
    if (this.role !== "leader") {
      if (this.lead === NONE || this.role !== "follower") throw notLeader(this.lead);
      this.send({ type: "readIndex", to: this.lead, context });
      return;
    }
    this.leaderRead(context, this.id, true);
  }

  /** The leader's side of a read for `from`; `local` requests throw when over the bound. */
  private leaderRead(context: string, from: NodeId, local: boolean): void {
    if (this.readRequests.length + this.pendingReads.length >= this.maxPendingReads) {
      if (local) throw MpregError.overloaded("raft: too many pending reads");
      return; // a follower's request: dropped, its caller times out
    }
    if (this.log.term(this.log.committed) !== this.term) {
      // The commit index of a fresh leader may lag; wait for the no-op to commit (Raft §6.4).
      this.pendingReads.push({ context, from });
      return;
    }
    this.startRead(context, from);
  }

  /** Hands leadership to `target` (a voter): it is caught up, then told to campaign at once. */
  transferLeader(target: NodeId): void {
    if (this.role !== "leader") throw notLeader(this.lead);
    if (target === this.id) return;
    if (!this.voters.includes(target)) throw MpregError.invalid(`raft: ${target} is not a voter`, "target");
    if (this.leadTransferee === target) return;
    this.leadTransferee = target;
    this.electionElapsed = 0; // the transfer is abandoned after an election timeout
    const pr = this.prs.get(target)!;
    if (pr.match === this.log.lastIndex()) this.send({ type: "timeoutNow", to: target });
    else this.sendAppend(target);
  }

  /**
   * Records that the application saved a snapshot covering entries up to `index` (<= applied)
   * and lets the log drop them. `data` is kept to catch up lagging followers.
   */
  compact(index: number, data: Uint8Array): Snapshot {
    if (index > this.log.applied) throw MpregError.invalid("raft: cannot compact past the applied index", "index");
    if (index <= Math.max(this.log.snapIndex, this.snapshot?.meta.index ?? 0)) {
      throw MpregError.invalid("raft: already compacted to that index", "index");
    }
    const term = this.log.term(index)!;
    let conf = this.snapConf;
    for (const h of this.confHistory) if (h.index <= index) conf = h.conf;
    this.confHistory = this.confHistory.filter((h) => h.index > index);
    this.snapConf = cloneConf(conf);
    const snap: Snapshot = { meta: { index, term, conf: cloneConf(conf) }, data };
    this.snapshot = snap;
    // Keep the log after a snapshot still on its way to a follower: once installed, the
    // follower continues from the log instead of needing yet another (newer) snapshot.
    let keepFrom = index;
    for (const pr of this.prs.values()) {
      if (pr.state === "snapshot" && pr.snap) keepFrom = Math.min(keepFrom, pr.snap.meta.index);
    }
    if (index - keepFrom > this.maxRetainedEntries) keepFrom = index;
    if (keepFrom > this.log.snapIndex) this.log.compact(keepFrom, this.log.term(keepFrom)!);
    return snap;
  }

  /** Feeds one message received from a peer. */
  step(m: Message): void {
    if (m.to !== this.id) return;
    if (m.term > this.term) {
      if (m.type === "vote" || m.type === "preVote") {
        const force = m.context === "transfer";
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTick;
        // A node that hears from a live leader ignores campaigners: this keeps a partitioned
        // node that returns with a higher term from disrupting the cluster.
        if (!force && inLease) return;
      }
      if (m.type === "preVote" || (m.type === "preVoteResp" && !m.reject)) {
        // Pre-votes do not change terms: neither the request nor a granted answer.
      } else {
        const leaderMsg = m.type === "app" || m.type === "heartbeat" || m.type === "snap";
        this.becomeFollower(m.term, leaderMsg ? m.from : NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === "app" || m.type === "heartbeat")) {
        // Tell a stale leader about the newer term so it steps down.
        this.send({ type: "appResp", to: m.from });
      } else if (m.type === "preVote") {
        this.send({ type: "preVoteResp", to: m.from, reject: true });
      }
      return;
    }

    if (m.type === "vote" || m.type === "preVote") {
      const canVote =
        this.vote === m.from ||
        (this.vote === NONE && this.lead === NONE) ||
        (m.type === "preVote" && m.term > this.term);
      if (canVote && this.log.isUpToDate(m.index ?? 0, m.logTerm ?? 0)) {
        // A pre-vote grant carries the asked-for term so the pre-candidate can count it.
        this.msgs.push({ type: m.type === "vote" ? "voteResp" : "preVoteResp", from: this.id, to: m.from, term: m.term });
        if (m.type === "vote") {
          this.electionElapsed = 0;
          this.vote = m.from;
        }
      } else {
        this.send({ type: m.type === "vote" ? "voteResp" : "preVoteResp", to: m.from, reject: true });
      }
      return;
    }

    switch (this.role) {
      case "leader":
        this.stepLeader(m);
        break;
      case "candidate":
      case "preCandidate":
        this.stepCandidate(m);
        break;
      case "follower":
        this.stepFollower(m);
        break;
    }
  }

  // ---------------------------------------------------------------- Ready

  /** True when `ready()` has something to hand out. */
  hasReady(): boolean {
    const hs = this.hardState();
    const ss = this.softState();
    return (
      this.pendingBcast ||
      this.msgs.length > 0 ||
      this.readStates.length > 0 ||
      this.log.unstableEntries().length > 0 ||
      this.log.pendingSnapshot !== undefined ||
      this.log.committed > this.log.applied ||
      !hardEqual(hs, this.prevHard) ||
      ss.lead !== this.prevSoft.lead ||
      ss.role !== this.prevSoft.role
    );
  }

  /** Collects the outputs (see `Ready` for the processing contract). Call `advance` after. */
  ready(): Ready {
    if (this.pendingBcast) {
      this.pendingBcast = false;
      this.bcastAppend();
    }
    const rd: Ready = {
      entries: this.log.unstableEntries(),
      committedEntries: this.nextCommitted(),
      messages: this.msgs,
      readStates: this.readStates,
    };
    this.msgs = [];
    this.readStates = [];
    const hs = this.hardState();
    if (!hardEqual(hs, this.prevHard)) rd.hardState = hs;
    const ss = this.softState();
    if (ss.lead !== this.prevSoft.lead || ss.role !== this.prevSoft.role) rd.softState = ss;
    if (this.log.pendingSnapshot) rd.snapshot = this.log.pendingSnapshot;
    return rd;
  }

  /** Acknowledges that a Ready was persisted, sent and applied. */
  advance(rd: Ready): void {
    if (rd.hardState) this.prevHard = rd.hardState;
    if (rd.softState) this.prevSoft = rd.softState;
    if (rd.snapshot) {
      if (this.log.pendingSnapshot === rd.snapshot) this.log.pendingSnapshot = undefined;
      this.snapshot = rd.snapshot;
      this.log.applied = Math.max(this.log.applied, rd.snapshot.meta.index);
    }
    const lastEnt = rd.entries[rd.entries.length - 1];
    if (lastEnt) this.log.stableTo(lastEnt.index, lastEnt.term);
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied) this.log.applied = Math.max(this.log.applied, lastApplied.index);
    if (this.role === "leader") {
      // The leader counts itself only for entries that are on its own disk.
      const self = this.prs.get(this.id);
      if (self && self.match < this.log.stabled) {
        self.match = this.log.stabled;
        if (this.maybeCommit()) this.bcastAppend();
      }
    }
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { lead: this.lead, role: this.role };
  }

  /** The current membership. */
  confState(): ConfState {
    return { voters: this.voters.slice(), learners: this.learners.slice() };
  }

  /** The latest snapshot this node holds (made locally or received). */
  latestSnapshot(): Snapshot | undefined {
    return this.snapshot;
  }

  /** For tests and status: a follower's replication progress as the leader sees it. */
  progress(id: NodeId): { match: number; next: number; state: ProgressState } | undefined {
    const p = this.prs.get(id);
    return p ? { match: p.match, next: p.next, state: p.state } : undefined;
  }

  get leadTransferTarget(): NodeId | null {
    return this.leadTransferee;
  }

  // ---------------------------------------------------------------- roles

  private becomeFollower(term: number, lead: NodeId | null): void {
    this.reset(term);
    this.role = "follower";
    this.lead = lead;
  }

  private becomePreCandidate(): void {
    // Pre-candidates keep term and vote; only the role and tally change.
    this.votes = new Map();
    this.role = "preCandidate";
    this.lead = NONE;
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = "candidate";
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.incoming = undefined;
    this.role = "leader";
    this.lead = this.id;
    const self = this.prs.get(this.id);
    if (self) {
      self.match = this.log.stabled;
      self.state = "replicate";
    }
    this.pendingConfIndex = this.log.lastIndex();
    // A no-op of the new term lets earlier-term entries commit (Raft §5.4.2).
    this.appendEntries([{ index: 0, term: 0, type: "normal", data: new Uint8Array(0) }]);
    this.bcastAppend();
  }

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTick + Math.floor(this.random() * this.electionTick);
    this.votes = new Map();
    this.leadTransferee = NONE;
    this.readRequests = [];
    this.pendingReads = [];
    this.prs.clear();
    for (const id of [...this.voters, ...this.learners]) this.prs.set(id, this.newProgress(id));
  }

  private newProgress(id: NodeId): Progress {
    return {
      match: id === this.id ? this.log.stabled : 0,
      next: this.log.lastIndex() + 1,
      state: "probe",
      probeSent: false,
      inflights: [],
      recentActive: id === this.id,
      pendingSnapshot: 0,
      snapshotTicks: 0,
      snap: undefined,
      snapNext: 0,
      snapAcked: 0,
      snapSentAll: false,
      snapRewound: -1,
    };
  }

  private promotable(): boolean {
    return this.voters.includes(this.id) && this.log.pendingSnapshot === undefined;
  }

  // ---------------------------------------------------------------- ticks

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTick) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        if (!this.quorumActive()) {
          this.becomeFollower(this.term, NONE);
          return;
        }
      }
      this.leadTransferee = NONE; // a transfer that did not finish in time is abandoned
    }
    for (const [id, pr] of this.prs) {
      if (id !== this.id && pr.state === "snapshot" && ++pr.snapshotTicks > this.electionTick) {
        pr.snapshotTicks = 0;
        if (pr.recentActive) {
          // Chunks or their answers were lost: go back to the last acknowledged byte. (After
          // the last chunk, a follower that installed it answers with an append response.)
          pr.snapNext = pr.snapAcked;
          pr.snapSentAll = false;
          this.sendSnapshotChunks(id, pr);
        } else {
          // The follower does not answer at all: probe again (which resends if still needed).
          this.becomeProbe(pr);
        }
      }
    }
    if (this.heartbeatElapsed >= this.heartbeatTick) {
      this.heartbeatElapsed = 0;
      // Carrying the newest pending read lets a read whose heartbeat was lost still complete.
      this.bcastHeartbeat(this.readRequests[this.readRequests.length - 1]?.context);
    }
  }

  /** True when a majority of voters (self included) was heard from; resets the marks. */
  private quorumActive(): boolean {
    let active = 0;
    for (const id of this.voters) {
      const pr = this.prs.get(id);
      if (!pr) continue;
      if (id === this.id || pr.recentActive) active++;
    }
    for (const [id, pr] of this.prs) if (id !== this.id) pr.recentActive = false;
    return active >= this.quorum();
  }

  private quorum(): number {
    return Math.floor(this.voters.length / 2) + 1;
  }

  // ---------------------------------------------------------------- elections

  private hup(force: boolean): void {
    if (!this.promotable()) return;
    if (this.preVote && !force) this.runElection("preVote", false);
    else this.runElection("vote", force);
  }

  private runElection(kind: "preVote" | "vote", force: boolean): void {
    let term: number;
    if (kind === "preVote") {
      this.becomePreCandidate();
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      term = this.term;
    }
    if (this.poll(this.id, true) === "won") {
      // Single-voter cluster.
      if (kind === "preVote") this.runElection("vote", force);
      else this.becomeLeader();
      return;
    }
    for (const id of this.voters) {
      if (id === this.id) continue;
      const m: Message = {
        type: kind,
        from: this.id,
        to: id,
        term,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
      };
      if (force) m.context = "transfer";
      this.msgs.push(m);
    }
  }

  private poll(id: NodeId, granted: boolean): "won" | "lost" | "pending" {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    let yes = 0;
    let no = 0;
    for (const v of this.voters) {
      const g = this.votes.get(v);
      if (g === true) yes++;
      else if (g === false) no++;
    }
    const q = this.quorum();
    if (yes >= q) return "won";
    if (no >= this.voters.length - q + 1) return "lost";
    return "pending";
  }

  private stepCandidate(m: Message): void {
    const myResp = this.role === "preCandidate" ? "preVoteResp" : "voteResp";
    switch (m.type) {
      case "app":
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case "heartbeat":
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case "snap":
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case "preVoteResp":
      case "voteResp": {
        if (m.type !== myResp) return;
        const r = this.poll(m.from, !m.reject);
        if (r === "won") {
          if (this.role === "preCandidate") this.runElection("vote", false);
          else this.becomeLeader();
        } else if (r === "lost") {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      case "timeoutNow":
        return;
      default:
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case "app":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case "heartbeat":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case "snap":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case "timeoutNow":
        // The leader hands over: campaign at once, skipping pre-vote and the lease check.
        this.hup(true);
        return;
      case "readIndexResp":
        // Only an answer of the current term (step dropped older ones) from the current leader.
        if (m.from === this.lead && m.context !== undefined && m.index !== undefined) {
          this.readStates.push({ index: m.index, context: m.context });
        }
        return;
      default:
        return;
    }
  }

  // ---------------------------------------------------------------- follower side

  private handleAppend(m: Message): void {
    const prev = m.index ?? 0;
    if (prev < this.log.committed) {
      // Everything up to our commit index is settled; report it so the leader moves on.
      this.send({ type: "appResp", to: m.from, index: this.log.committed });
      return;
    }
    if (this.log.matchTerm(prev, m.logTerm ?? 0)) {
      const lastNew = this.log.maybeAppend(prev, m.entries ?? []);
      // The log reached past a partial snapshot: it is of no use any more.
      if (this.incoming && lastNew >= this.incoming.index) this.incoming = undefined;
      this.commitTo(Math.min(m.commit ?? 0, lastNew));
      this.send({ type: "appResp", to: m.from, index: lastNew });
      return;
    }
    const hintIndex = this.log.findConflictByTerm(Math.min(prev, this.log.lastIndex()), m.logTerm ?? 0);
    this.send({
      type: "appResp",
      to: m.from,
      index: prev,
      reject: true,
      rejectHint: hintIndex,
      logTerm: this.log.term(hintIndex) ?? 0,
    });
  }

  private handleHeartbeat(m: Message): void {
    // The leader sends min(our match, its commit), so this never exceeds what we hold.
    const c = Math.min(m.commit ?? 0, this.log.lastIndex());
    this.commitTo(c);
    const resp: Message = { type: "heartbeatResp", from: this.id, to: m.from, term: this.term };
    if (m.context !== undefined) resp.context = m.context;
    this.msgs.push(resp);
  }

  /**
   * One chunk of a snapshot (`offset`, `total`; a message without them holds the whole
   * snapshot). Chunks are taken in order only; each is answered with `snapResp{index, offset:
   * bytes held}` (`reject` when a chunk is missing before this one), the last one with the
   * append response of the installed snapshot. A partial transfer of the same snapshot is kept,
   * so a transfer restarted by the leader resumes where it stopped.
   */
  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (!s) return;
    const offset = m.offset ?? 0;
    const total = m.total ?? s.data.length;
    const { index, term } = s.meta;
    if (index <= this.log.committed || this.log.matchTerm(index, term)) {
      // Nothing to install (restore only commits up to it): say how far we are.
      this.incoming = undefined;
      this.restore(s);
      this.send({ type: "appResp", to: m.from, index: this.log.committed });
      return;
    }
    if (total > this.maxSnapshotBytes || offset + s.data.length > total) return; // refused: too large or malformed
    let inc = this.incoming;
    if (!inc || inc.index !== index || inc.term !== term || inc.total !== total) {
      if (offset !== 0) {
        this.send({ type: "snapResp", to: m.from, index, offset: 0, reject: true });
        return;
      }
      inc = this.incoming = { index, term, total, received: 0, chunks: [] };
    }
    if (offset !== inc.received) {
      this.send({ type: "snapResp", to: m.from, index, offset: inc.received, reject: offset > inc.received });
      return;
    }
    if (s.data.length > 0) inc.chunks.push(s.data);
    inc.received += s.data.length;
    if (inc.received < total) {
      this.send({ type: "snapResp", to: m.from, index, offset: inc.received });
      return;
    }
    this.incoming = undefined;
    const data = inc.chunks.length === 1 ? inc.chunks[0]! : concatBytes(inc.chunks, total);
    if (this.restore({ meta: s.meta, data })) this.send({ type: "appResp", to: m.from, index: this.log.lastIndex() });
    else this.send({ type: "appResp", to: m.from, index: this.log.committed });
  }

  private restore(s: Snapshot): boolean {
    if (s.meta.index <= this.log.committed) return false;
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      // We already hold that entry: just commit up to it, keeping what follows.
      this.commitTo(s.meta.index);
      return false;
    }
    this.log.restore(s);
    this.snapConf = cloneConf(s.meta.conf);
    this.confHistory = [];
    this.setConf(s.meta.conf);
    for (const id of [...this.voters, ...this.learners]) if (!this.prs.has(id)) this.prs.set(id, this.newProgress(id));
    for (const id of [...this.prs.keys()]) if (!this.voters.includes(id) && !this.learners.includes(id)) this.prs.delete(id);
    return true;
  }

  private commitTo(i: number): void {
    const old = this.log.committed;
    if (!this.log.commitTo(i)) return;
    for (let k = old + 1; k <= i; k++) {
      const e = this.log.entry(k);
      if (e) this.applyConfEntry(e);
    }
  }

  // ---------------------------------------------------------------- leader side

  private proposeEntry(type: "normal" | "conf", data: Uint8Array, conf: ConfChange | undefined) {
    if (this.role !== "leader") throw notLeader(this.lead);
    if (this.leadTransferee !== NONE) {
      throw new MpregError(ErrorCode.UNREACHABLE, "raft: leadership transfer in progress", {
        reason: "transferring",
        leader: this.leadTransferee,
      });
    }
    if (this.log.lastIndex() - this.log.committed >= this.maxUncommitted) throw MpregError.overloaded("raft: too many uncommitted entries");
    const e: Entry = { index: 0, term: 0, type, data };
    if (conf) e.conf = conf;
    this.appendEntries([e]);
    // Sent when the Ready is collected, so proposals made together share one append (batching).
    this.pendingBcast = true;
    return { index: e.index, term: e.term };
  }

  private appendEntries(es: Entry[]): void {
    let li = this.log.lastIndex();
    for (const e of es) {
      e.term = this.term;
      e.index = ++li;
    }
    this.log.truncateAndAppend(es);
    // A single-voter leader commits as soon as the entry is persisted (see advance).
  }

  private stepLeader(m: Message): void {
    const pr = this.prs.get(m.from);
    if (!pr) return;
    pr.recentActive = true;
    switch (m.type) {
      case "appResp":
        this.handleAppendResponse(m, pr);
        return;
      case "heartbeatResp":
        pr.probeSent = false;
        if (pr.state === "replicate" && pr.inflights.length >= this.maxInflight) pr.inflights.shift();
        if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
        if (m.context !== undefined) this.ackRead(m.from, m.context);
        return;
      case "readIndex":
        if (m.context !== undefined) this.leaderRead(m.context, m.from, false);
        return;
      case "snapResp":
        this.handleSnapshotResponse(m, pr);
        return;
      default:
        return;
    }
  }

  /** Flow control of a snapshot transfer: the follower says how many bytes it holds. */
  private handleSnapshotResponse(m: Message, pr: Progress): void {
    const snap = pr.snap;
    if (pr.state !== "snapshot" || !snap || m.index !== snap.meta.index) return;
    const total = snap.data.length;
    const off = Math.min(m.offset ?? 0, total);
    pr.snapshotTicks = 0;
    if (m.reject) {
      // A chunk was lost or reordered (the follower takes them in order), or the follower lost
      // what it held (it restarted): go back to what it holds, once per offset. A stale
      // rejection only costs a few chunks sent again.
      if (pr.snapNext > off && pr.snapRewound !== off) {
        pr.snapRewound = off;
        pr.snapAcked = off;
        pr.snapNext = off;
        pr.snapSentAll = false;
      }
    } else if (off > pr.snapAcked) {
      pr.snapAcked = off;
      if (pr.snapNext < off) {
        // The follower already held more (a transfer resumed): skip what it has.
        pr.snapNext = off;
        pr.snapSentAll = false;
      }
    }
    this.sendSnapshotChunks(m.from, pr);
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    const idx = m.index ?? 0;
    if (m.reject) {
      let next = m.rejectHint ?? 0;
      if ((m.logTerm ?? 0) > 0) {
        // Skip the follower's whole divergent term at once instead of one entry per round trip.
        next = this.log.findConflictByTerm(next, m.logTerm ?? 0);
      }
      if (this.maybeDecrTo(pr, idx, next)) {
        if (pr.state === "replicate") this.becomeProbe(pr);
        this.sendAppend(m.from);
      }
      return;
    }
    const oldPaused = this.isPaused(pr);
    if (!this.maybeUpdate(pr, idx)) return;
    if (pr.state === "probe") this.becomeReplicate(pr);
    else if (pr.state === "snapshot" && pr.match >= pr.pendingSnapshot) {
      pr.snap = undefined; // installed: nothing to resume
      this.becomeProbe(pr);
      this.becomeReplicate(pr);
    } else if (pr.state === "replicate") {
      while (pr.inflights.length > 0 && pr.inflights[0]! <= idx) pr.inflights.shift();
    }
    if (this.maybeCommit()) {
      this.bcastAppend();
    } else if (oldPaused || pr.next <= this.log.lastIndex()) {
      this.sendAppend(m.from);
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send({ type: "timeoutNow", to: m.from });
    }
  }

  private maybeUpdate(pr: Progress, n: number): boolean {
    let updated = false;
    if (pr.match < n) {
      pr.match = n;
      updated = true;
      pr.probeSent = false;
    }
    pr.next = Math.max(pr.next, n + 1);
    return updated;
  }

  private maybeDecrTo(pr: Progress, rejected: number, matchHint: number): boolean {
    if (pr.state === "replicate") {
      if (rejected <= pr.match) return false; // stale rejection
      pr.next = pr.match + 1;
      return true;
    }
    if (pr.next - 1 !== rejected) return false; // not an answer to our latest probe
    pr.next = Math.max(Math.min(rejected, matchHint + 1), pr.match + 1);
    pr.probeSent = false;
    return true;
  }

  private becomeProbe(pr: Progress): void {
    if (pr.state === "snapshot") pr.next = Math.max(pr.match + 1, pr.pendingSnapshot + 1);
    else pr.next = pr.match + 1;
    pr.state = "probe";
    pr.probeSent = false;
    pr.inflights = [];
    pr.pendingSnapshot = 0;
  }

  private becomeReplicate(pr: Progress): void {
    pr.state = "replicate";
    pr.next = pr.match + 1;
    pr.inflights = [];
    pr.probeSent = false;
  }

  private isPaused(pr: Progress): boolean {
    if (pr.state === "probe") return pr.probeSent;
    if (pr.state === "replicate") return pr.inflights.length >= this.maxInflight;
    return true;
  }

  private bcastAppend(): void {
    if (this.role !== "leader") return;
    for (const id of this.prs.keys()) if (id !== this.id) this.sendAppend(id);
  }

  /** Sends what `to` is missing: entries (batched, pipelined) or the snapshot. */
  private sendAppend(to: NodeId): void {
    const pr = this.prs.get(to);
    if (!pr || this.isPaused(pr)) return;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    const ents = this.log.slice(pr.next, this.log.lastIndex() + 1, this.maxMsgEntries, this.maxMsgBytes);
    if (prevTerm === undefined || ents === undefined) {
      this.sendSnapshot(to, pr);
      return;
    }
    this.msgs.push({
      type: "app",
      from: this.id,
      to,
      term: this.term,
      index: prevIndex,
      logTerm: prevTerm,
      entries: ents,
      commit: this.log.committed,
    });
    const last = ents[ents.length - 1];
    if (pr.state === "replicate") {
      if (last) {
        pr.next = last.index + 1;
        pr.inflights.push(last.index);
      }
    } else if (pr.state === "probe") {
      pr.probeSent = true;
    }
  }

  private sendSnapshot(to: NodeId, pr: Progress): void {
    // The snapshot of an interrupted transfer to this follower while the log after it is still
    // here (the follower may hold part of it: it says so and the transfer resumes), else the latest.
    const snap = pr.snap && pr.snap.meta.index >= this.log.snapIndex ? pr.snap : this.snapshot;
    if (!snap || !pr.recentActive) {
      // Do not push a (possibly large) snapshot to a peer that is not answering.
      return;
    }
    pr.state = "snapshot";
    pr.pendingSnapshot = snap.meta.index;
    pr.snapshotTicks = 0;
    pr.inflights = [];
    pr.snap = snap;
    pr.snapNext = 0;
    pr.snapAcked = 0;
    pr.snapSentAll = false;
    pr.snapRewound = -1;
    this.sendSnapshotChunks(to, pr);
  }

  /** Sends the next chunks of a snapshot, up to `maxSnapshotInflight` unacknowledged ones. */
  private sendSnapshotChunks(to: NodeId, pr: Progress): void {
    const snap = pr.snap;
    if (!snap) return;
    const total = snap.data.length;
    const window = this.maxSnapshotInflight * this.maxSnapshotChunkBytes;
    while (!pr.snapSentAll && pr.snapNext - pr.snapAcked < window) {
      const end = Math.min(pr.snapNext + this.maxSnapshotChunkBytes, total);
      this.msgs.push({
        type: "snap",
        from: this.id,
        to,
        term: this.term,
        snapshot: { meta: snap.meta, data: snap.data.subarray(pr.snapNext, end) },
        offset: pr.snapNext,
        total,
      });
      pr.snapNext = end;
      if (end >= total) pr.snapSentAll = true;
    }
  }

  private bcastHeartbeat(context: string | undefined): void {
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      const m: Message = {
        type: "heartbeat",
        from: this.id,
        to: id,
        term: this.term,
        commit: Math.min(pr.match, this.log.committed),
      };
      if (context !== undefined) m.context = context;
      this.msgs.push(m);
    }
  }

  /** Commits the highest index a quorum of voters holds, if it is of the current term. */
  private maybeCommit(): boolean {
    let any = false;
    // Loop: a membership change applied on commit can change the quorum.
    while (this.role === "leader") {
      const matches = this.voters.map((id) => this.prs.get(id)?.match ?? 0).sort((a, b) => b - a);
      const q = matches[this.quorum() - 1] ?? 0;
      if (q <= this.log.committed || this.log.term(q) !== this.term) break;
      this.commitTo(q);
      any = true;
    }
    if (any && this.role === "leader" && this.pendingReads.length > 0) {
      const reads = this.pendingReads;
      this.pendingReads = [];
      for (const r of reads) this.startRead(r.context, r.from);
    }
    return any;
  }

  private startRead(context: string, from: NodeId): void {
    if (this.quorum() === 1) {
      this.releaseRead({ index: this.log.committed, context, from, acks: new Set() });
      return;
    }
    this.readRequests.push({ index: this.log.committed, context, from, acks: new Set([this.id]) });
    this.bcastHeartbeat(context);
  }

  /** A confirmed read: a ReadState here, or the answer to the follower that asked. */
  private releaseRead(r: ReadRequest): void {
    if (r.from === this.id) this.readStates.push({ index: r.index, context: r.context });
    else this.send({ type: "readIndexResp", to: r.from, index: r.index, context: r.context });
  }

  private ackRead(from: NodeId, context: string): void {
    const pos = this.readRequests.findIndex((r) => r.context === context);
    if (pos < 0) return;
    const req = this.readRequests[pos]!;
    if (this.voters.includes(from)) req.acks.add(from);
    let n = 0;
    for (const v of this.voters) if (req.acks.has(v)) n++;
    if (n < this.quorum()) return;
    // A quorum acknowledging this heartbeat also confirms every earlier request.
    const done = this.readRequests.splice(0, pos + 1);
    for (const r of done) this.releaseRead(r);
  }

  // ---------------------------------------------------------------- membership

  private applyConfEntry(e: Entry): void {
    if (e.type !== "conf" || !e.conf) return;
    const cc = e.conf;
    const voters = this.voters.filter((v) => v !== cc.node);
    const learners = this.learners.filter((v) => v !== cc.node);
    if (cc.type === "addVoter") voters.push(cc.node);
    else if (cc.type === "addLearner") learners.push(cc.node);
    const conf = { voters, learners };
    this.confHistory.push({ index: e.index, conf: cloneConf(conf) });
    this.setConf(conf);
    if (this.role === "leader") {
      for (const id of [...voters, ...learners]) {
        if (!this.prs.has(id)) {
          const pr = this.newProgress(id);
          pr.recentActive = true; // give a new member one election timeout to answer
          this.prs.set(id, pr);
        }
      }
      for (const id of [...this.prs.keys()]) {
        if (!voters.includes(id) && !learners.includes(id)) this.prs.delete(id);
      }
      if (!voters.includes(this.id)) {
        // Removed from the voters: stop leading; the others elect a new leader.
        this.becomeFollower(this.term, NONE);
        return;
      }
      if (this.leadTransferee !== NONE && !voters.includes(this.leadTransferee)) this.leadTransferee = NONE;
    }
  }

  private setConf(c: ConfState): void {
    this.voters = c.voters.slice();
    this.learners = c.learners.slice();
  }

  // ---------------------------------------------------------------- helpers

  private nextCommitted(): Entry[] {
    if (this.log.pendingSnapshot) return [];
    // Entries are applied only once they are on disk here (they reach disk before apply in
    // the same Ready, so unstable ones may be included).
    const lo = this.log.applied + 1;
    const hi = this.log.committed + 1;
    if (lo >= hi) return [];
    return this.log.slice(lo, hi, this.maxApplyBatch) ?? [];
  }

  private send(m: { type: Message["type"]; to: NodeId } & Partial<Message>): void {
    this.msgs.push({ ...m, from: this.id, term: this.term } as Message);
  }
}

function hardEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function concatBytes(chunks: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function cloneConf(c: ConfState): ConfState {
  return { voters: c.voters.slice(), learners: c.learners.slice() };
}
