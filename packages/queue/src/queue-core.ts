/**
 * The queue state machine: every queue of one node, with no I/O, no timers and no clock of its
 * own. Inputs are the operations (create, send, receive, ack, ...) and `advance()`; outputs are
 * the operation's return value plus a `QueueReady` collected by `takeReady()`: store writes,
 * deliveries to subscriptions, and completions of waits that began earlier (long polls,
 * quorum sends). The driver (`QueueService`) must make the writes durable before it hands out
 * anything of the same Ready or answers the operation (docs/queue.md, "What the driver does").
 */

import { ErrorCode, MpregError, createLogger, newId as defaultNewId } from "@mpreg/envelope";
import { Deque } from "./deque.js";
import { Heap } from "./heap.js";
import { resolveLimits, type QueueLimits } from "./limits.js";
import {
  encodeBody,
  encodeDedupRecord,
  encodeMessageRecord,
  encodeQueueRecord,
  storeKeys,
  type LoadedState,
} from "./store-codec.js";
import type {
  CreateResult,
  DeadLetterInfo,
  DeleteResult,
  Delivery,
  PurgeResult,
  QueueInfo,
  QueueOptions,
  QueueStats,
  ReceivedMessage,
  ReturnReason,
  SendResult,
} from "./types.js";
import {
  QUEUE_OPTION_FIELDS,
  parseExtendMs,
  parseHandle,
  parseNackOptions,
  parseQueueName,
  parseQueueOptions,
  parseReceiveOptions,
  parseSendOptions,
  parseSubscribeOptions,
} from "./validate.js";

const log = createLogger("queue");

/** Receipts of at-most-once deliveries start with this: the message is already gone, an ack is a no-op. */
export const SETTLED_RECEIPT_PREFIX = "amo.";

/** Owner of leases taken by embedding code that passes none. */
export const LOCAL_OWNER = "local";

/** Configuration of a core. */
export interface QueueCoreConfig {
  /** Clock in ms since the epoch (default `Date.now`). Time never runs backwards inside the core. */
  now?: () => number;
  /** Id source for message ids, receipts and subscription ids (default: ULIDs). */
  newId?: () => string;
  limits?: Partial<QueueLimits>;
  /** True when the driver has a store: queues are then durable by default and writes are produced. */
  storage?: boolean;
}

/** The end of a wait that began in an earlier call. */
export type Completion =
  | { kind: "receive"; waiter: number; messages: ReceivedMessage[] }
  | { kind: "receive-failed"; waiter: number; error: MpregError }
  | { kind: "quorum"; ticket: number; result: SendResult }
  | { kind: "quorum-failed"; ticket: number; error: MpregError };

/** What the driver must act on after a call (see the module comment for the order). */
export interface QueueReady {
  /** Store writes by key: bytes to put, `null` to delete. Apply them as one atomic batch. */
  writes: Map<string, Uint8Array | null>;
  /** Messages for push subscriptions. */
  deliveries: Delivery[];
  completions: Completion[];
  /** Subscriptions that ended (unsubscribed, owner closed, queue deleted): forget their push functions. */
  ended: string[];
  /** The set of queue names changed (created, deleted, a dead-letter queue made). */
  queuesChanged: boolean;
}

/** What `send` returns: the answer, or a ticket whose completion answers a quorum send. */
export type SendOutcome = SendResult & { ticket?: number };

/** What `receive` returns: messages at once, or a waiter whose completion answers it. */
export type ReceiveOutcome = { messages: ReceivedMessage[]; waiter?: undefined } | { waiter: number; messages?: undefined };

type MsgState = "visible" | "delayed" | "inflight" | "gone";

interface Lease {
  receipt: string;
  owner: string;
  sub: Sub | undefined;
  deadline: number;
}

interface Msg {
  readonly id: string;
  readonly seq: number;
  readonly q: Q;
  readonly body: unknown;
  readonly size: number;
  readonly sentAt: number;
  readonly priority: number | undefined;
  readonly group: Group | undefined;
  readonly amo: boolean;
  /** Set on a broadcast or quorum copy: the one subscription it is for. */
  readonly copyFor: Sub | undefined;
  readonly quorum: Quorum | undefined;
  readonly deadLetter: DeadLetterInfo | undefined;
  receiveCount: number;
  state: MsgState;
  visibleAt: number;
  /** Bumped on every change that invalidates a scheduled event for this message. */
  gen: number;
  lease: Lease | undefined;
}

interface Group {
  readonly id: string;
  /** Every held message of the group in order; the head may be in flight. */
  readonly msgs: Deque<Msg>;
  busy: boolean;
  /** Seq of the head this group was queued with in `readyGroups` (entries with another seq are stale). */
  queuedSeq: number | undefined;
}

/** An entry of `readyGroups`: the key is fixed when it is pushed, so the heap stays valid. */
interface GroupEntry {
  readonly g: Group;
  readonly seq: number;
}

interface DedupEntry {
  readonly id: string;
  readonly messageId: string;
  readonly expiresAt: number;
  removed: boolean;
}

interface Waiter {
  readonly id: number;
  readonly q: Q;
  readonly owner: string;
  readonly max: number;
  readonly vis: number;
  done: boolean;
}

interface Sub {
  readonly id: string;
  readonly q: Q;
  readonly owner: string;
  readonly prefetch: number;
  inflight: number;
  /** Visible copies for this subscription, by send order. */
  readonly own: Heap<Msg>;
  /** Every live copy for this subscription (visible, delayed or leased). */
  readonly copies: Set<Msg>;
  /** Messages leased through this subscription (copies and shared ones). */
  readonly leases: Set<Msg>;
  closed: boolean;
}

interface Quorum {
  readonly ticket: number;
  readonly q: Q;
  readonly messageId: string;
  readonly need: number;
  acked: number;
  readonly copies: Set<Msg>;
  dedup: DedupEntry | undefined;
  done: boolean;
}

