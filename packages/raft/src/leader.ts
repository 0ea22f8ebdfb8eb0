import { ErrorCode, MpregError, isMpregError } from "@mpreg/envelope";
import type { NodeId } from "./types.js";

/** What {@link onLeader} needs to know of a Raft node. */
export interface LeaderView {
  readonly id: NodeId;
  /** The leader this node knows of; null during an election. */
  readonly leaderId: NodeId | null;
}

export interface OnLeaderOptions<T> {
  /** Runs the operation here (this node leads). */
  local: () => Promise<T>;
  /** Carries the operation to the leader. */
  forward: (leader: NodeId) => Promise<T>;
  /** Gives up (with its reason) when aborted. */
  signal?: AbortSignal;
  /** How long to wait for an election to produce a leader. Default 10 000 ms. */
  waitMs?: number;
  /** How often to look for a leader while there is none. Default 20 ms. */
  pollMs?: number;
}

/**
 * Runs a client operation where Raft can serve it: here when this node leads, else forwarded to
 * the leader it knows. While no leader is known (an election), it polls for one up to `waitMs`,
 * then fails with 1005 `{reason: "no_leader"}`. When leadership moves between the check and
 * the proposal (`not_leader`), it decides again.
 */
export async function onLeader<T>(node: LeaderView, opts: OnLeaderOptions<T>): Promise<T> {
  const deadline = Date.now() + (opts.waitMs ?? 10_000);
  for (;;) {
    const leader = node.leaderId;
    if (leader === node.id) {
      try {
        return await opts.local();
      } catch (e) {
        if (!(isMpregError(e) && e.details.reason === "not_leader")) throw e;
      }
    } else if (leader !== null) {
      return opts.forward(leader);
    }
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (Date.now() > deadline) {
      throw new MpregError(ErrorCode.UNREACHABLE, "raft: no leader", { reason: "no_leader" });
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 20));
  }
}

/** Options of {@link onMember}. */
export interface OnMemberOptions<T> {
  /** Runs the operation on this node. */
  run: () => Promise<T>;
  /** Gives up (with its reason) when aborted. */
  signal?: AbortSignal;
  /** How long to wait for an election to produce a leader. Default 10 000 ms. */
  waitMs?: number;
  /** How often to look for a leader while there is none. Default 20 ms. */
  pollMs?: number;
}

/**
 * Runs an operation every member can serve as long as a leader is known — a linearizable read
 * (`RaftNode.read`, which gets its read index from the leader) — on this node. While no leader
 * is known it polls for one up to `waitMs`, then fails with 1005 `{reason: "no_leader"}`; when
 * the leader was lost under the operation (`not_leader`), it tries again.
 */
export async function onMember<T>(node: LeaderView, opts: OnMemberOptions<T>): Promise<T> {
  const deadline = Date.now() + (opts.waitMs ?? 10_000);
  for (;;) {
    if (node.leaderId !== null) {
      try {
        return await opts.run();
      } catch (e) {
        if (!(isMpregError(e) && e.details.reason === "not_leader")) throw e;
      }
    }
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (Date.now() > deadline) {
      throw new MpregError(ErrorCode.UNREACHABLE, "raft: no leader", { reason: "no_leader" });
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 20));
  }
}
