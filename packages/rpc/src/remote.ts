/**
 * Remote execution of single commands over UnifiedMessages (`fabric-message` frames): the
 * caller side (`RemoteDispatcher`, the executor's injected dispatcher) and the callee side
 * (`RemoteCallHandler`). Transport-agnostic: both take a `send(nodeId, message)` function.
 *
 * Payloads (message_type "rpc", delivery fire_and_forget):
 *   call:   topic `mpreg.rpc.call`,   `{kind: "call", command, request_id, deadline}`
 *   result: topic `mpreg.rpc.result`, `{kind: "result", ok: true, value}` or `{kind: "result", ok: false, error}`
 *   cancel: topic `mpreg.rpc.cancel`, `{kind: "cancel"}`
 * `headers.correlation_id` ties a result or cancel to its call.
 */
import {
  ErrorCode,
  MpregError,
  createLogger,
  createUnifiedMessage,
  estimateEncodedSize,
  isMpregError,
  newId,
  type UnifiedMessage,
  type WireError,
} from "@mpreg/envelope";
import type { PlanCommand } from "@mpreg/router";
import type { Cancellation, DispatchRequest, Dispatcher, Executor } from "./executor.js";
import { TurnBatcher } from "./turn-batcher.js";

const log = createLogger("rpc");

/** Period of the deadline sweep of waiting remote calls. */
const SWEEP_MS = 250;

export const RPC_CALL_TOPIC = "mpreg.rpc.call";
export const RPC_RESULT_TOPIC = "mpreg.rpc.result";
export const RPC_CANCEL_TOPIC = "mpreg.rpc.cancel";
/** Several calls to one node in one message (node-to-node, docs/protocol.md section 9). */
export const RPC_CALLS_TOPIC = "mpreg.rpc.calls";
/** The results of calls that came in a batch, batched back the same way. */
export const RPC_RESULTS_TOPIC = "mpreg.rpc.results";

/**
 * Most calls (or results) carried in one `mpreg.rpc.calls` (`mpreg.rpc.results`) message.
 * The calls dispatched to one node in one event-loop turn travel together: one frame, one set
 * of routing headers, one decode, instead of one per call (docs/rpc-hot-path.md).
 */
export const MAX_CALL_BATCH = 256;
/** A batch whose calls or results add up to this many (estimated) bytes is sent at once. */
export const MAX_CALL_BATCH_BYTES = 256 * 1024;

/**
 * Sends a message to a node; false when it cannot reach it. It may throw an MpregError to
 * refuse a message (e.g. one too large for a peer frame): the call then fails with that error.
 */
export type SendToNode = (nodeId: string, message: UnifiedMessage) => boolean;

export interface RemoteCallPayload {
  kind: "call";
  command: PlanCommand;
  request_id: string;
  /** Absolute deadline, Unix ms. */
  deadline: number;
}

export type RemoteResultPayload = { kind: "result"; ok: true; value: unknown } | { kind: "result"; ok: false; error: WireError };

/** One call of an `mpreg.rpc.calls` batch; `id` plays the single message's `correlation_id`. */
export interface RemoteCallEntry {
  id: string;
  command: PlanCommand;
  request_id: string;
  /** Absolute deadline, Unix ms. */
  deadline: number;
  trace_id: string;
}

/** Payload of `mpreg.rpc.calls`. */
export interface RemoteCallsPayload {
  kind: "calls";
  calls: RemoteCallEntry[];
}

/** One result of an `mpreg.rpc.results` batch, for the call `id`. */
export type RemoteResultEntry = { id: string; ok: true; value: unknown } | { id: string; ok: false; error: WireError };

/** Payload of `mpreg.rpc.results`. */
export interface RemoteResultsPayload {
  kind: "results";
  results: RemoteResultEntry[];
}