interface Q {
  readonly name: string;
  readonly opts: QueueOptions;
  readonly createdAt: number;
  nextSeq: number;
  readonly msgs: Map<number, Msg>;
  /** Visible shared messages (standard and priority queues). */
  readonly ready: Heap<Msg>;
  /** FIFO queues: groups, and those whose head can be delivered (by head order). */
  readonly groups: Map<string, Group>;
  readonly readyGroups: Heap<GroupEntry>;
  visible: number;
  inflight: number;
  delayed: number;
  sent: number;
  acked: number;
  deadLettered: number;
  readonly waiters: Deque<Waiter>;
  readonly subs: Sub[];
  rr: number;
  readonly dedup: Map<string, DedupEntry>;
  readonly dedupOrder: Deque<DedupEntry>;
  readonly quorums: Set<Quorum>;
  deleted: boolean;
}

interface OwnerIndex {
  readonly leases: Set<Msg>;
  readonly waiters: Set<Waiter>;
  readonly subs: Set<Sub>;
}

const enum EvKind {
  Lease,
  Delay,
  Wait,
  Quorum,
}

interface Ev {
  readonly at: number;
  readonly seq: number;
  readonly kind: EvKind;
  readonly msg: Msg | undefined;
  readonly gen: number;
  readonly waiter: Waiter | undefined;
  readonly quorum: Quorum | undefined;
}

const byPriorityThenSeq = (a: Msg, b: Msg) => {
  const pa = a.priority ?? 0;
  const pb = b.priority ?? 0;
  return pa > pb || (pa === pb && a.seq < b.seq);
};
const bySeq = (a: Msg, b: Msg) => a.seq < b.seq;
const byHeadSeq = (a: GroupEntry, b: GroupEntry) => a.seq < b.seq;
const byTime = (a: Ev, b: Ev) => a.at < b.at || (a.at === b.at && a.seq < b.seq);

/** 1001 with a machine-readable `details.reason` (PROTOCOL: `{reason}`). */
function notFound(message: string, reason: string, details: Record<string, unknown> = {}): MpregError {
  return new MpregError(ErrorCode.NOT_FOUND, message, { ...details, reason });
}

function staleReceipt(receipt: string): MpregError {
  return notFound("stale receipt: the lease expired, was acked or returned, or never existed", "stale_receipt", { receipt });
}

/**
 * Every queue of a node as one pure state machine. Each public method first runs the events that
 * are due (so timer lateness never changes an answer), applies the call, dispatches what became
 * deliverable, and leaves its side effects in the Ready (`takeReady`).
 */
export class QueueCore {
  readonly limits: QueueLimits;
  private readonly clock: () => number;
  private readonly newId: () => string;
  private readonly storage: boolean;
  private time = -Infinity;
  private readonly queues = new Map<string, Q>();
  private readonly receipts = new Map<string, Msg>();
  private readonly subs = new Map<string, Sub>();
  private readonly waiters = new Map<number, Waiter>();
  private readonly quorums = new Map<number, Quorum>();
  private readonly owners = new Map<string, OwnerIndex>();
  private readonly events = new Heap<Ev>(byTime);
  private evSeq = 0;
  private handleSeq = 0;
  /** Live timed things (leases, delays, waiters, quorums): bounds the stale entries the event heap may hold. */
  private liveTimed = 0;
  private totalMessages = 0;
  private totalBytes = 0;
  private readonly dirty = new Set<Q>();
  private readonly metaDirty = new Set<Q>();
  private ready: QueueReady = { writes: new Map(), deliveries: [], completions: [], ended: [], queuesChanged: false };

  constructor(cfg: QueueCoreConfig = {}) {
    this.limits = resolveLimits(cfg.limits);
    this.clock = cfg.now ?? Date.now;
    this.newId = cfg.newId ?? defaultNewId;
    this.storage = cfg.storage ?? false;
  }

  // -------------------------------------------------------------------------------------------
  // Driver interface
  // -------------------------------------------------------------------------------------------

  /** The current core time (the clock, never below a time already seen). */
  now(): number {
    const t = this.clock();
    if (t > this.time) this.time = t;
    return this.time;
  }

  /**
   * When the next timed event is due (a lease expiring, a delay ending, a long poll or a quorum
   * timing out), or undefined when nothing is scheduled. The driver keeps one timer for it.
   */
  nextDueAt(): number | undefined {
    for (;;) {
      const ev = this.events.peek();
      if (ev === undefined) return undefined;
      if (this.live(ev)) return ev.at;
      this.events.pop();
    }
  }

  /** Runs every event due at `now` (default: the clock) and dispatches the result. */
  advance(now?: number): void {
    if (now !== undefined && now > this.time) this.time = now;
    const t = this.now();
    for (;;) {
      const ev = this.events.peek();
      if (ev === undefined || ev.at > t) break;
      this.events.pop();
      if (this.live(ev)) this.fire(ev);
    }
    this.flush();
  }

  /** Takes the side effects collected since the last call. */
  takeReady(): QueueReady {
    for (const q of this.metaDirty) {
      if (!q.deleted && q.opts.durable) this.ready.writes.set(storeKeys.queue(q.name), encodeQueueRecord(this.queueRecord(q)));
    }
    this.metaDirty.clear();
    const rd = this.ready;
    this.ready = { writes: new Map(), deliveries: [], completions: [], ended: [], queuesChanged: false };
    return rd;
  }

  /** True when `takeReady` would return something. */
  hasReady(): boolean {
    const r = this.ready;
    return (
      this.metaDirty.size > 0 || r.writes.size > 0 || r.deliveries.length > 0 || r.completions.length > 0 || r.ended.length > 0 || r.queuesChanged
    );
  }

