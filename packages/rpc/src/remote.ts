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
  isMpregError,
  type UnifiedMessage,
  type WireError,
} from "@mpreg/envelope";
import type { PlanCommand } from "@mpreg/router";
import type { Cancellation, DispatchRequest, Dispatcher, Executor } from "./executor.js";

const log = createLogger("rpc");

/** Period of the deadline sweep of waiting remote calls. */
const SWEEP_MS = 250;

export const RPC_CALL_TOPIC = "mpreg.rpc.call";
export const RPC_RESULT_TOPIC = "mpreg.rpc.result";
export const RPC_CANCEL_TOPIC = "mpreg.rpc.cancel";

/** Sends a UnifiedMessage to a node; false when there is no link to it. */
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

interface Pending {
  nodeId: string;
  command: PlanCommand;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  /** Unix ms after which the call is given up locally. */
  giveUpAt: number;
  detach: () => void;
}

/** Options of {@link RemoteDispatcher}. */
export interface RemoteDispatcherOptions {
  nodeId: string;
  clusterId: string;
  send: SendToNode;
  /** `hops_remaining` of the call messages (default: the envelope's, 8). */
  maxHops?: number | undefined;
  /** Most calls awaiting a result; past it `dispatch` fails with 1007. Default 65 536. */
  maxPending?: number;
  /** Extra wait past the request deadline before a call is given up locally. Default 1000 ms. */
  graceMs?: number;
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
    const unreachable = (reason: string) =>
      new MpregError(ErrorCode.UNREACHABLE, `node ${req.node_id} unreachable: ${reason}`, {
        command: req.command.name,
        node_id: req.node_id,
        reason,
      });
    if (this.pending.size >= this.maxPending) {
      return Promise.reject(MpregError.overloaded(`too many remote calls in flight (${this.maxPending})`, 100));
    }
    const payload: RemoteCallPayload = { kind: "call", command: req.command, request_id: req.request_id, deadline: req.deadline };
    const msg = createUnifiedMessage({
      topic: RPC_CALL_TOPIC,
      message_type: "rpc",
      payload,
      headers: {
        source_node: this.opts.nodeId,
        source_cluster: this.opts.clusterId,
        target_node: req.node_id,
        target_cluster: req.cluster_id,
        trace_id: req.trace_id ?? req.request_id,
      },
      ...(this.opts.maxHops === undefined ? {} : { maxHops: this.opts.maxHops }),
    });
    const id = msg.headers.correlation_id;
    return new Promise<unknown>((resolve, reject) => {
      const c = req.cancellation;
      const onAbort = () => {
        const p = this.take(id);
        if (!p) return;
        this.sendCancel(p.nodeId, id);
        reject((c !== undefined ? c.reason : req.signal.reason) ?? unreachable("cancelled"));
      };
      let detach: () => void;
      if (c !== undefined) {
        detach = c.onAbort(onAbort);
      } else {
        req.signal.addEventListener("abort", onAbort, { once: true });
        detach = () => req.signal.removeEventListener("abort", onAbort);
      }
      this.perNode.set(req.node_id, (this.perNode.get(req.node_id) ?? 0) + 1);
      this.armSweep();
      this.pending.set(id, {
        nodeId: req.node_id,
        command: req.command,
        resolve,
        reject,
        giveUpAt: req.deadline + this.graceMs,
        detach,
      });
      let sent: boolean;
      try {
        sent = this.opts.send(req.node_id, msg);
      } catch (e) {
        this.take(id);
        // A refusal by the fabric (too large, no route to the cluster) names the command too.
        reject(isMpregError(e) ? (e.details.command === undefined ? new MpregError(e.code, e.message, { command: req.command.name, ...e.details }) : e) : unreachable(String(e)));
        return;
      }
      if (!sent) {
        this.take(id);
        reject(unreachable("no link to the node"));
      }
    });
  }

  /** Feeds a result message; true when it answered a pending call. */
  handleResult(msg: UnifiedMessage): boolean {
    const p = this.take(msg.headers.correlation_id);
    if (!p) return false;
    const payload = msg.payload as Partial<RemoteResultPayload> | null;
    if (payload?.kind !== "result" || typeof payload.ok !== "boolean") {
      p.reject(new MpregError(ErrorCode.UNREACHABLE, "malformed result from remote node", { command: p.command.name, node_id: p.nodeId, reason: "malformed result" }));
    } else if (payload.ok) {
      p.resolve((payload as { value: unknown }).value);
    } else {
      const e = (payload as { error: WireError }).error;
      p.reject(MpregError.fromWire({ code: e?.code ?? ErrorCode.UNREACHABLE, message: e?.message ?? "remote error", details: e?.details ?? {} }));
    }
    return true;
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
    for (const [id, p] of this.pending) {
      if (p.nodeId !== nodeId) continue;
      this.take(id);
      p.reject(new MpregError(ErrorCode.UNREACHABLE, `node ${nodeId} went away while running ${p.command.name}`, { command: p.command.name, node_id: nodeId, reason }));
    }
  }

  /** Fails every pending call (shutdown). */
  close(reason = "shutting down"): void {
    for (const p of [...this.pending.values()]) this.nodeGone(p.nodeId, reason);
  }

  /** Gives up, with 1005, on calls whose deadline (plus grace) has passed. */
  private sweep(): void {
    const now = Date.now();
    for (const [id, p] of this.pending) {
      if (p.giveUpAt > now) continue;
      this.take(id);
      p.reject(new MpregError(ErrorCode.UNREACHABLE, `node ${p.nodeId} unreachable: no answer before the deadline`, { command: p.command.name, node_id: p.nodeId, reason: "no answer before the deadline" }));
    }
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

/**
 * The callee side: runs the command of a call message with the executor's `executeLocal`
 * (highest local version matching function_id and constraint), answers with a result message
 * to the caller, and aborts the handler's signal on a cancel message or at the deadline.
 */
export class RemoteCallHandler<Ctx = unknown> {
  private readonly running = new Map<string, CallCancellation>();
  private readonly maxRunning: number;

  constructor(private readonly opts: RemoteCallHandlerOptions<Ctx>) {
    this.maxRunning = opts.maxRunning ?? 4096;
  }

  /** Calls running now. */
  get size(): number {
    return this.running.size;
  }

  /** Handles a call or cancel message; false for anything else. */
  handle(msg: UnifiedMessage): boolean {
    if (msg.topic === RPC_CANCEL_TOPIC) {
      this.running.get(msg.headers.correlation_id)?.abort(new MpregError(ErrorCode.EXECUTION_FAILED, "cancelled by the caller", { reason: "cancelled" }));
      return true;
    }
    if (msg.topic !== RPC_CALL_TOPIC) return false;
    const payload = msg.payload as Partial<RemoteCallPayload> | null;
    const id = msg.headers.correlation_id;
    const caller = msg.headers.source_node;
    const cmd = payload?.command;
    if (payload?.kind !== "call" || typeof cmd !== "object" || cmd === null || typeof cmd.fun !== "string" || typeof cmd.name !== "string") {
      this.reply(caller, id, { kind: "result", ok: false, error: MpregError.invalid("malformed remote call").toWire() });
      return true;
    }
    if (this.running.size >= this.maxRunning || this.running.has(id)) {
      const err = this.running.has(id) ? MpregError.invalid("duplicate remote call") : MpregError.overloaded(`node ${this.opts.nodeId} runs too many remote calls`, 100);
      this.reply(caller, id, { kind: "result", ok: false, error: err.toWire() });
      return true;
    }
    const cancellation = new CallCancellation();
    this.running.set(id, cancellation);
    if (log.getLevel() <= log.levels.DEBUG) log.debug(`run ${cmd.fun} for ${caller} trace=${msg.headers.trace_id}`);
    this.opts.executor
      .executeLocal({
        command: cmd,
        request_id: typeof payload.request_id === "string" ? payload.request_id : id,
        deadline: typeof payload.deadline === "number" ? payload.deadline : undefined,
        cancellation,
      })
      .then(
        (value) => {
          this.running.delete(id);
          this.reply(caller, id, { kind: "result", ok: true, value });
        },
        (e: unknown) => {
          this.running.delete(id);
          const err = isMpregError(e) ? e : new MpregError(ErrorCode.EXECUTION_FAILED, String(e), { reason: String(e) });
          this.reply(caller, id, { kind: "result", ok: false, error: err.toWire() });
        },
      );
    return true;
  }

  /** Aborts every running call (shutdown). */
  close(): void {
    for (const c of this.running.values()) c.abort(new MpregError(ErrorCode.UNREACHABLE, "node is shutting down", { reason: "shutdown", node_id: this.opts.nodeId }));
  }

  private reply(nodeId: string, correlationId: string, payload: RemoteResultPayload): void {
    const msg = createUnifiedMessage({
      topic: RPC_RESULT_TOPIC,
      message_type: "rpc",
      payload,
      headers: {
        source_node: this.opts.nodeId,
        source_cluster: this.opts.clusterId,
        target_node: nodeId,
        correlation_id: correlationId,
      },
      ...(this.opts.maxHops === undefined ? {} : { maxHops: this.opts.maxHops }),
    });
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