/** One call awaiting its result (and, while batched, waiting for the end of the turn). */
class Pending {
  done!: (ok: boolean, value: unknown) => void;
  detach: () => void = noop;
  /** Left this node (a cancel must follow it). */
  sent = false;
  constructor(
    readonly entry: RemoteCallEntry,
    readonly nodeId: string,
    readonly clusterId: string | undefined,
    /** Unix ms after which the call is given up locally. */
    readonly giveUpAt: number,
  ) {}

  get command(): PlanCommand {
    return this.entry.command;
  }

  resolve(v: unknown): void {
    this.answer(true, v);
  }

  reject(e: unknown): void {
    this.answer(false, e);
  }

  /** The caller runs at once: its failure must not stop the other answers of a batch or a sweep. */
  private answer(ok: boolean, v: unknown): void {
    try {
      this.done(ok, v);
    } catch (e) {
      log.warn(`the caller of ${this.entry.command.name} threw on its answer: ${(e as Error).message}`);
    }
  }
}

function noop(): void {}

/** Options of {@link RemoteDispatcher}. */
export interface RemoteDispatcherOptions {
  nodeId: string;
  clusterId: string;
  send: SendToNode;
  /**
   * Whether `send` would find a way to a node now. Given, the dispatcher batches: calls to one
   * node in one turn leave as one `mpreg.rpc.calls` message at the end of the turn (a lone call
   * as `mpreg.rpc.call`), and a node it cannot reach fails the call at once. Absent, every call
   * is sent on its own when dispatched (what a federating node does: export policies are
   * checked per function).
   */
  canSend?: ((nodeId: string) => boolean) | undefined;
  /** `hops_remaining` of the call messages (default: the envelope's, 8). */
  maxHops?: number | undefined;
  /** Most calls awaiting a result; past it `dispatch` fails with 1007. Default 65 536. */
  maxPending?: number;
  /** Extra wait past the request deadline before a call is given up locally. Default 1000 ms. */
  graceMs?: number;
}

/** Counters of a {@link RemoteDispatcher}. */
export interface RemoteDispatcherStats {
  /** `mpreg.rpc.calls` messages sent. */
  batches: number;
  /** Calls carried in them. */
  batchedCalls: number;
}

function unreachableError(nodeId: string, command: string, reason: string): MpregError {
  return new MpregError(ErrorCode.UNREACHABLE, `node ${nodeId} unreachable: ${reason}`, { command, node_id: nodeId, reason });
}

/** A refusal by the fabric (too large, no route to the cluster) names the command too. */
function refusalError(e: unknown, p: Pending): MpregError {
  if (!isMpregError(e)) return unreachableError(p.nodeId, p.command.name, String(e));
  return e.details.command === undefined ? new MpregError(e.code, e.message, { command: p.command.name, ...e.details }) : e;
}

/**
 * The caller side: sends a call to the chosen node and resolves with its result. Fails with
 * 1005 when the node cannot be reached or goes away before answering (not retried: the handler
 * may have run), with the remote error (1003, …) when the remote handler failed.
 */
export class RemoteDispatcher implements Dispatcher {
  private readonly pending = new Map<string, Pending>();
  private readonly perNode = new Map<string, number>();
  /** One timer for all calls (a timer per call costs more than a fast remote call). */
  private sweepTimer: ReturnType<typeof setInterval> | undefined;
  private readonly maxPending: number;
  private readonly graceMs: number;
  /** Calls to send at the end of this turn, by node (batching only). */
  private readonly outbox = new TurnBatcher<Pending>(MAX_CALL_BATCH, MAX_CALL_BATCH_BYTES, (nodeId, calls) => this.sendBatch(nodeId, calls));
  /** Call ids: a random prefix per dispatcher and a counter (cheaper than an id per call). */
  private readonly idPrefix = `${newId()}.`;
  private idSeq = 0;
  readonly stats: RemoteDispatcherStats = { batches: 0, batchedCalls: 0 };

  constructor(private readonly opts: RemoteDispatcherOptions) {
    this.maxPending = opts.maxPending ?? 65_536;
    this.graceMs = opts.graceMs ?? 1000;
  }