  /**
   * Rebuilds the state a store held (call once, on an empty core, before any operation). Leases
   * in flight at the crash become visible again; a message received `max_receives` times moves to
   * its dead-letter queue; expired dedup ids and unreadable records are deleted (writes in the Ready).
   */
  restore(state: LoadedState): void {
    if (this.queues.size > 0) throw new MpregError(ErrorCode.EXECUTION_FAILED, "restore needs an empty queue core", {});
    const now = this.now();
    const exhausted: Msg[] = [];
    for (const lq of state.queues) {
      const q = this.makeQueue(lq.record.name, lq.record.options, lq.record.created_at);
      q.sent = lq.record.sent;
      q.acked = lq.record.acked;
      q.deadLettered = lq.record.dead_lettered;
      for (const lm of lq.messages) {
        const r = lm.record;
        const m = this.addMsg(q, {
          id: r.id,
          seq: r.seq,
          body: lm.body,
          size: lm.size,
          sentAt: r.sent_at,
          priority: r.priority,
          groupId: r.group_id,
          amo: r.amo === true,
          deadLetter: r.dead_letter,
          receiveCount: r.receive_count,
          visibleAt: r.visible_at,
        });
        if (r.seq >= q.nextSeq) q.nextSeq = r.seq + 1;
        if (m.receiveCount >= q.opts.max_receives && q.opts.dead_letter_queue !== null) exhausted.push(m);
      }
      for (const d of [...lq.dedup].sort((a, b) => a.expires_at - b.expires_at)) {
        if (d.expires_at <= now) {
          if (q.opts.durable) this.ready.writes.set(storeKeys.dedup(q.name, d.dedup_id), null);
          continue;
        }
        const e: DedupEntry = { id: d.dedup_id, messageId: d.message_id, expiresAt: d.expires_at, removed: false };
        q.dedup.set(e.id, e);
        q.dedupOrder.push(e);
      }
    }
    for (const key of state.dropped) this.ready.writes.set(key, null);
    for (const m of exhausted) {
      if (m.state === "visible") this.deadLetter(m, "restart");
    }
    this.flush();
  }

  // -------------------------------------------------------------------------------------------
  // Operations (PROTOCOL section 5)
  // -------------------------------------------------------------------------------------------

  /**
   * Creates a queue. Idempotent: an existing queue with the same options (defaults filled in)
   * answers `created: false`; different options are 1002 naming the first field that differs.
   */
  create(name: unknown, options?: unknown): CreateResult {
    this.advance();
    const n = parseQueueName(name);
    const opts = parseQueueOptions(n, options, this.limits, this.storage);
    const existing = this.queues.get(n);
    if (existing !== undefined) {
      for (const f of QUEUE_OPTION_FIELDS) {
        if (existing.opts[f] !== opts[f]) {
          throw MpregError.invalid(
            `queue ${n} exists with ${f} = ${JSON.stringify(existing.opts[f])}, not ${JSON.stringify(opts[f])}`,
            `options.${f}`,
          );
        }
      }
      return { name: n, created: false };
    }
    if (this.queues.size >= this.limits.maxQueues) throw MpregError.overloaded(`too many queues (limit ${this.limits.maxQueues})`);
    const q = this.makeQueue(n, opts, this.now());
    this.metaDirty.add(q);
    return { name: n, created: true };
  }

  /** Sends a message (see docs/queue.md for each delivery mode). */
  send(name: unknown, body: unknown, options?: unknown): SendOutcome {
    this.advance();
    const q = this.get(name);
    const o = parseSendOptions(options, q.opts.type, this.limits);
    if (body === undefined) throw MpregError.invalid("body is required", "body");
    let bytes: Uint8Array;
    try {
      bytes = encodeBody(body);
    } catch {
      throw MpregError.invalid("body cannot be encoded as MessagePack", "body");
    }
    const size = bytes.length - 1;
    if (size > this.limits.maxBodyBytes) {
      throw MpregError.invalid(`body is ${size} bytes, over the limit of ${this.limits.maxBodyBytes}`, "body");
    }
    const now = this.now();
    this.pruneDedup(q, now);
    if (o.dedup_id !== undefined) {
      const d = q.dedup.get(o.dedup_id);
      if (d !== undefined) return { message_id: d.messageId, duplicate: true };
    }
    const delivery = o.delivery ?? "at_least_once";
    const targets = delivery === "broadcast" || delivery === "quorum" ? q.subs.slice() : undefined;
    const count = targets ? targets.length : 1;
    let need = 0;
    if (delivery === "quorum") {
      need = o.quorum ?? 1;
      if (targets!.length < need) {
        throw new MpregError(ErrorCode.UNREACHABLE, `quorum ${need} needs that many subscribers; queue ${q.name} has ${targets!.length}`, {
          reason: "too_few_subscribers",
          subscribers: targets!.length,
          quorum: need,
        });
      }
      if (this.quorums.size >= this.limits.maxPendingQuorum) {
        throw MpregError.overloaded(`too many quorum sends waiting (limit ${this.limits.maxPendingQuorum})`);
      }
    }
    if (q.msgs.size + count > q.opts.max_messages) {
      throw this.full(`queue ${q.name} is full (max_messages ${q.opts.max_messages})`, "queue_full");
    }
    if (this.totalMessages + count > this.limits.maxTotalMessages) {
      throw this.full(`the queue service holds its most messages (${this.limits.maxTotalMessages})`, "service_full");
    }
    if (this.totalBytes + size * count > this.limits.maxTotalBytes) {
      throw this.full(`the queue service holds its most body bytes (${this.limits.maxTotalBytes})`, "service_full");
    }
    if (o.dedup_id !== undefined && q.opts.dedup_window_ms > 0 && q.dedup.size >= this.limits.maxDedupEntries) {
      const oldest = q.dedupOrder.peek();
      throw MpregError.overloaded(
        `queue ${q.name} remembers its most dedup ids (${this.limits.maxDedupEntries})`,
        oldest ? Math.max(1, Math.ceil(oldest.expiresAt - now)) : undefined,
      );
    }

    const id = this.newId();
    let quorum: Quorum | undefined;
    if (targets === undefined) {
      const m = this.addMsg(q, {
        id,
        seq: q.nextSeq++,
        body,
        size,
        sentAt: now,
        priority: q.opts.type === "priority" ? (o.priority ?? 0) : undefined,
        groupId: q.opts.type === "fifo" ? (o.group_id ?? "") : undefined,
        amo: delivery === "at_most_once",
        deadLetter: undefined,
        receiveCount: 0,
        visibleAt: now + (o.delay_ms ?? q.opts.delay_ms),
      });
      if (q.opts.durable) {
        this.writeMsg(m);
        this.ready.writes.set(storeKeys.body(q.name, m.seq), bytes);
      }
    } else {
      if (delivery === "quorum") {
        quorum = { ticket: ++this.handleSeq, q, messageId: id, need, acked: 0, copies: new Set(), dedup: undefined, done: false };
        this.quorums.set(quorum.ticket, quorum);
        q.quorums.add(quorum);
        this.liveTimed++;
        this.schedule(now + (o.quorum_timeout_ms ?? Math.max(1, q.opts.visibility_timeout_ms)), EvKind.Quorum, { quorum });
      }
      for (const s of targets) {
        const m = this.addMsg(q, {
          id,
          seq: q.nextSeq++,
          body,
          size,
          sentAt: now,
          priority: undefined,
          groupId: undefined,
          amo: false,
          deadLetter: undefined,
          receiveCount: 0,
          visibleAt: now,
          copyFor: s,
          quorum,
        });
        quorum?.copies.add(m);
      }
    }
    q.sent++;
    this.metaDirty.add(q);
    if (o.dedup_id !== undefined && q.opts.dedup_window_ms > 0) {
      const e: DedupEntry = { id: o.dedup_id, messageId: id, expiresAt: now + q.opts.dedup_window_ms, removed: false };
      q.dedup.set(e.id, e);
      q.dedupOrder.push(e);
      if (quorum) quorum.dedup = e;
      if (q.opts.durable) {
        this.ready.writes.set(storeKeys.dedup(q.name, e.id), encodeDedupRecord({ dedup_id: e.id, message_id: id, expires_at: e.expiresAt }));
      }
    }
    this.flush();
    return quorum ? { message_id: id, duplicate: false, ticket: quorum.ticket } : { message_id: id, duplicate: false };
  }

