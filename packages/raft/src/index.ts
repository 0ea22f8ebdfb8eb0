export type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  MessageType,
  NodeId,
  RaftRole,
  ReadState,
  Ready,
  Snapshot,
  SnapshotMeta,
  SoftState,
} from "./types.js";
export { RaftCore, notLeader, type RaftConfig, type RaftInitialState } from "./raft.js";
export { RaftLog } from "./log.js";
export { RaftNode, outcomeUnknown, type RaftNodeOptions, type StateMachine } from "./node.js";
export {
  KvStateMachine,
  encodeKvCommand,
  type KvCommand,
  type KvLimits,
  type KvResult,
  type KvValue,
} from "./kv.js";
export { RaftKV } from "./raft-kv.js";
export { decodeEntry, encodeEntry } from "./codec.js";
export { validateMessage } from "./validate.js";
export { onLeader, onMember, type LeaderView, type OnLeaderOptions, type OnMemberOptions } from "./leader.js";
