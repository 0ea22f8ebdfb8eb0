/**
 * Plain-data types of the Raft core. Every value here is made of strings, numbers, booleans,
 * null, arrays, plain objects and Uint8Array, so it round-trips through MessagePack unchanged
 * (the schema is documented in docs/raft.md).
 */

/** A member id (the server's node id). */
export type NodeId = string;

/** One single-server membership change. */
export interface ConfChange {
  type: "addVoter" | "addLearner" | "remove";
  node: NodeId;
}

/** The membership: voters decide elections and commitment; learners only receive the log. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

/** One log entry. A `normal` entry with empty data is the no-op a new leader appends. */
export interface Entry {
  index: number;
  term: number;
  type: "normal" | "conf";
  /** Application command bytes (`normal`). */
  data: Uint8Array;
  /** The membership change (`conf`). */
  conf?: ConfChange;
}

/** What must be on disk before any message that depends on it is sent. */
export interface HardState {
  term: number;
  vote: NodeId | null;
  commit: number;
}

export interface SnapshotMeta {
  index: number;
  term: number;
  conf: ConfState;
}

/** A state-machine image covering every entry up to and including `meta.index`. */
export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

export type MessageType =
  | "app"
  | "appResp"
  | "vote"
  | "voteResp"
  | "preVote"
  | "preVoteResp"
  | "heartbeat"
  | "heartbeatResp"
  | "snap"
  | "timeoutNow"
  | "readIndex"
  | "readIndexResp"
  | "snapResp";

/**
 * A Raft message. One flat shape for every type (as etcd does); fields not used by a type are
 * absent. `index`/`logTerm` name the entry preceding `entries` for `app`, the candidate's last
 * entry for votes, and the acknowledged (or rejected) index for `appResp`.
 */
export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  logTerm?: number;
  index?: number;
  entries?: Entry[];
  commit?: number;
  reject?: boolean;
  /** For a rejected append: the follower's guess of the last index that may match. */
  rejectHint?: number;
  /** `snap`: the snapshot's metadata and one chunk of its data. */
  snapshot?: Snapshot;
  /** `snap`: byte offset of the chunk; `snapResp`: bytes the follower holds (contiguous). */
  offset?: number;
  /** `snap`: the snapshot's total size in bytes. */
  total?: number;
  /**
   * ReadIndex request id carried by heartbeats, `readIndex` (a follower asking the leader) and
   * `readIndexResp` (the leader's answer, with the read index in `index`); "transfer" on votes
   * caused by leader transfer.
   */
  context?: string;
}

export type RaftRole = "follower" | "preCandidate" | "candidate" | "leader";

/** Volatile state worth showing to the application. */
export interface SoftState {
  lead: NodeId | null;
  role: RaftRole;
}

/** A ReadIndex answer: once `index` is applied, a read tagged `context` is linearizable. */
export interface ReadState {
  index: number;
  context: string;
}

/**
 * The output of the core since the previous `advance`. Contract: persist `snapshot`, then
 * truncate the stored log at `entries[0].index` and append `entries`, then persist `hardState`;
 * only then send `messages`; apply `snapshot` and then `committedEntries` in order; finally call
 * `advance(ready)`.
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  readStates: ReadState[];
}