  /** Calls awaiting a result. */
  get size(): number {
    return this.pending.size;
  }

  /** Calls awaiting a result from `nodeId`: the load this node puts on it. */
  pendingTo(nodeId: string): number {
    return this.perNode.get(nodeId) ?? 0;
  }

  dispatch(req: DispatchRequest): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => this.dispatchWith(req, (ok, v) => (ok ? resolve(v) : reject(v))));
  }

  /**
   * {@link dispatch} without a promise: `done(true, value)` or `done(false, error)` exactly once
   * (at once when the call cannot be sent, from `handleResult` otherwise).
   */
  dispatchWith(req: DispatchRequest, done: (ok: boolean, value: unknown) => void): void {
    if (this.pending.size >= this.maxPending) {
      done(false, MpregError.overloaded(`too many remote calls in flight (${this.maxPending})`, 100));
      return;
    }
    const canSend = this.opts.canSend;
    if (canSend !== undefined && !canSend(req.node_id)) {
      done(false, unreachableError(req.node_id, req.command.name, "no link to the node"));
      return;
    }
    const id = this.idPrefix + (++this.idSeq).toString(36);
    const entry: RemoteCallEntry = { id, command: req.command, request_id: req.request_id, deadline: req.deadline, trace_id: req.trace_id ?? req.request_id };
    const p = new Pending(entry, req.node_id, req.cluster_id, req.deadline + this.graceMs);
    p.done = done;
    const c = req.cancellation;
    if (c !== undefined) {
      p.detach = c.onAbort(() => this.abort(id, c.reason));
    } else {
      const signal = req.signal;
      const onAbort = () => this.abort(id, signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      p.detach = () => signal.removeEventListener("abort", onAbort);
    }
    this.perNode.set(req.node_id, (this.perNode.get(req.node_id) ?? 0) + 1);
    this.armSweep();
    this.pending.set(id, p);
    if (canSend === undefined) this.sendOne(p);
    else this.enqueue(p);
  }

  /** Feeds a result message (single or batch); true when it was one. */
  handleResult(msg: UnifiedMessage): boolean {
    if (msg.topic === RPC_RESULTS_TOPIC) {
      const payload = msg.payload as Partial<RemoteResultsPayload> | null;
      const results = payload?.results;
      if (payload?.kind !== "results" || !Array.isArray(results)) {
        log.warn(`malformed result batch from ${msg.headers.source_node}`);
        return true;
      }
      const from = msg.headers.source_node;
      for (const r of results as unknown[]) {
        const id = (r as { id?: unknown } | null)?.id;
        if (typeof id !== "string") continue;
        const p = this.takeFrom(id, from);
        if (p !== undefined) this.settle(p, r as Partial<RemoteResultEntry>, "results");
      }
      return true;
    }
    const p = this.takeFrom(msg.headers.correlation_id, msg.headers.source_node);
    if (!p) return false;
    this.settle(p, msg.payload as Partial<RemoteResultPayload> | null, "result");
    return true;
  }

  /**
   * The call `id` if it went to `from`: call ids are a per-dispatcher prefix and a counter, so
   * a node that saw one call could guess the others; only the node a call went to answers it.
   */
  private takeFrom(id: string, from: string): Pending | undefined {
    const p = this.pending.get(id);
    return p !== undefined && p.nodeId === from ? this.take(id) : undefined;
  }

  private settle(p: Pending, r: { kind?: unknown; ok?: unknown; value?: unknown; error?: unknown } | null, kind: "result" | "results"): void {
    if (r === null || typeof r !== "object" || (kind === "result" && r.kind !== "result") || typeof r.ok !== "boolean") {
      p.reject(new MpregError(ErrorCode.UNREACHABLE, "malformed result from remote node", { command: p.command.name, node_id: p.nodeId, reason: "malformed result" }));
    } else if (r.ok) {
      p.resolve(r.value);
    } else {
      const e = r.error as Partial<WireError> | undefined;
      p.reject(MpregError.fromWire({ code: e?.code ?? ErrorCode.UNREACHABLE, message: e?.message ?? "remote error", details: e?.details ?? {} }));
    }
  }

  /**
   * Fails the call with this correlation id (e.g. a relay reported it undeliverable); the
   * error gets the command's name. False when no such call waits.
   */
  fail(correlationId: string, error: MpregError): boolean {
    const p = this.take(correlationId);
    if (!p) return false;
    p.reject(new MpregError(error.code, error.message, { command: p.command.name, node_id: p.nodeId, ...error.details }));
    return true;
  }

  /** Fails every call waiting on `nodeId` with 1005 (the node died or the link closed). */
  nodeGone(nodeId: string, reason = "node left or link closed"): void {
    // Taken first, answered after: an answer runs the caller at once, which may dispatch again.
    const gone: Pending[] = [];
    for (const [id, p] of this.pending) if (p.nodeId === nodeId) gone.push(this.take(id)!);
    for (const p of gone) p.reject(new MpregError(ErrorCode.UNREACHABLE, `node ${nodeId} went away while running ${p.command.name}`, { command: p.command.name, node_id: nodeId, reason }));
  }

  /** Fails every pending call (shutdown). */
  close(reason = "shutting down"): void {
    for (const p of [...this.pending.values()]) this.nodeGone(p.nodeId, reason);
    this.outbox.clear();
  }

  /** The request of call `id` was aborted: give up on it, and tell the callee if it was sent. */
  private abort(id: string, reason: unknown): void {
    const p = this.take(id);
    if (!p) return;
    if (p.sent) this.sendCancel(p.nodeId, id);
    p.reject(reason ?? unreachableError(p.nodeId, p.command.name, "cancelled"));
  }

  /**
   * Queues a call for its node until the end of this turn (a microtask), or sends the batch now
   * when it reached {@link MAX_CALL_BATCH} calls or {@link MAX_CALL_BATCH_BYTES}.
   */
  private enqueue(p: Pending): void {
    this.outbox.add(p.nodeId, p, estimateEncodedSize(p.entry, MAX_CALL_BATCH_BYTES));
  }

  /** One message for the calls still waiting (a lone call as `mpreg.rpc.call`, as older nodes expect). */
  private sendBatch(nodeId: string, queued: Pending[]): void {
    // Calls aborted while queued are gone from `pending`.
    const calls = queued.filter((p) => this.pending.get(p.entry.id) === p);
    if (calls.length === 0) return;
    if (calls.length === 1) {
      this.sendOne(calls[0]!);
      return;
    }
    const entries = calls.map((p) => p.entry);
    const first = calls[0]!;
    const msg = createUnifiedMessage({
      topic: RPC_CALLS_TOPIC,
      message_type: "rpc",
      payload: { kind: "calls", calls: entries } satisfies RemoteCallsPayload,
      headers: {
        source_node: this.opts.nodeId,
        source_cluster: this.opts.clusterId,
        target_node: nodeId,
        target_cluster: first.clusterId,
        trace_id: first.entry.trace_id,
      },
      ...(this.opts.maxHops === undefined ? {} : { maxHops: this.opts.maxHops }),
    });
    let sent: boolean;
    try {
      sent = this.opts.send(nodeId, msg);
    } catch (e) {
      // Refused as one frame (too large): one by one, so each call gets its own answer.
      log.debug(`${calls.length} calls to ${nodeId} refused as one frame (${(e as Error).message}): sent one by one`);
      for (const p of calls) this.sendOne(p);
      return;
    }
    if (!sent) {
      for (const p of calls) {
        this.take(p.entry.id);
        p.reject(unreachableError(nodeId, p.command.name, "no link to the node"));
      }
      return;
    }
    this.stats.batches++;
    this.stats.batchedCalls += calls.length;
    for (const p of calls) p.sent = true;
  }

  /** Sends one call as an `mpreg.rpc.call` message; fails it when it cannot leave. */
  private sendOne(p: Pending): void {
    const e = p.entry;
    const payload: RemoteCallPayload = { kind: "call", command: e.command, request_id: e.request_id, deadline: e.deadline };
    let sent: boolean;
    try {
      const msg = createUnifiedMessage({
        topic: RPC_CALL_TOPIC,
        message_type: "rpc",
        payload,
        headers: {
          source_node: this.opts.nodeId,
          source_cluster: this.opts.clusterId,
          target_node: p.nodeId,
          target_cluster: p.clusterId,
          correlation_id: e.id,
          trace_id: e.trace_id,
        },
        ...(this.opts.maxHops === undefined ? {} : { maxHops: this.opts.maxHops }),
      });
      sent = this.opts.send(p.nodeId, msg);
    } catch (err) {
      this.take(e.id);
      p.reject(refusalError(err, p));
      return;
    }
    if (!sent) {
      this.take(e.id);
      p.reject(unreachableError(p.nodeId, p.command.name, "no link to the node"));
      return;
    }
    p.sent = true;
  }

  /** Gives up, with 1005, on calls whose deadline (plus grace) has passed. */
  private sweep(): void {
    const now = Date.now();
    const late: Pending[] = [];
    for (const [id, p] of this.pending) if (p.giveUpAt <= now) late.push(this.take(id)!);
    for (const p of late) p.reject(new MpregError(ErrorCode.UNREACHABLE, `node ${p.nodeId} unreachable: no answer before the deadline`, { command: p.command.name, node_id: p.nodeId, reason: "no answer before the deadline" }));
    if (this.pending.size === 0 && this.sweepTimer !== undefined) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    }
  }

  private armSweep(): void {
    if (this.sweepTimer !== undefined) return;
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweepTimer.unref?.();
  }

  private take(id: string): Pending | undefined {
    const p = this.pending.get(id);
    if (!p) return undefined;
    this.pending.delete(id);
    const n = (this.perNode.get(p.nodeId) ?? 1) - 1;
    if (n > 0) this.perNode.set(p.nodeId, n);
    else this.perNode.delete(p.nodeId);
    p.detach();
    return p;
  }

  private sendCancel(nodeId: string, correlationId: string): void {
    const msg = createUnifiedMessage({
      topic: RPC_CANCEL_TOPIC,
      message_type: "rpc",
      payload: { kind: "cancel" },
      headers: { source_node: this.opts.nodeId, source_cluster: this.opts.clusterId, target_node: nodeId, correlation_id: correlationId },
      ...(this.opts.maxHops === undefined ? {} : { maxHops: this.opts.maxHops }),
    });
    try {
      this.opts.send(nodeId, msg);
    } catch {
      // A cancel is tiny; nothing to do if it is refused.
    }
  }
}