  /**
   * Receives up to `max` visible messages for `owner`. With none visible and `wait_ms > 0`, a
   * waiter is queued: a later send, nack or expiry answers it, or its timeout answers `[]`.
   */
  receive(name: unknown, options?: unknown, owner: string = LOCAL_OWNER): ReceiveOutcome {
    this.advance();
    const q = this.get(name);
    const o = parseReceiveOptions(options, this.limits);
    const vis = o.visibility_timeout_ms ?? q.opts.visibility_timeout_ms;
    const messages = this.takeShared(q, o.max, owner, vis);
    if (messages.length > 0 || o.wait_ms === 0) {
      this.flush();
      return { messages };
    }
    if (this.waiters.size >= this.limits.maxWaiters) {
      throw MpregError.overloaded(`too many receives waiting (limit ${this.limits.maxWaiters})`, o.wait_ms);
    }
    const w: Waiter = { id: ++this.handleSeq, q, owner, max: o.max, vis, done: false };
    q.waiters.push(w);
    this.waiters.set(w.id, w);
    this.ownerIndex(owner).waiters.add(w);
    this.liveTimed++;
    this.schedule(this.now() + o.wait_ms, EvKind.Wait, { waiter: w });
    return { waiter: w.id };
  }

  /** Ends a waiting receive early (its request ended): it completes with `[]`. Unknown ids are ignored. */
  cancelWait(waiter: number): void {
    const w = this.waiters.get(waiter);
    if (w !== undefined) this.endWaiter(w, []);
  }

  /** Acks a delivery: the message is removed. A receipt that is not a live lease of this queue is 1001. */
  ack(name: unknown, receipt: unknown): { ok: true } {
    this.advance();
    const q = this.get(name);
    const r = parseHandle(receipt, "receipt");
    // At-most-once deliveries were settled when delivered: acking one is allowed and does nothing.
    if (r.startsWith(SETTLED_RECEIPT_PREFIX)) return { ok: true };
    const m = this.leased(q, r);
    q.acked++;
    this.metaDirty.add(q);
    if (m.quorum !== undefined && !m.quorum.done) m.quorum.acked++;
    this.removeMsg(m);
    this.flush();
    return { ok: true };
  }

  /** Returns a delivery: the message becomes visible again after `delay_ms` (or is dead-lettered). */
  nack(name: unknown, receipt: unknown, options?: unknown): { ok: true } {
    this.advance();
    const q = this.get(name);
    const r = parseHandle(receipt, "receipt");
    const o = parseNackOptions(options, this.limits);
    if (r.startsWith(SETTLED_RECEIPT_PREFIX)) {
      throw notFound("an at-most-once delivery was removed when delivered: nothing to nack", "settled", { receipt: r });
    }
    this.returnLease(this.leased(q, r), "nack", o.delay_ms);
    this.flush();
    return { ok: true };
  }

  /** Sets a lease to end `ms` from now (0: the message is returned at once, as on expiry). */
  extend(name: unknown, receipt: unknown, ms: unknown): { ok: true } {
    this.advance();
    const q = this.get(name);
    const r = parseHandle(receipt, "receipt");
    const n = parseExtendMs(ms, this.limits);
    if (r.startsWith(SETTLED_RECEIPT_PREFIX)) {
      throw notFound("an at-most-once delivery was removed when delivered: nothing to extend", "settled", { receipt: r });
    }
    const m = this.leased(q, r);
    if (n === 0) this.returnLease(m, "visibility_timeout", 0);
    else {
      m.lease!.deadline = this.now() + n;
      m.gen++;
      this.schedule(m.lease!.deadline, EvKind.Lease, { msg: m });
    }
    this.flush();
    return { ok: true };
  }

  /** Opens a push subscription owned by `owner`; deliveries appear in the Ready. */
  subscribe(name: unknown, options?: unknown, owner: string = LOCAL_OWNER): { subscription_id: string } {
    this.advance();
    const q = this.get(name);
    const o = parseSubscribeOptions(options, this.limits);
    if (this.subs.size >= this.limits.maxSubscriptions) {
      throw MpregError.overloaded(`too many subscriptions (limit ${this.limits.maxSubscriptions})`);
    }
    const s: Sub = {
      id: this.newId(),
      q,
      owner,
      prefetch: o.prefetch,
      inflight: 0,
      own: new Heap(bySeq),
      copies: new Set(),
      leases: new Set(),
      closed: false,
    };
    q.subs.push(s);
    this.subs.set(s.id, s);
    this.ownerIndex(owner).subs.add(s);
    this.dirty.add(q);
    this.flush();
    return { subscription_id: s.id };
  }

