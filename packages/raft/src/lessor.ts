import type { KvStateMachine } from "./kv.js";

/** What the lessor needs of the Raft node it runs on. */
export interface LessorNode {
  readonly role: string;
  readonly term: number;
}

/**
 * The leader's lease clocks. A lease's expiry is decided by the leader's clock but applied
 * through the log: when the leader sees a lease past its deadline it proposes a `lease_expire`
 * entry, and every member deletes the lease's keys when that entry applies (at one revision).
 *
 * Only the leader keeps deadlines. A member that becomes leader restarts every lease's clock at
 * its full TTL (it cannot know when the last keepalive reached the previous leader), so a lease
 * never expires sooner than its TTL after the last acknowledged keepalive; it may expire later,
 * by up to one TTL plus the election time. A lease whose expiry was proposed no longer accepts
 * keepalives (they fail with 1001), so a keepalive can never be acknowledged for a lease that
 * is about to disappear.
 */
export class Lessor {
  private deadlines = new Map<number, number>();
  /** Leases whose expire entry is proposed and not yet settled. */
  private readonly expiring = new Set<number>();
  /** The term in which this node's clocks were (re)started; -1 when not leading. */
  private leaderTerm = -1;

  constructor(
    private readonly node: LessorNode,
    private readonly sm: KvStateMachine,
    private readonly now: () => number,
    /** Proposes the expiry of a lease; settles once it applied (or failed). */
    private readonly proposeExpire: (id: number) => Promise<unknown>,
    /** Most expire proposals outstanding at once. */
    private readonly maxExpiring = 64,
  ) {}

  /** Called when a lease is granted (`ttl`) or gone (undefined), as entries apply. */
  onLease(id: number, ttl: number | undefined): void {
    if (ttl === undefined) {
      this.deadlines.delete(id);
      this.expiring.delete(id);
    } else if (this.leading()) {
      this.deadlines.set(id, this.now() + ttl);
    }
  }

  /** After a restore the leases are whatever the snapshot says: restart the clocks if leading. */
  onRestore(): void {
    this.leaderTerm = -1;
    this.leading();
  }

  /** Checks deadlines (each tick); proposes the expiry of leases past theirs. */
  tick(): void {
    if (!this.leading()) return;
    const now = this.now();
    for (const [id, deadline] of this.deadlines) {
      if (this.expiring.size >= this.maxExpiring) return;
      if (deadline > now || this.expiring.has(id)) continue;
      this.expiring.add(id);
      this.proposeExpire(id).then(
        () => this.expiring.delete(id),
        // Not applied (leadership lost, overloaded...): the next leader or tick decides again.
        () => this.expiring.delete(id),
      );
    }
  }

  /**
   * Restarts a lease's clock (a keepalive on the leader, after a confirmed read index). Returns
   * the TTL, or undefined when the lease does not exist or its expiry is already proposed.
   */
  keepAlive(id: number): number | undefined {
    if (!this.leading()) return undefined;
    const ttl = this.sm.leaseTtl(id);
    if (ttl === undefined || this.expiring.has(id)) return undefined;
    this.deadlines.set(id, this.now() + ttl);
    return ttl;
  }

  /** Milliseconds until a lease's deadline on this leader (tests, status). */
  remaining(id: number): number | undefined {
    const d = this.deadlines.get(id);
    return d === undefined ? undefined : d - this.now();
  }

  /** True when this node leads; on the first call of a new term, every clock restarts. */
  private leading(): boolean {
    if (this.node.role !== "leader") {
      if (this.leaderTerm !== -1) {
        this.leaderTerm = -1;
        this.deadlines = new Map();
        this.expiring.clear();
      }
      return false;
    }
    if (this.leaderTerm !== this.node.term) {
      this.leaderTerm = this.node.term;
      const now = this.now();
      this.deadlines = new Map(this.sm.leaseList().map(([id, ttl]) => [id, now + ttl]));
      this.expiring.clear();
    }
    return true;
  }
}