/**
 * The cancellation of one remote call on the callee: an AbortController per call (with its
 * AbortSignal and EventTarget) was ~5% of a callee's CPU plus its garbage. It takes one
 * listener, which is all `executeLocal` registers.
 */
class CallCancellation implements Cancellation {
  aborted = false;
  reason: unknown = undefined;
  private listener: (() => void) | undefined;

  onAbort(cb: () => void): () => void {
    this.listener = cb;
    return () => {
      if (this.listener === cb) this.listener = undefined;
    };
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const cb = this.listener;
    this.listener = undefined;
    cb?.();
  }
}

/** Options of {@link RemoteCallHandler}. */
export interface RemoteCallHandlerOptions<Ctx> {
  /** Runs the calls (through `executeLocal`: no planning, deadline and abort handled). */
  executor: Executor<Ctx>;
  nodeId: string;
  clusterId: string;
  send: SendToNode;
  /** `hops_remaining` of the result messages (default: the envelope's, 8). */
  maxHops?: number | undefined;
  /** Most remote calls running at once; past it a call is answered with 1007. Default 4096. */
  maxRunning?: number;
}

/** Counters of a {@link RemoteCallHandler}. */
export interface RemoteCallHandlerStats {
  /** `mpreg.rpc.results` messages sent. */
  batches: number;
  /** Results carried in them. */
  batchedResults: number;
}

