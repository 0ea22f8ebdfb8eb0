/**
 * The driver of `QueueCore`: owns the core, the store (one KV namespace of a persistence
 * backend) and the one timer, and turns the core's outputs into promises and pushes.
 *
 * Order of duties (docs/queue.md): after every core call, take the Ready; write its store
 * writes as one atomic batch (group commit: while a batch is being written, the next one
 * gathers everything that arrives); only when that batch is durable, push its deliveries,
 * answer its waits and answer the call itself; then re-arm the timer for `nextDueAt()`.
 */

import { ErrorCode, MpregError, createLogger, type QueueDelivery } from "@mpreg/envelope";
import type { BatchOp, KVStore, StorageBackend } from "@mpreg/persistence";
import { LOCAL_OWNER, QueueCore, type QueueReady } from "./queue-core.js";
import type { QueueLimits } from "./limits.js";
import { loadStore } from "./store-codec.js";
import type {
  CreateResult,
  DeleteResult,
  NackOptions,
  PurgeResult,
  QueueInfo,
  QueueOptions,
  QueueStats,
  ReceivedMessage,
  ReceiveOptions,
  SendOptions,
  SendResult,
  SubscribeOptions,
} from "./types.js";

const log = createLogger("queue");

/** The timer functions the service uses (inject a simulated clock's in tests). */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Options of {@link QueueService.open}. */
export interface QueueServiceOptions {
  /** Storage for durable queues; without one every queue lives in memory. The caller owns it (the service never closes it). */
  backend?: StorageBackend;
  /** KV namespace of the backend holding the queues. Default `"queues"`. */
  namespace?: string;
  /** Clock in ms since the epoch (default `Date.now`). */
  now?: () => number;
  /** Timer functions (default the global `setTimeout`/`clearTimeout`). */
  timers?: Timers;
  /** Id source for message ids, receipts and subscription ids (default ULIDs). */
  newId?: () => string;
  limits?: Partial<QueueLimits>;
  /** Called with every queue name after the set of queues changed (and that change is durable). */
  onQueuesChanged?: (names: readonly string[]) => void;
}

/** What the service found in its store when it opened. */
export interface QueueRecovery {
  queues: number;
  messages: number;
  /** Unreadable or orphaned records removed. */
  dropped: number;
}

/** Receives the `queue-delivery` frames of one subscription. */
export type DeliveryPush = (frame: QueueDelivery) => void;

interface Release {
  run?: () => void;
  resolve?: () => void;
  reject?: (e: unknown) => void;
}

interface Wait<T> {
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
  cleanup: () => void;
}

interface Pusher {
  push: DeliveryPush;
  /** Deliveries held until the subscribe answer went out. */
  held: QueueDelivery[] | undefined;
}

/** setTimeout cannot wait longer than this (ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;
const RESOLVED = Promise.resolve();
const te = new TextEncoder();

const defaultTimers: Timers = {
  setTimeout: (fn, ms) => {
    const h = setTimeout(fn, ms);
    // A pending lease must not keep an otherwise finished process alive.
    h.unref?.();
    return h;
  },
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** A queue service: every `mpreg.queue.*` operation as an async method, durable when given a backend. */
export class QueueService {
  /** What the store held when the service opened. */
  readonly recovery: QueueRecovery;
  private readonly core: QueueCore;
  private readonly kv: KVStore | undefined;
  private readonly timers: Timers;
  private readonly listeners = new Set<(names: readonly string[]) => void>();
  private pendingWrites = new Map<string, Uint8Array | null>();
  private pendingReleases: Release[] = [];
  private writing = false;
  private flushScheduled = false;
  private failure: MpregError | undefined;
  private closed = false;
  private timer: unknown;
  private timerAt = Infinity;
  private readonly waits = new Map<number, Wait<ReceivedMessage[]>>();
  private readonly quorumWaits = new Map<number, Wait<SendResult>>();
  private readonly pushers = new Map<string, Pusher>();

  private constructor(core: QueueCore, kv: KVStore | undefined, opts: QueueServiceOptions, recovery: QueueRecovery) {
    this.core = core;
    this.kv = kv;
    this.timers = opts.timers ?? defaultTimers;
    this.recovery = recovery;
    if (opts.onQueuesChanged) this.listeners.add(opts.onQueuesChanged);
  }