  /**
   * Ends a subscription: its leases of shared messages are returned, its broadcast copies are
   * dropped. Unknown ids, and ids owned by another owner when `owner` is given, are 1001.
   */
  unsubscribe(subscriptionId: unknown, owner?: string): { ok: true } {
    this.advance();
    const id = parseHandle(subscriptionId, "subscription_id");
    const s = this.subs.get(id);
    if (s === undefined || (owner !== undefined && s.owner !== owner)) {
      throw notFound(`no subscription ${id}`, "unknown_subscription", { subscription_id: id });
    }
    this.closeSub(s, "unsubscribed");
    this.flush();
    return { ok: true };
  }

  /** The connection `owner` closed: its subscriptions end, its leases return, its waits end with `[]`. */
  closeOwner(owner: string): void {
    this.advance();
    const o = this.owners.get(owner);
    if (o === undefined) return;
    for (const s of [...o.subs]) this.closeSub(s, "owner_closed");
    for (const m of [...o.leases]) this.returnLease(m, "owner_closed", 0);
    for (const w of [...o.waiters]) this.endWaiter(w, []);
    this.owners.delete(owner);
    this.flush();
  }

  /** Fails a waiting quorum send (its request ended). Unknown tickets are ignored. */
  cancelQuorum(ticket: number, error: MpregError): void {
    const qr = this.quorums.get(ticket);
    if (qr !== undefined) this.failQuorum(qr, error);
    this.flush();
  }

  /** The counts of one queue. */
  stats(name: unknown): QueueStats {
    this.advance();
    return this.statsOf(this.get(name));
  }

  /** Every queue with its type, durability and counts, by name. */
  list(): QueueInfo[] {
    this.advance();
    return this.names().map((n) => {
      const q = this.queues.get(n)!;
      return { name: n, type: q.opts.type, durable: q.opts.durable, ...this.statsOf(q) };
    });
  }

  /** The options a queue was created with. */
  options(name: unknown): QueueOptions {
    return { ...this.get(name).opts };
  }

  /** Names of every queue, sorted. */
  names(): string[] {
    return [...this.queues.keys()].sort();
  }

  /**
   * Deletes a queue with its messages and dedup ids. Waiting receives fail with 1001, waiting
   * quorum sends too, and its subscriptions end (without a frame: the queue is gone).
   */
  delete(name: unknown): DeleteResult {
    this.advance();
    const q = this.get(name);
    const stats = this.statsOf(q);
    const gone = () => notFound(`queue ${q.name} was deleted`, "queue_deleted", { queue: q.name });
    for (const qr of [...q.quorums]) this.failQuorum(qr, gone());
    for (const m of [...q.msgs.values()]) this.removeMsg(m);
    for (const s of [...q.subs]) this.closeSub(s, "unsubscribed");
    for (const w of q.waiters) if (!w.done) this.endWaiter(w, undefined, gone());
    if (q.opts.durable) {
      for (const d of q.dedup.keys()) this.ready.writes.set(storeKeys.dedup(q.name, d), null);
      this.ready.writes.set(storeKeys.queue(q.name), null);
    }
    q.deleted = true;
    this.queues.delete(q.name);
    this.ready.queuesChanged = true;
    this.flush();
    return { deleted: true, ...stats };
  }

  /** Removes every message (visible, delayed, in flight: their receipts go stale). Counters and dedup ids stay. */
  purge(name: unknown): PurgeResult {
    this.advance();
    const q = this.get(name);
    const purged = q.msgs.size;
    for (const m of [...q.msgs.values()]) this.removeMsg(m);
    q.ready.clear();
    q.readyGroups.clear();
    this.flush();
    return { purged, ...this.statsOf(q) };
  }

  // -------------------------------------------------------------------------------------------
  // Internals
  // -------------------------------------------------------------------------------------------

  private get(name: unknown): Q {
    const n = parseQueueName(name);
    const q = this.queues.get(n);
    if (q === undefined) throw notFound(`no queue ${n}`, "unknown_queue", { queue: n });
    return q;
  }

  private full(message: string, reason: string): MpregError {
    return new MpregError(ErrorCode.OVERLOADED, message, { reason });
  }

  private makeQueue(name: string, opts: QueueOptions, createdAt: number): Q {
    const q: Q = {
      name,
      opts,
      createdAt,
      nextSeq: 1,
      msgs: new Map(),
      ready: new Heap(byPriorityThenSeq),
      groups: new Map(),
      readyGroups: new Heap(byHeadSeq),
      visible: 0,
      inflight: 0,
      delayed: 0,
      sent: 0,
      acked: 0,
      deadLettered: 0,
      waiters: new Deque(),
      subs: [],
      rr: 0,
      dedup: new Map(),
      dedupOrder: new Deque(),
      quorums: new Set(),
      deleted: false,
    };
    this.queues.set(name, q);
    this.ready.queuesChanged = true;
    return q;
  }

  private queueRecord(q: Q) {
    return { name: q.name, options: q.opts, created_at: q.createdAt, sent: q.sent, acked: q.acked, dead_lettered: q.deadLettered };
  }

  private statsOf(q: Q): QueueStats {
    return { visible: q.visible, in_flight: q.inflight, delayed: q.delayed, dead_lettered: q.deadLettered, sent: q.sent, acked: q.acked };
  }

  private ownerIndex(owner: string): OwnerIndex {
    let o = this.owners.get(owner);
    if (o === undefined) this.owners.set(owner, (o = { leases: new Set(), waiters: new Set(), subs: new Set() }));
    return o;
  }

  private dropFromOwner(owner: string, f: (o: OwnerIndex) => void): void {
    const o = this.owners.get(owner);
    if (o === undefined) return;
    f(o);
    if (o.leases.size === 0 && o.waiters.size === 0 && o.subs.size === 0) this.owners.delete(owner);
  }