/**
 * The callee side: runs the command of a call message with the executor's `executeLocal`
 * (highest local version matching function_id and constraint), answers with a result message
 * to the caller, and aborts the handler's signal on a cancel message or at the deadline.
 * Calls that came in an `mpreg.rpc.calls` batch are answered in `mpreg.rpc.results` batches
 * (the results ready in one turn, per caller); a single call gets a single result.
 */
export class RemoteCallHandler<Ctx = unknown> {
  private readonly running = new Map<string, CallCancellation>();
  private readonly maxRunning: number;
  /** Results of batched calls to send at the end of this turn, by caller. */
  private readonly outbox = new TurnBatcher<RemoteResultEntry>(MAX_CALL_BATCH, MAX_CALL_BATCH_BYTES, (caller, results) => this.sendBatch(caller, results));
  readonly stats: RemoteCallHandlerStats = { batches: 0, batchedResults: 0 };

  constructor(private readonly opts: RemoteCallHandlerOptions<Ctx>) {
    this.maxRunning = opts.maxRunning ?? 4096;
  }

  /** Calls running now. */
  get size(): number {
    return this.running.size;
  }

  /** Handles a call, call batch or cancel message; false for anything else. */
  handle(msg: UnifiedMessage): boolean {
    const topic = msg.topic;
    if (topic === RPC_CANCEL_TOPIC) {
      this.running.get(msg.headers.correlation_id)?.abort(new MpregError(ErrorCode.EXECUTION_FAILED, "cancelled by the caller", { reason: "cancelled" }));
      return true;
    }
    const caller = msg.headers.source_node;
    if (topic === RPC_CALLS_TOPIC) {
      const payload = msg.payload as Partial<RemoteCallsPayload> | null;
      const calls = payload?.calls;
      if (payload?.kind !== "calls" || !Array.isArray(calls) || calls.length > MAX_CALL_BATCH) {
        // Without readable ids there is no one to answer: the callers' deadlines end them.
        log.warn(`dropped a malformed call batch from ${caller}`);
        return true;
      }
      for (const c of calls as unknown[]) {
        const id = (c as { id?: unknown } | null)?.id;
        if (typeof id !== "string") {
          log.warn(`dropped a call without id in a batch from ${caller}`);
          continue;
        }
        const e = c as Partial<RemoteCallEntry>;
        this.run(caller, id, e.command, e.request_id, e.deadline, e.trace_id, true);
      }
      return true;
    }
    if (topic !== RPC_CALL_TOPIC) return false;
    const payload = msg.payload as Partial<RemoteCallPayload> | null;
    const id = msg.headers.correlation_id;
    if (payload?.kind !== "call") {
      this.reply(caller, id, { kind: "result", ok: false, error: MpregError.invalid("malformed remote call").toWire() });
      return true;
    }
    this.run(caller, id, payload.command, payload.request_id, payload.deadline, msg.headers.trace_id, false);
    return true;
  }

