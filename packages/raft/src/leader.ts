import { ErrorCode, MpregError, isMpregError } from "@mpreg/envelope";
import type { NodeId } from "./types.js";

/** What {@link onLeader} and {@link onMember} need to know of a Raft node. */
export interface LeaderView {
  readonly id: NodeId;
  /** The leader this node knows of; null during an election. */
  readonly leaderId: NodeId | null;
}

/** How long and how often to wait for a leader. */
export interface LeaderWaitOptions {
  /** Gives up (with its reason) when aborted. */
  signal?: AbortSignal;
  /** How long to wait for an election to produce a leader. Default 10 000 ms. */
  waitMs?: number;
  /** How often to look for a leader while there is none. Default 20 ms. */
  pollMs?: number;
}

export interface OnLeaderOptions<T> extends LeaderWaitOptions {
  /** Runs the operation here (this node leads). */
  local: () => Promise<T>;
  /** Carries the operation to the leader. */
  forward: (leader: NodeId) => Promise<T>;
}

/** Options of {@link onMember}. */
export interface OnMemberOptions<T> extends LeaderWaitOptions {
  /** Runs the operation on this node. */
  run: () => Promise<T>;
}

/** Marks "try again": no leader known yet, or the leader was lost under the operation. */
const AGAIN = Symbol("again");

/**
 * Calls `attempt` until it returns a value: it returns AGAIN while no leader is known, and a
 * `not_leader` error counts as AGAIN. Polls every `pollMs` up to `waitMs`, then fails with
 * 1005 `{reason: "no_leader"}`; stops with the signal's reason when it aborts.
 */
async function untilLeader<T>(opts: LeaderWaitOptions, attempt: () => Promise<T | typeof AGAIN>): Promise<T> {
  const deadline = Date.now() + (opts.waitMs ?? 10_000);
  for (;;) {
    try {
      const r = await attempt();
      if (r !== AGAIN) return r;
    } catch (e) {
      if (!(isMpregError(e) && e.details.reason === "not_leader")) throw e;
    }
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (Date.now() > deadline) {
      throw new MpregError(ErrorCode.UNREACHABLE, "raft: no leader", { reason: "no_leader" });
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 20));
  }
}

/**
 * Runs a client operation where Raft can serve it: here when this node leads, else forwarded to
 * the leader it knows. While no leader is known (an election), it polls for one up to `waitMs`,
 * then fails with 1005 `{reason: "no_leader"}`. When leadership moves between the check and
 * the proposal (`not_leader` from `local`), it decides again; a forwarded operation's errors
 * are the caller's.
 */
export function onLeader<T>(node: LeaderView, opts: OnLeaderOptions<T>): Promise<T> {
  return untilLeader<T>(opts, async () => {
    const leader = node.leaderId;
    if (leader === node.id) return opts.local();
    if (leader === null) return AGAIN;
    try {
      return await opts.forward(leader);
    } catch (e) {
      // Not retried: a forwarded operation's error (even `not_leader`) is the caller's.
      throw new Forwarded(e);
    }
  }).catch((e: unknown) => Promise.reject(e instanceof Forwarded ? e.error : e));
}

/** Wraps a forwarded operation's error so that it is never taken for a local `not_leader`. */
class Forwarded {
  constructor(readonly error: unknown) {}
}

/**
 * Runs an operation every member can serve as long as a leader is known — a linearizable read
 * (`RaftNode.read`, which gets its read index from the leader) — on this node. While no leader
 * is known it polls for one up to `waitMs`, then fails with 1005 `{reason: "no_leader"}`; when
 * the leader was lost under the operation (`not_leader`), it tries again.
 */
export function onMember<T>(node: LeaderView, opts: OnMemberOptions<T>): Promise<T> {
  return untilLeader<T>(opts, async () => (node.leaderId === null ? AGAIN : opts.run()));
}