  private schedule(at: number, kind: EvKind, ref: { msg?: Msg; waiter?: Waiter; quorum?: Quorum }): void {
    this.events.push({ at, seq: this.evSeq++, kind, msg: ref.msg, gen: ref.msg?.gen ?? 0, waiter: ref.waiter, quorum: ref.quorum });
    // Superseded events stay in the heap until they come up; drop them in one pass when they
    // outnumber the live ones, so extends and nacks cannot grow it without bound.
    if (this.events.size > 4 * this.liveTimed + 1024) this.events.filter((e) => this.live(e));
  }

  private live(ev: Ev): boolean {
    switch (ev.kind) {
      case EvKind.Lease:
        return ev.msg!.state === "inflight" && ev.msg!.gen === ev.gen;
      case EvKind.Delay:
        return ev.msg!.state === "delayed" && ev.msg!.gen === ev.gen;
      case EvKind.Wait:
        return !ev.waiter!.done;
      case EvKind.Quorum:
        return !ev.quorum!.done;
    }
  }

  private fire(ev: Ev): void {
    switch (ev.kind) {
      case EvKind.Lease:
        this.returnLease(ev.msg!, "visibility_timeout", 0);
        return;
      case EvKind.Delay:
        this.makeVisible(ev.msg!);
        return;
      case EvKind.Wait:
        this.endWaiter(ev.waiter!, []);
        return;
      case EvKind.Quorum: {
        const qr = ev.quorum!;
        this.failQuorum(
          qr,
          new MpregError(ErrorCode.TIMEOUT, `quorum not reached: ${qr.acked} of ${qr.need} acks`, {
            reason: "quorum_timeout",
            acked: qr.acked,
            quorum: qr.need,
          }),
        );
        return;
      }
    }
  }

  /** Dispatches every queue whose deliverable messages or consumers changed. */
  private flush(): void {
    for (;;) {
      const it = this.dirty.values().next();
      if (it.done) return;
      this.dirty.delete(it.value);
      this.pump(it.value);
    }
  }

  /** Long polls first (in arrival order), then subscriptions round-robin within their prefetch. */
  private pump(q: Q): void {
    if (q.deleted) return;
    while (q.waiters.size > 0) {
      const w = q.waiters.peek()!;
      if (w.done) {
        q.waiters.shift();
        continue;
      }
      if (!this.hasShared(q)) break;
      this.endWaiter(w, this.takeShared(q, w.max, w.owner, w.vis));
    }
    // Round-robin: the pointer moves past a subscription only when it was given a message.
    const subs = q.subs;
    let idle = 0;
    let i = q.rr;
    while (idle < subs.length) {
      if (i >= subs.length) i = 0;
      const s = subs[i]!;
      i++;
      if (s.inflight >= s.prefetch) {
        idle++;
        continue;
      }
      const m = this.popVisible(s.own) ?? this.nextShared(q);
      if (m === undefined) {
        idle++;
        continue;
      }
      idle = 0;
      q.rr = i;
      this.ready.deliveries.push({ subscription_id: s.id, owner: s.owner, message: this.lease(m, s.owner, q.opts.visibility_timeout_ms, s) });
    }
  }

  private popVisible(h: Heap<Msg>): Msg | undefined {
    for (;;) {
      const m = h.pop();
      if (m === undefined || m.state === "visible") return m;
    }
  }

  private hasShared(q: Q): boolean {
    if (q.opts.type !== "fifo") {
      for (;;) {
        const m = q.ready.peek();
        if (m === undefined) return false;
        if (m.state === "visible") return true;
        q.ready.pop();
      }
    }
    for (;;) {
      const e = q.readyGroups.peek();
      if (e === undefined) return false;
      if (this.entryLive(q, e)) return true;
      q.readyGroups.pop();
      if (e.g.queuedSeq === e.seq) e.g.queuedSeq = undefined;
    }
  }

  private entryLive(q: Q, e: GroupEntry): boolean {
    return e.g.queuedSeq === e.seq && this.groupReady(q, e.g) && e.g.msgs.peek()!.seq === e.seq;
  }

  private groupReady(q: Q, g: Group): boolean {
    const h = g.msgs.peek();
    return h !== undefined && h.state === "visible" && !g.busy && q.groups.get(g.id) === g;
  }

  private nextShared(q: Q): Msg | undefined {
    if (q.opts.type !== "fifo") return this.popVisible(q.ready);
    for (;;) {
      const e = q.readyGroups.pop();
      if (e === undefined) return undefined;
      const live = this.entryLive(q, e);
      if (e.g.queuedSeq === e.seq) e.g.queuedSeq = undefined;
      if (live) return e.g.msgs.peek();
    }
  }

  private takeShared(q: Q, max: number, owner: string, vis: number): ReceivedMessage[] {
    const out: ReceivedMessage[] = [];
    while (out.length < max) {
      const m = this.nextShared(q);
      if (m === undefined) break;
      out.push(this.lease(m, owner, vis, undefined));
    }
    return out;
  }

  private enqueueGroup(q: Q, g: Group): void {
    if (!this.groupReady(q, g)) return;
    const seq = g.msgs.peek()!.seq;
    if (g.queuedSeq === seq) return;
    g.queuedSeq = seq;
    q.readyGroups.push({ g, seq });
  }