  /** Aborts every running call (shutdown). */
  close(): void {
    for (const c of this.running.values()) c.abort(new MpregError(ErrorCode.UNREACHABLE, "node is shutting down", { reason: "shutdown", node_id: this.opts.nodeId }));
    this.outbox.flush();
  }

  /** Runs one call and answers it (in the caller's batch when `batched`). */
  private run(caller: string, id: string, cmd: PlanCommand | undefined, requestId: unknown, deadline: unknown, traceId: unknown, batched: boolean): void {
    if (typeof cmd !== "object" || cmd === null || typeof cmd.fun !== "string" || typeof cmd.name !== "string") {
      this.answer(caller, id, false, MpregError.invalid("malformed remote call").toWire(), batched);
      return;
    }
    if (this.running.size >= this.maxRunning || this.running.has(id)) {
      const err = this.running.has(id) ? MpregError.invalid("duplicate remote call") : MpregError.overloaded(`node ${this.opts.nodeId} runs too many remote calls`, 100);
      this.answer(caller, id, false, err.toWire(), batched);
      return;
    }
    const cancellation = new CallCancellation();
    this.running.set(id, cancellation);
    if (log.getLevel() <= log.levels.DEBUG) log.debug(`run ${cmd.fun} for ${caller} trace=${String(traceId)}`);
    // Answered synchronously when the handler is synchronous (no promise per call).
    this.opts.executor.executeLocalWith(
      {
        command: cmd,
        request_id: typeof requestId === "string" ? requestId : id,
        deadline: typeof deadline === "number" ? deadline : undefined,
        cancellation,
      },
      (ok, v) => {
        this.running.delete(id);
        if (ok) {
          this.answer(caller, id, true, v, batched);
          return;
        }
        const err = isMpregError(v) ? v : new MpregError(ErrorCode.EXECUTION_FAILED, String(v), { reason: String(v) });
        this.answer(caller, id, false, err.toWire(), batched);
      },
    );
  }

