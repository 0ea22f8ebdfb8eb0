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
  decodeKvCommand,
  decodeValue,
  encodeKvCommand,
  encodeValue,
  type KvCommand,
  type KvCompareCommand,
  type KvError,
  type KvEvent,
  type KvGetResult,
  type KvLimits,
  type KvListener,
  type KvRecord,
  type KvResult,
  type KvTxnOpCommand,
  type KvTxnOpResult,
} from "./kv.js";
export { compareKeys } from "./key-order.js";
export {
  RaftKV,
  decodeEvent,
  kvError,
  type KvGetReply,
  type KvItem,
  type KvRangeReply,
  type KvTxnCompare,
  type KvTxnOp,
  type KvTxnReply,
  type KvTxnRequest,
  type KvWatchEvent,
  type RaftKVOptions,
} from "./raft-kv.js";
export { kvBuiltins, parseTxn, type KvBuiltinsOptions } from "./kv-builtins.js";
export { WatchHub, compactedError, type WatchHubOptions, type WatchSink } from "./watch-hub.js";
export { Lessor, type LessorNode } from "./lessor.js";
export { decodeEntry, encodeEntry } from "./codec.js";
export { validateMessage } from "./validate.js";
export { onLeader, onMember, type LeaderView, type OnLeaderOptions, type OnMemberOptions } from "./leader.js";