  private addMsg(
    q: Q,
    f: {
      id: string;
      seq: number;
      body: unknown;
      size: number;
      sentAt: number;
      priority: number | undefined;
      groupId: string | undefined;
      amo: boolean;
      deadLetter: DeadLetterInfo | undefined;
      receiveCount: number;
      visibleAt: number;
      copyFor?: Sub;
      quorum?: Quorum;
    },
  ): Msg {
    let group: Group | undefined;
    if (f.groupId !== undefined) {
      group = q.groups.get(f.groupId);
      if (group === undefined) q.groups.set(f.groupId, (group = { id: f.groupId, msgs: new Deque(), busy: false, queuedSeq: undefined }));
    }
    const m: Msg = {
      id: f.id,
      seq: f.seq,
      q,
      body: f.body,
      size: f.size,
      sentAt: f.sentAt,
      priority: f.priority,
      group,
      amo: f.amo,
      copyFor: f.copyFor,
      quorum: f.quorum,
      deadLetter: f.deadLetter,
      receiveCount: f.receiveCount,
      state: "gone",
      visibleAt: f.visibleAt,
      gen: 0,
      lease: undefined,
    };
    group?.msgs.push(m);
    q.msgs.set(m.seq, m);
    f.copyFor?.copies.add(m);
    this.totalMessages++;
    this.totalBytes += m.size;
    if (m.visibleAt > this.now()) {
      this.setState(m, "delayed");
      this.liveTimed++;
      this.schedule(m.visibleAt, EvKind.Delay, { msg: m });
    } else this.makeVisible(m);
    return m;
  }

  private setState(m: Msg, s: MsgState): void {
    const q = m.q;
    if (m.state === "visible") q.visible--;
    else if (m.state === "inflight") q.inflight--;
    else if (m.state === "delayed") q.delayed--;
    if (s === "visible") q.visible++;
    else if (s === "inflight") q.inflight++;
    else if (s === "delayed") q.delayed++;
    m.state = s;
    m.gen++;
  }

  private makeVisible(m: Msg): void {
    if (m.state === "delayed") this.liveTimed--;
    this.setState(m, "visible");
    const q = m.q;
    if (m.copyFor !== undefined) m.copyFor.own.push(m);
    else if (m.group !== undefined) this.enqueueGroup(q, m.group);
    else q.ready.push(m);
    this.dirty.add(q);
  }

  private writeMsg(m: Msg): void {
    const r: Parameters<typeof encodeMessageRecord>[0] = {
      id: m.id,
      seq: m.seq,
      sent_at: m.sentAt,
      visible_at: m.visibleAt,
      receive_count: m.receiveCount,
    };
    if (m.priority !== undefined) r.priority = m.priority;
    if (m.group !== undefined) r.group_id = m.group.id;
    if (m.amo) r.amo = true;
    if (m.deadLetter !== undefined) r.dead_letter = m.deadLetter;
    this.ready.writes.set(storeKeys.message(m.q.name, m.seq), encodeMessageRecord(r));
  }

  private durable(m: Msg): boolean {
    return m.q.opts.durable && m.copyFor === undefined;
  }

  private toWire(m: Msg, receipt: string): ReceivedMessage {
    const w: ReceivedMessage = { message_id: m.id, receipt, body: m.body, receive_count: m.receiveCount, sent_at: m.sentAt };
    if (m.group !== undefined) w.group_id = m.group.id;
    if (m.priority !== undefined) w.priority = m.priority;
    if (m.deadLetter !== undefined) w.dead_letter = m.deadLetter;
    return w;
  }

  /** Delivers a visible message to `owner` (through `sub` for a push): a lease, or removal for at-most-once. */
  private lease(m: Msg, owner: string, vis: number, sub: Sub | undefined): ReceivedMessage {
    const q = m.q;
    m.receiveCount++;
    if (m.amo) {
      const w = this.toWire(m, SETTLED_RECEIPT_PREFIX + m.id);
      q.acked++;
      this.metaDirty.add(q);
      this.removeMsg(m);
      return w;
    }
    const receipt = this.newId();
    this.setState(m, "inflight");
    m.lease = { receipt, owner, sub, deadline: this.now() + vis };
    this.liveTimed++;
    this.receipts.set(receipt, m);
    this.ownerIndex(owner).leases.add(m);
    if (sub !== undefined) {
      sub.inflight++;
      sub.leases.add(m);
    }
    if (m.group !== undefined) m.group.busy = true;
    this.schedule(m.lease.deadline, EvKind.Lease, { msg: m });
    if (this.durable(m)) this.writeMsg(m);
    return this.toWire(m, receipt);
  }

  private leased(q: Q, receipt: string): Msg {
    const m = this.receipts.get(receipt);
    if (m === undefined || m.q !== q) throw staleReceipt(receipt);
    return m;
  }

  private clearLease(m: Msg): void {
    const l = m.lease;
    if (l === undefined) return;
    m.lease = undefined;
    this.liveTimed--;
    this.receipts.delete(l.receipt);
    this.dropFromOwner(l.owner, (o) => o.leases.delete(m));
    if (l.sub !== undefined) {
      l.sub.inflight--;
      l.sub.leases.delete(m);
    }
    if (m.group !== undefined) m.group.busy = false;
    this.dirty.add(m.q);
  }

  /** A lease ended without an ack: dead-letter after `max_receives`, else visible again (after `delay`). */
  private returnLease(m: Msg, reason: ReturnReason, delay: number): void {
    this.clearLease(m);
    const q = m.q;
    if (m.receiveCount >= q.opts.max_receives && q.opts.dead_letter_queue !== null && this.deadLetter(m, reason)) return;
    m.visibleAt = this.now() + delay;
    if (delay > 0) {
      this.setState(m, "delayed");
      this.liveTimed++;
      this.schedule(m.visibleAt, EvKind.Delay, { msg: m });
    } else this.makeVisible(m);
    // Expiry and disconnects need no write: a restart makes every lease visible anyway.
    if (reason === "nack" && this.durable(m)) this.writeMsg(m);
  }