  /**
   * Opens the service: with a backend, loads every queue from it (leases in flight at a crash
   * become visible again) and makes the clean-up of the load durable before resolving.
   */
  static async open(opts: QueueServiceOptions = {}): Promise<QueueService> {
    const core = new QueueCore({
      ...(opts.now ? { now: opts.now } : {}),
      ...(opts.newId ? { newId: opts.newId } : {}),
      ...(opts.limits ? { limits: opts.limits } : {}),
      storage: opts.backend !== undefined,
    });
    let kv: KVStore | undefined;
    const recovery: QueueRecovery = { queues: 0, messages: 0, dropped: 0 };
    if (opts.backend) {
      kv = opts.backend.kv(opts.namespace ?? "queues");
      const state = await loadStore(kv);
      recovery.queues = state.queues.length;
      recovery.messages = state.queues.reduce((n, q) => n + q.messages.length, 0);
      recovery.dropped = state.dropped.length;
      if (state.dropped.length > 0) log.warn(`queue store: ${state.dropped.length} unreadable or orphaned records removed`);
      core.restore(state);
    }
    const s = new QueueService(core, kv, opts, recovery);
    await s.commit();
    return s;
  }

  /** Creates a queue (idempotent with the same options; other options are 1002 naming the field). */
  create(name: string, options?: Partial<QueueOptions>): Promise<CreateResult> {
    return this.call(() => this.core.create(name, options));
  }

  /**
   * Sends a message; resolves once it is durable (durable queues) or accepted. A quorum send
   * resolves once `quorum` subscribers acked their copy. `signal` ends a quorum wait early.
   */
  async send(name: string, body: unknown, options?: SendOptions, signal?: AbortSignal): Promise<SendResult> {
    this.check();
    let out;
    try {
      out = this.core.send(name, body, options);
    } catch (e) {
      await this.commit();
      throw e;
    }
    const ticket = out.ticket;
    if (ticket === undefined) {
      await this.commit();
      return { message_id: out.message_id, duplicate: out.duplicate };
    }
    const p = this.wait(this.quorumWaits, ticket, signal, () =>
      this.core.cancelQuorum(ticket, new MpregError(ErrorCode.TIMEOUT, "the quorum send's request ended", { reason: "cancelled" })),
    );
    this.kick();
    return p;
  }

  /**
   * Receives up to `max` messages leased to `owner` (a connection id; its leases return when it
   * closes). With `wait_ms`, waits for a message; `signal` ends the wait early (answering `[]`).
   */
  async receive(name: string, options?: ReceiveOptions, owner: string = LOCAL_OWNER, signal?: AbortSignal): Promise<ReceivedMessage[]> {
    this.check();
    let out;
    try {
      out = this.core.receive(name, options, owner);
    } catch (e) {
      await this.commit();
      throw e;
    }
    if (out.waiter === undefined) {
      await this.commit();
      return out.messages;
    }
    const id = out.waiter;
    const p = this.wait(this.waits, id, signal, () => this.core.cancelWait(id));
    this.kick();
    return p;
  }

  /** Acks a delivery (the message is removed); a stale receipt is 1001. */
  ack(name: string, receipt: string): Promise<{ ok: true }> {
    return this.call(() => this.core.ack(name, receipt));
  }

  /** Returns a delivery: visible again after `delay_ms`, or dead-lettered after `max_receives`. */
  nack(name: string, receipt: string, options?: NackOptions): Promise<{ ok: true }> {
    return this.call(() => this.core.nack(name, receipt, options));
  }

  /** Sets a lease to end `ms` from now. */
  extend(name: string, receipt: string, ms: number): Promise<{ ok: true }> {
    return this.call(() => this.core.extend(name, receipt, ms));
  }

  /**
   * Opens a push subscription owned by `owner`: `push` receives a `queue-delivery` frame per
   * message (at most `prefetch` unacked). The first deliveries are pushed on the event-loop turn
   * after this promise resolved, so the answer can reach the client before them.
   */
  async subscribe(name: string, options: SubscribeOptions | undefined, owner: string, push: DeliveryPush): Promise<{ subscription_id: string }> {
    let pusher: Pusher | undefined;
    const r = await this.call(() => {
      const res = this.core.subscribe(name, options, owner);
      pusher = { push, held: [] };
      this.pushers.set(res.subscription_id, pusher);
      return res;
    });
    setImmediate(() => {
      const held = pusher!.held ?? [];
      pusher!.held = undefined;
      if (this.pushers.get(r.subscription_id) === pusher) for (const f of held) this.deliver(pusher!, f);
    });
    return r;
  }

