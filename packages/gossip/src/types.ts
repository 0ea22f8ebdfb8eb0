/** Membership states. Precedence at equal incarnation: alive < suspect < dead < left. */
export type MemberStatus = "alive" | "suspect" | "dead" | "left";

/**
 * One membership fact as it travels: "member `id` at incarnation `inc` is `status`".
 * `meta` travels with alive facts; `by` names the suspecter of a suspect fact (Lifeguard
 * confirmations count distinct suspecters).
 */
export interface MemberUpdate {
  id: string;
  inc: number;
  status: MemberStatus;
  meta?: unknown;
  by?: string;
}

/**
 * An opaque versioned item (a catalog delta, a route announcement…). Per key, the higher
 * version wins; an equal version keeps the existing item, so replays are idempotent.
 * Deletion is the owner's business: publish a tombstone `data` with a higher version.
 */
export interface GossipItem {
  key: string;
  version: number;
  data: unknown;
}

/** Fields every probe and gossip message carries (piggybacked dissemination). */
export interface Piggyback {
  members: MemberUpdate[];
  items: GossipItem[];
}

/** Direct probe. `target` guards against a restarted process answering for another. */
export interface PingMessage extends Piggyback {
  type: "ping";
  seq: number;
  target: string;
}

/** Answer to a ping; relayed back to the original prober for indirect probes. */
export interface AckMessage extends Piggyback {
  type: "ack";
  seq: number;
  target: string;
}

/**
 * Lifeguard's negative acknowledgement: a member asked to probe `target` (ping-req `seq`) tells
 * the asker that it got no ack within the probe timeout. It proves the asker can still talk to
 * that member, so a failed probe with every nack back is the target's problem, not the asker's.
 */
export interface NackMessage extends Piggyback {
  type: "nack";
  seq: number;
  target: string;
}

/** Asks the receiver to probe `target` on the sender's behalf. */
export interface PingReqMessage extends Piggyback {
  type: "ping-req";
  seq: number;
  target: string;
}

/** Push of queued updates to a few random members (fan-out), or a direct GOODBYE / refutation. */
export interface GossipPushMessage extends Piggyback {
  type: "gossip";
}

/**
 * Anti-entropy request: the sender's membership and a digest (key → version) of its items
 * whose keys fall in [start, end) (end null = to the last key). `full` asks the peer to walk
 * the whole key space with further windows (join / link open).
 */
export interface SyncRequestMessage {
  type: "sync-req";
  full: boolean;
  start: string;
  end: string | null;
  digest: [string, number][];
  members: MemberUpdate[];
}

/**
 * Anti-entropy reply: the replier's membership, its items in the window that the requester
 * lacks or has older, and the keys it wants from the requester. `more` says the item list was
 * cut at the per-reply limit.
 */
export interface SyncReplyMessage {
  type: "sync";
  full: boolean;
  start: string;
  end: string | null;
  items: GossipItem[];
  want: string[];
  more: boolean;
  members: MemberUpdate[];
}

/** Items the peer asked for in `want`. */
export interface SyncPushMessage {
  type: "sync-push";
  items: GossipItem[];
}

/** Every message a GossipNode sends or accepts. Plain data: MessagePack/JSON serialisable. */
export type GossipMessage =
  | PingMessage
  | AckMessage
  | NackMessage
  | PingReqMessage
  | GossipPushMessage
  | SyncRequestMessage
  | SyncReplyMessage
  | SyncPushMessage;

/** An outgoing message produced by the state machine; the caller delivers it. */
export interface Outgoing {
  to: string;
  msg: GossipMessage;
}

/** What the state machine tells its owner. */
export type GossipEvent =
  | { type: "member-up"; id: string; incarnation: number; meta: unknown }
  | { type: "member-updated"; id: string; incarnation: number; meta: unknown }
  | { type: "member-suspect"; id: string; incarnation: number; by: string | undefined }
  | { type: "member-dead"; id: string; incarnation: number }
  | { type: "member-left"; id: string; incarnation: number }
  | { type: "item-updated"; key: string; version: number; data: unknown; from: string };

/** Read-only view of a member. */
export interface MemberInfo {
  id: string;
  incarnation: number;
  status: MemberStatus;
  meta: unknown;
  /** Local time of the last status change. */
  since: number;
}

/** The randomness a GossipNode needs (a SeededRandom satisfies it). */
export interface GossipRandom {
  /** A float in [0, 1). */
  next(): number;
}