  /** A result (`ok`: the value) or a failure (the wire error), sent alone or queued for the batch. */
  private answer(caller: string, id: string, ok: boolean, v: unknown, batched: boolean): void {
    if (!batched) {
      this.reply(caller, id, ok ? { kind: "result", ok: true, value: v } : { kind: "result", ok: false, error: v as WireError });
      return;
    }
    const entry: RemoteResultEntry = ok ? { id, ok: true, value: v } : { id, ok: false, error: v as WireError };
    this.outbox.add(caller, entry, estimateEncodedSize(v, MAX_CALL_BATCH_BYTES) + id.length + 16);
  }

  /** One message for the lot (a lone result as `mpreg.rpc.result`). */
  private sendBatch(caller: string, results: RemoteResultEntry[]): void {
    if (results.length > 1) {
      const msg = this.message(RPC_RESULTS_TOPIC, caller, undefined, { kind: "results", results } satisfies RemoteResultsPayload);
      try {
        if (!this.opts.send(caller, msg)) log.debug(`${results.length} results dropped: no link to ${caller}`);
        else {
          this.stats.batches++;
          this.stats.batchedResults += results.length;
        }
        return;
      } catch (e) {
        // Refused as one frame (too large): one by one, so each gets its own answer or refusal.
        log.debug(`${results.length} results to ${caller} refused as one frame (${(e as Error).message}): sent one by one`);
      }
    }
    for (const r of results) this.reply(caller, r.id, r.ok ? { kind: "result", ok: true, value: r.value } : { kind: "result", ok: false, error: r.error });
  }

  private message(topic: string, nodeId: string, correlationId: string | undefined, payload: unknown): UnifiedMessage {
    return createUnifiedMessage({
      topic,
      message_type: "rpc",
      payload,
      headers: {
        source_node: this.opts.nodeId,
        source_cluster: this.opts.clusterId,
        target_node: nodeId,
        ...(correlationId === undefined ? {} : { correlation_id: correlationId }),
      },
      ...(this.opts.maxHops === undefined ? {} : { maxHops: this.opts.maxHops }),
    });
  }

  private reply(nodeId: string, correlationId: string, payload: RemoteResultPayload): void {
    const msg = this.message(RPC_RESULT_TOPIC, nodeId, correlationId, payload);
    let sent = false;
    try {
      sent = this.opts.send(nodeId, msg);
    } catch (e) {
      log.warn(`result for ${correlationId} refused: ${(e as Error).message}`);
      // A result that cannot travel (too large, unencodable) is answered as that failure, so
      // the caller learns why instead of waiting for its deadline.
      if (payload.ok) {
        const err = isMpregError(e) ? e : MpregError.invalid(`result cannot be sent: ${String(e)}`);
        this.reply(nodeId, correlationId, { kind: "result", ok: false, error: err.toWire() });
      }
      return;
    }
    if (!sent) log.debug(`result for ${correlationId} dropped: no link to ${nodeId}`);
  }
}