  /** Ends a subscription (1001 when unknown, or owned by another owner when `owner` is given). */
  unsubscribe(subscriptionId: string, owner?: string): Promise<{ ok: true }> {
    return this.call(() => this.core.unsubscribe(subscriptionId, owner));
  }

  /** The counts of one queue. */
  stats(name: string): Promise<QueueStats> {
    return this.call(() => this.core.stats(name));
  }

  /** Every queue with its type, durability and counts. */
  list(): Promise<QueueInfo[]> {
    return this.call(() => this.core.list());
  }

  /** The options a queue was created with (1001 when unknown). */
  options(name: string): QueueOptions {
    this.check();
    return this.core.options(name);
  }

  /** Deletes a queue and everything in it. */
  delete(name: string): Promise<DeleteResult> {
    return this.call(() => this.core.delete(name));
  }

  /** Removes every message of a queue. */
  purge(name: string): Promise<PurgeResult> {
    return this.call(() => this.core.purge(name));
  }

  /** The names of every queue, sorted (for the catalog). */
  names(): string[] {
    return this.core.names();
  }

  /** Calls `listener` with every queue name whenever the set of queues changed. Returns a function that removes it. */
  onQueuesChanged(listener: (names: readonly string[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The connection `owner` closed: its subscriptions end, its leases become visible again, its waits answer `[]`. */
  async closeOwner(owner: string): Promise<void> {
    if (this.closed || this.failure) return;
    this.core.closeOwner(owner);
    await this.commit();
  }

  /** Resolves once every write so far is durable and everything it released was handed out. */
  idle(): Promise<void> {
    return this.commit();
  }

  /**
   * Stops the service: waiting receives answer `[]`, waiting quorum sends fail (1005), the timer
   * stops, and pending writes are finished. Later calls fail with 1005. The backend stays open.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const id of [...this.waits.keys()]) this.core.cancelWait(id);
    for (const t of [...this.quorumWaits.keys()]) {
      this.core.cancelQuorum(t, new MpregError(ErrorCode.UNREACHABLE, "the queue service is closing", { reason: "closing" }));
    }
    this.closed = true;
    this.clearTimer();
    try {
      await this.commit();
    } finally {
      this.pushers.clear();
    }
  }

  // -------------------------------------------------------------------------------------------

  private check(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new MpregError(ErrorCode.UNREACHABLE, "the queue service is closed", { reason: "closed" });
  }

  /** Runs a core call and answers once what it wrote is durable (also when it threw). */
  private async call<T>(fn: () => T): Promise<T> {
    this.check();
    let r: T;
    try {
      r = fn();
    } catch (e) {
      await this.commit();
      throw e;
    }
    await this.commit();
    return r;
  }

  private wait<T>(map: Map<number, Wait<T>>, id: number, signal: AbortSignal | undefined, cancel: () => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let cleanup = () => {};
      if (signal !== undefined) {
        const onAbort = () => {
          cancel();
          this.kick();
        };
        if (signal.aborted) queueMicrotask(onAbort);
        else {
          signal.addEventListener("abort", onAbort, { once: true });
          cleanup = () => signal.removeEventListener("abort", onAbort);
        }
      }
      map.set(id, { resolve, reject, cleanup });
    });
  }

  /** Takes the core's Ready, queues its writes and releases, and starts a batch when none is being written. */
  private kick(): void {
    if (this.core.hasReady()) this.absorb(this.core.takeReady());
    this.arm();
    if (this.failure) return;
    if (!this.writing && this.pendingWrites.size === 0) {
      const rel = this.pendingReleases;
      this.pendingReleases = [];
      this.release(rel);
    } else if (!this.writing && !this.flushScheduled) {
      // Start on the next microtask so calls made in the same turn share the batch.
      this.flushScheduled = true;
      queueMicrotask(() => {
        this.flushScheduled = false;
        this.startBatch();
      });
    }
  }

  /** kick(), then a promise that resolves once everything queued so far is released. */
  private commit(): Promise<void> {
    this.kick();
    if (this.failure) return Promise.reject(this.failure);
    if (!this.writing && this.pendingWrites.size === 0 && !this.flushScheduled) return RESOLVED;
    return new Promise((resolve, reject) => this.pendingReleases.push({ resolve, reject }));
  }

  private absorb(rd: QueueReady): void {
    if (this.kv !== undefined) for (const [k, v] of rd.writes) this.pendingWrites.set(k, v);
    for (const d of rd.deliveries) {
      const frame: QueueDelivery = { role: "queue-delivery", subscription_id: d.subscription_id, message: d.message };
      this.pendingReleases.push({
        run: () => {
          const p = this.pushers.get(d.subscription_id);
          if (p !== undefined) this.deliver(p, frame);
        },
      });
    }
    for (const c of rd.completions) {
      this.pendingReleases.push({
        run: () => {
          if (c.kind === "receive" || c.kind === "receive-failed") {
            const w = this.waits.get(c.waiter);
            if (w === undefined) return;
            this.waits.delete(c.waiter);
            w.cleanup();
            if (c.kind === "receive") w.resolve(c.messages);
            else w.reject(c.error);
          } else {
            const w = this.quorumWaits.get(c.ticket);
            if (w === undefined) return;
            this.quorumWaits.delete(c.ticket);
            w.cleanup();
            if (c.kind === "quorum") w.resolve(c.result);
            else w.reject(c.error);
          }
        },
      });
    }
    if (rd.ended.length > 0) {
      const ended = rd.ended;
      this.pendingReleases.push({ run: () => ended.forEach((id) => this.pushers.delete(id)) });
    }
    if (rd.queuesChanged) {
      this.pendingReleases.push({
        run: () => {
          const names = this.core.names();
          for (const l of this.listeners) {
            try {
              l(names);
            } catch (e) {
              log.warn("onQueuesChanged listener threw", e);
            }
          }
        },
      });
    }
  }

  private deliver(p: Pusher, frame: QueueDelivery): void {
    if (p.held !== undefined) {
      p.held.push(frame);
      return;
    }
    try {
      p.push(frame);
    } catch (e) {
      // The lease stands: it expires, or returns when the node reports the connection closed.
      log.debug("queue delivery push failed", e);
    }
  }

  private release(rel: Release[]): void {
    for (const r of rel) {
      if (r.run) r.run();
      r.resolve?.();
    }
  }

  private startBatch(): void {
    if (this.writing || this.failure) return;
    if (this.pendingWrites.size === 0) {
      const rel = this.pendingReleases;
      this.pendingReleases = [];
      this.release(rel);
      return;
    }
    const ops: BatchOp[] = [];
    for (const [k, v] of this.pendingWrites) ops.push(v === null ? { type: "del", key: te.encode(k) } : { type: "put", key: te.encode(k), value: v });
    const rel = this.pendingReleases;
    this.pendingWrites = new Map();
    this.pendingReleases = [];
    this.writing = true;
    this.kv!.batch(ops).then(
      () => {
        this.writing = false;
        this.release(rel);
        this.startBatch();
      },
      (e: unknown) => this.fail(e, rel),
    );
  }

  /** A write failed: the state in memory is ahead of the disk, so the service stops (reopen it). */
  private fail(e: unknown, rel: Release[]): void {
    this.writing = false;
    const msg = e instanceof Error ? e.message : String(e);
    this.failure = new MpregError(ErrorCode.EXECUTION_FAILED, `queue storage failed: ${msg}; reopen the queue service`, { reason: "storage_failed" });
    log.error(this.failure.message);
    this.clearTimer();
    for (const r of [...rel, ...this.pendingReleases]) r.reject?.(this.failure);
    this.pendingReleases = [];
    this.pendingWrites = new Map();
    for (const w of [...this.waits.values(), ...this.quorumWaits.values()]) {
      w.cleanup();
      w.reject(this.failure);
    }
    this.waits.clear();
    this.quorumWaits.clear();
    this.pushers.clear();
  }

  /** Keeps the one timer set for the core's next due event. */
  private arm(): void {
    if (this.closed || this.failure) return;
    const at = this.core.nextDueAt();
    if (at === undefined) {
      this.clearTimer();
      return;
    }
    if (this.timer !== undefined && this.timerAt <= at) return;
    this.clearTimer();
    this.timerAt = at;
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      if (this.closed || this.failure) return;
      this.core.advance();
      this.kick();
    }, Math.min(MAX_TIMER_MS, Math.max(0, at - this.core.now())));
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }
}