  /**
   * Moves a message to its queue's dead-letter queue (made with defaults when missing). False,
   * leaving the message where it is, when the DLQ cannot take it (too many queues, DLQ full):
   * it is then offered again rather than lost.
   */
  private deadLetter(m: Msg, lastReturn: ReturnReason): boolean {
    const q = m.q;
    const dlqName = q.opts.dead_letter_queue!;
    let dlq = this.queues.get(dlqName);
    if (dlq === undefined) {
      if (this.queues.size >= this.limits.maxQueues) {
        log.warn(`queue ${q.name}: cannot create dead-letter queue ${dlqName} (too many queues); message ${m.id} stays`);
        return false;
      }
      dlq = this.makeQueue(
        dlqName,
        {
          type: "standard",
          visibility_timeout_ms: 30_000,
          max_receives: 3,
          dead_letter_queue: null,
          delay_ms: 0,
          dedup_window_ms: 300_000,
          max_messages: this.limits.defaultMaxMessages,
          durable: q.opts.durable,
        },
        this.now(),
      );
      this.metaDirty.add(dlq);
    }
    if (dlq.msgs.size >= dlq.opts.max_messages) {
      log.warn(`queue ${q.name}: dead-letter queue ${dlqName} is full; message ${m.id} stays`);
      return false;
    }
    const info: DeadLetterInfo = {
      reason: "max_receives",
      source_queue: q.name,
      receive_count: m.receiveCount,
      last_return: lastReturn,
      dead_lettered_at: this.now(),
    };
    this.removeMsg(m);
    q.deadLettered++;
    this.metaDirty.add(q);
    const d = this.addMsg(dlq, {
      id: m.id,
      seq: dlq.nextSeq++,
      body: m.body,
      size: m.size,
      sentAt: m.sentAt,
      priority: dlq.opts.type === "priority" ? (m.priority ?? 0) : undefined,
      groupId: dlq.opts.type === "fifo" ? (m.group?.id ?? "") : undefined,
      amo: false,
      deadLetter: info,
      receiveCount: 0,
      visibleAt: this.now(),
    });
    dlq.sent++;
    this.metaDirty.add(dlq);
    if (dlq.opts.durable) {
      this.writeMsg(d);
      this.ready.writes.set(storeKeys.body(dlq.name, d.seq), encodeBody(d.body));
    }
    return true;
  }

  /** Removes a message for good (ack, at-most-once delivery, dead-letter move, purge, delete). */
  private removeMsg(m: Msg): void {
    if (m.state === "gone") return;
    const q = m.q;
    this.clearLease(m);
    if (m.state === "delayed") this.liveTimed--;
    this.setState(m, "gone");
    q.msgs.delete(m.seq);
    this.totalMessages--;
    this.totalBytes -= m.size;
    const g = m.group;
    if (g !== undefined) {
      if (g.msgs.peek() === m) {
        g.msgs.shift();
        g.busy = false;
      } else g.msgs.remove(m);
      if (g.msgs.size === 0) q.groups.delete(g.id);
      else this.enqueueGroup(q, g);
    }
    if (m.copyFor !== undefined) m.copyFor.copies.delete(m);
    if (this.durable(m)) {
      this.ready.writes.set(storeKeys.message(q.name, m.seq), null);
      this.ready.writes.set(storeKeys.body(q.name, m.seq), null);
    }
    const qr = m.quorum;
    if (qr !== undefined && !qr.done) {
      qr.copies.delete(m);
      if (qr.acked >= qr.need) this.succeedQuorum(qr);
      else if (qr.acked + qr.copies.size < qr.need) {
        this.failQuorum(
          qr,
          new MpregError(ErrorCode.UNREACHABLE, `quorum lost: ${qr.acked} acks and ${qr.copies.size} copies left of ${qr.need}`, {
            reason: "quorum_lost",
            acked: qr.acked,
            quorum: qr.need,
          }),
        );
      }
    }
    this.dirty.add(q);
  }

  private closeSub(s: Sub, reason: ReturnReason): void {
    if (s.closed) return;
    s.closed = true;
    const q = s.q;
    const i = q.subs.indexOf(s);
    if (i >= 0) q.subs.splice(i, 1);
    this.subs.delete(s.id);
    this.ready.ended.push(s.id);
    this.dropFromOwner(s.owner, (o) => o.subs.delete(s));
    for (const m of [...s.leases]) {
      if (m.copyFor !== undefined) this.removeMsg(m);
      else this.returnLease(m, reason, 0);
    }
    for (const m of [...s.copies]) this.removeMsg(m);
    s.own.clear();
    this.dirty.add(q);
  }

  private endWaiter(w: Waiter, messages: ReceivedMessage[] | undefined, error?: MpregError): void {
    if (w.done) return;
    w.done = true;
    this.liveTimed--;
    this.waiters.delete(w.id);
    this.dropFromOwner(w.owner, (o) => o.waiters.delete(w));
    if (error !== undefined) this.ready.completions.push({ kind: "receive-failed", waiter: w.id, error });
    else this.ready.completions.push({ kind: "receive", waiter: w.id, messages: messages ?? [] });
  }

  private succeedQuorum(qr: Quorum): void {
    qr.done = true;
    this.liveTimed--;
    this.quorums.delete(qr.ticket);
    qr.q.quorums.delete(qr);
    this.ready.completions.push({ kind: "quorum", ticket: qr.ticket, result: { message_id: qr.messageId, duplicate: false } });
  }

  /** Fails a quorum send: copies not yet acked are withdrawn, and its dedup id is forgotten so a retry is not a duplicate. */
  private failQuorum(qr: Quorum, error: MpregError): void {
    if (qr.done) return;
    qr.done = true;
    this.liveTimed--;
    this.quorums.delete(qr.ticket);
    qr.q.quorums.delete(qr);
    for (const m of [...qr.copies]) this.removeMsg(m);
    const d = qr.dedup;
    if (d !== undefined && !d.removed && qr.q.dedup.get(d.id) === d) {
      d.removed = true;
      qr.q.dedup.delete(d.id);
      if (qr.q.opts.durable) this.ready.writes.set(storeKeys.dedup(qr.q.name, d.id), null);
    }
    this.ready.completions.push({ kind: "quorum-failed", ticket: qr.ticket, error });
  }

  /** Forgets dedup ids whose window passed (they expire in insertion order: one window per queue). */
  private pruneDedup(q: Q, now: number): void {
    for (;;) {
      const e = q.dedupOrder.peek();
      if (e === undefined) return;
      if (e.removed) {
        q.dedupOrder.shift();
        continue;
      }
      if (e.expiresAt > now) return;
      q.dedupOrder.shift();
      e.removed = true;
      if (q.dedup.get(e.id) === e) q.dedup.delete(e.id);
      if (q.opts.durable) this.ready.writes.set(storeKeys.dedup(q.name, e.id), null);
    }
  }
}
