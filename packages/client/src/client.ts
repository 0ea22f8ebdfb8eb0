import {
  DEFAULT_TIMEOUT_MS,
  ErrorCode,
  MAX_TIMEOUT_MS,
  MpregError,
  createLogger,
  decodeFrame,
  encodeCallRequest,
  encodeFrame,
  newId,
  type Frame,
  type IntermediateResult,
  type PubsubAck,
  type RpcCommand,
  type RpcRequest,
  type RpcResponse,
} from "@mpreg/envelope";
import {
  ClientConnection,
  connectWs,
  type Connection,
  type ConnectOptions,
  type ReconnectOptions,
  type Unsubscribe,
} from "@mpreg/transport";

const log = createLogger("client");

/** Default bound on requests awaiting a reply (the node's own per-connection default). */
export const DEFAULT_MAX_PENDING = 1024;
/** How much longer than `timeout_ms` the client waits before giving up on a reply. */
export const DEFAULT_DEADLINE_GRACE_MS = 1000;

/** Options of `MpregClient.connect` (and of the constructor, minus the transport ones). */
export interface ClientOptions {
  /** Bearer token for nodes that require authentication. */
  token?: string;
  /** Reconnect after a drop: on by default (infinite retries, backoff with full jitter). */
  reconnect?: boolean | ReconnectOptions;
  /** Default `timeout_ms` of each request. Default 30 000. */
  timeoutMs?: number;
  /**
   * Most requests awaiting a reply at once; past it `call`/`request` reject at once with
   * MpregError 1007 OVERLOADED without sending anything. Default 1024.
   */
  maxPending?: number;
  /** Client-side deadline = `timeout_ms` + this. Default 1000. */
  deadlineGraceMs?: number;
  /** Further transport options (ping period, frame limit, WebSocket constructor, jitter source...). */
  transport?: Omit<ConnectOptions, "token" | "reconnect">;
}

/** Options of `call`. */
export interface CallOptions {
  kwargs?: Record<string, unknown>;
  locs?: string[];
  function_id?: string;
  version_constraint?: string;
  target_cluster?: string;
  timeout_ms?: number;
}

/** Options of `request`. */
export interface RequestOptions {
  timeout_ms?: number;
  return_all?: boolean;
  return_intermediate_results?: boolean;
  include_execution_summary?: boolean;
  /** Ask for an `rpc-progress` push after each level (implied by `onProgress`). */
  stream_progress?: boolean;
  /** Called with each pushed intermediate result, before the reply. */
  onProgress?: (ir: IntermediateResult) => void;
}

/** A server push that is not a reply (`pubsub-notification`, `queue-delivery`, ...). */
export type PushFrame = Exclude<Frame, { u: string } | { u: string | null }>;

/** Connection state as the client sees it. */
export type ClientState = "open" | "reconnecting" | "closed";

interface Pending {
  resolve(value: unknown): void;
  reject(err: MpregError): void;
  /** Client-side deadline, on the `performance.now()` clock. */
  deadline: number;
  /** `timeout_ms` + grace, for the 1004 message. */
  waitMs: number;
  onProgress: ((ir: IntermediateResult) => void) | undefined;
  names: string[];
  /**
   * Set by `call`: the reply settles the caller's promise with `r[names[0]]` directly, saving
   * the async wrapper's extra promise and microtask hops on every call.
   */
  callFun: string | undefined;
}

const NO_OPTIONS: CallOptions = Object.freeze({});
const hasOwn = Object.prototype.hasOwnProperty;

/**
 * The MPREG client: sends requests as MessagePack binary frames and correlates replies by `u`.
 *
 * - Every request has a client-side deadline (`timeout_ms` + grace) and rejects with 1004 if
 *   the node never answers.
 * - When the connection drops, every pending request rejects with 1005 UNREACHABLE. Nothing
 *   is retried: the handler may already have run. New requests while reconnecting reject
 *   with 1005 too; the connection comes back by itself (see `reconnect`).
 * - Error replies reject with an MpregError carrying the wire code, message and details.
 */
export class MpregClient {
  private readonly conn: Connection;
  private readonly pending = new Map<string, Pending>();
  private readonly maxPending: number;
  private readonly timeoutMs: number;
  private readonly graceMs: number;
  private pushHandlers: Array<(frame: PushFrame) => void> = [];
  private closedByUser = false;
  /**
   * Random part of this client's request ids and `call` command names (10 ULID characters,
   * 50 random bits). Request ids are this nonce plus a counter: unique per client (hence per
   * connection) by construction and far cheaper than a ULID per request, which drew random
   * bytes from the OS each time.
   */
  private readonly nonce = newId().slice(-10);
  private seq = 0;
  /**
   * One timer for every client-side deadline, armed for the earliest one, instead of a
   * setTimeout/clearTimeout pair per request (a visible cost at tens of thousands of requests
   * per second). When it fires it rejects what expired and re-arms for the next deadline.
   */
  private deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  private deadlineTimerAt = Infinity;
  private readonly sweepDeadlines = (): void => {
    this.deadlineTimer = undefined;
    this.deadlineTimerAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const [u, p] of this.pending) {
      if (p.deadline <= now) {
        this.pending.delete(u);
        const reason = `no reply within ${p.waitMs} ms`;
        p.reject(new MpregError(ErrorCode.TIMEOUT, reason, { completed: [], pending: p.names, reason }));
      } else if (p.deadline < next) {
        next = p.deadline;
      }
    }
    // A timer that fired a little early finds nothing expired and simply re-arms.
    if (next !== Infinity) this.armDeadline(next);
  };

  /** Connects to a node at `url` (`ws://HOST:PORT`); rejects as `connectWs` does (1005, 1006). */
  static async connect(url: string, options: ClientOptions = {}): Promise<MpregClient> {
    const conn = await connectWs(url, {
      ...options.transport,
      ...(options.token !== undefined ? { token: options.token } : {}),
      reconnect: options.reconnect ?? true,
    });
    return new MpregClient(conn, options);
  }

  /**
   * Wraps an already open connection (a `connectWs` result, or one end of an in-memory pair
   * in tests). Transport options in `options` are ignored here.
   */
  constructor(conn: Connection, options: ClientOptions = {}) {
    this.conn = conn;
    this.maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.graceMs = options.deadlineGraceMs ?? DEFAULT_DEADLINE_GRACE_MS;
    if (!(Number.isInteger(this.maxPending) && this.maxPending > 0)) {
      throw MpregError.invalid("maxPending must be a positive integer", "maxPending");
    }
    checkTimeout(this.timeoutMs);
    conn.onMessage((data, isBinary) => this.receive(data, isBinary));
    conn.onClose((_code, reason) => {
      this.failAll(this.closedByUser ? "client closed" : `connection lost${reason ? `: ${reason}` : ""}`);
    });
  }

  /** `open`, `reconnecting` (a drop is being retried) or `closed`. */
  get state(): ClientState {
    if (this.conn instanceof ClientConnection) return this.conn.state;
    return this.conn.open ? "open" : "closed";
  }

  /** Number of requests awaiting a reply. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Calls one function and resolves with its result. The request holds a single command
   * named `<fun>@<nonce>`, `nonce` being random per client (so no argument can reference it
   * by accident).
   */
  call(fun: string, args: unknown[] = [], options: CallOptions = NO_OPTIONS): Promise<unknown> {
    try {
      return this.startCall(fun, args, options);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private startCall(fun: string, args: unknown[], options: CallOptions): Promise<unknown> {
    const u = this.nextId();
    // The same name for every call of `fun` by this client: the reply's `r` then always has
    // the same short key, which keeps the reply objects' shape stable on both sides (a fresh
    // key per request cost a hidden-class transition per reply) and fits MessagePack's key cache.
    const name = `${fun}@${this.nonce}`;
    const cmd: RpcCommand = { name, fun, args };
    if (options.kwargs !== undefined) cmd.kwargs = options.kwargs;
    if (options.locs !== undefined) cmd.locs = options.locs;
    if (options.function_id !== undefined) cmd.function_id = options.function_id;
    if (options.version_constraint !== undefined) cmd.version_constraint = options.version_constraint;
    if (options.target_cluster !== undefined) cmd.target_cluster = options.target_cluster;
    const timeout = options.timeout_ms ?? this.timeoutMs;
    // Without per-command options the frame has the fixed shape encodeCallRequest writes.
    const plain =
      options.kwargs === undefined &&
      options.locs === undefined &&
      options.function_id === undefined &&
      options.version_constraint === undefined &&
      options.target_cluster === undefined;
    return this.send({ role: "rpc", u, cmds: [cmd], timeout_ms: timeout }, timeout, [name], undefined, fun, plain);
  }

  /**
   * Sends a multi-command request and resolves with the whole reply when it succeeded
   * (`error` null). An error reply rejects with an MpregError whose code, message and
   * `details` are the wire ones.
   */
  async request(cmds: RpcCommand[], options: RequestOptions = {}): Promise<RpcResponse> {
    const u = this.nextId();
    const timeout = options.timeout_ms ?? this.timeoutMs;
    const frame: RpcRequest = { role: "rpc", u, cmds, timeout_ms: timeout };
    if (options.return_all) frame.return_all = true;
    if (options.return_intermediate_results) frame.return_intermediate_results = true;
    if (options.include_execution_summary) frame.include_execution_summary = true;
    if (options.stream_progress || options.onProgress) frame.stream_progress = true;
    const names = Array.isArray(cmds) ? cmds.map((c) => String((c as { name?: unknown })?.name)) : [];
    return (await this.send(frame, timeout, names, options.onProgress, undefined, false)) as RpcResponse;
  }

  /** Registers a handler for pushes that are not replies (notifications, deliveries). */
  onPush(handler: (frame: PushFrame) => void): Unsubscribe {
    this.pushHandlers = [...this.pushHandlers, handler];
    return () => {
      this.pushHandlers = this.pushHandlers.filter((h) => h !== handler);
    };
  }

  /** Called after each successful reconnect. */
  onReconnect(handler: () => void): Unsubscribe {
    return this.conn instanceof ClientConnection ? this.conn.onOpen(handler) : () => {};
  }

  /** Called when a retry is scheduled (`attempt` from 1, `delayMs` before it). */
  onReconnecting(handler: (attempt: number, delayMs: number) => void): Unsubscribe {
    return this.conn instanceof ClientConnection ? this.conn.onReconnecting(handler) : () => {};
  }

  /** Called on each drop; `willReconnect` is false on the final close. */
  onDisconnect(handler: (code: number, reason: string, willReconnect: boolean) => void): Unsubscribe {
    if (this.conn instanceof ClientConnection) return this.conn.onClose(handler);
    return this.conn.onClose((code, reason) => handler(code, reason, false));
  }

  /** Closes the connection for good; pending requests reject with 1005. */
  close(): Promise<void> {
    this.closedByUser = true;
    return new Promise((resolve) => {
      if (this.conn instanceof ClientConnection) this.conn.onClose((_c, _r, will) => !will && resolve());
      else this.conn.onClose(() => resolve());
      this.conn.close(1000, "client closed");
    });
  }

  private nextId(): string {
    return this.nonce + (++this.seq).toString(36);
  }

  private send(
    frame: RpcRequest,
    timeoutMs: number,
    names: string[],
    onProgress: ((ir: IntermediateResult) => void) | undefined,
    callFun: string | undefined,
    plainCall: boolean,
  ): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      if (this.closedByUser) return reject(unreachable("client closed"));
      if (this.pending.size >= this.maxPending) {
        return reject(MpregError.overloaded(`too many pending requests (maxPending ${this.maxPending})`));
      }
      try {
        checkTimeout(timeoutMs);
      } catch (e) {
        return reject(e);
      }
      let data: Uint8Array;
      try {
        if (plainCall) {
          const cmd = frame.cmds[0]!;
          data = encodeCallRequest(frame.u, cmd.name, cmd.fun, cmd.args as unknown[], timeoutMs);
        } else {
          data = encodeFrame(frame, "msgpack");
        }
      } catch (e) {
        return reject(e);
      }
      const u = frame.u;
      const waitMs = timeoutMs + this.graceMs;
      const deadline = performance.now() + waitMs;
      // Registered before sending, so even a synchronous transport finds the entry.
      this.pending.set(u, { resolve, reject, deadline, waitMs, onProgress, names, callFun });
      if (deadline < this.deadlineTimerAt) this.armDeadline(deadline);
      else if (this.pending.size === 1) refTimer(this.deadlineTimer, true);
      try {
        this.conn.send(data);
      } catch (e) {
        this.take(u);
        reject(e);
      }
    });
  }

  private receive(data: Uint8Array | string, isBinary: boolean): void {
    const res = decodeFrame(data, isBinary ? "msgpack" : "json");
    if (!res.ok) {
      // A reply we cannot read still settles its request, rather than waiting for the deadline.
      const p = res.u !== null ? this.take(res.u) : undefined;
      if (p !== undefined) p.reject(res.error);
      else log.warn(`undecodable frame from the node: ${res.error.message}`);
      return;
    }
    const frame = res.frame;
    switch (frame.role) {
      case "rpc-response": {
        if (frame.u === null) {
          log.warn(`node refused a frame: ${frame.error?.message ?? "unknown error"}`);
          return;
        }
        const p = this.take(frame.u);
        if (p === undefined) return; // late reply after the deadline
        if (frame.error !== null) p.reject(MpregError.fromWire(frame.error));
        else if (p.callFun !== undefined) settleCall(p, frame);
        else p.resolve(frame);
        return;
      }
      case "pubsub-ack": {
        const p = this.take(frame.u);
        if (p === undefined) return;
        if (!frame.success) p.reject(ackError(frame));
        else if (p.callFun !== undefined) p.reject(noResult(p.callFun));
        else p.resolve(frame);
        return;
      }
      case "rpc-progress": {
        const p = this.pending.get(frame.u);
        if (p?.onProgress === undefined) return;
        try {
          p.onProgress(frame.intermediate_result);
        } catch (err) {
          log.warn("onProgress handler threw", err);
        }
        return;
      }
      default: {
        if ("u" in frame) return; // a request role sent to a client: ignored
        for (const h of this.pushHandlers) {
          try {
            h(frame as PushFrame);
          } catch (err) {
            log.warn("push handler threw", err);
          }
        }
      }
    }
  }

  private take(u: string): Pending | undefined {
    const p = this.pending.get(u);
    if (p === undefined) return undefined;
    this.pending.delete(u);
    // The deadline timer stays armed (re-arming per request is what it saves); with nothing
    // pending it no longer keeps the process alive, and when it fires it is not re-armed.
    if (this.pending.size === 0) refTimer(this.deadlineTimer, false);
    return p;
  }

  private armDeadline(at: number): void {
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    this.deadlineTimerAt = at;
    this.deadlineTimer = setTimeout(this.sweepDeadlines, Math.max(0, at - performance.now()));
  }

  private failAll(reason: string): void {
    if (this.deadlineTimer !== undefined) {
      clearTimeout(this.deadlineTimer);
      this.deadlineTimer = undefined;
      this.deadlineTimerAt = Infinity;
    }
    if (this.pending.size === 0) return;
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(unreachable(reason, p.names));
  }
}

/** Node timers can stop holding the process open; browser timer ids cannot (and need not). */
function refTimer(timer: ReturnType<typeof setTimeout> | undefined, ref: boolean): void {
  const t = timer as { ref?: () => void; unref?: () => void } | undefined;
  if (ref) t?.ref?.();
  else t?.unref?.();
}

/** Settles a `call`: its single command's result, or 1002 when the reply lacks it. */
function settleCall(p: Pending, reply: RpcResponse): void {
  const name = p.names[0]!;
  const r = reply.r;
  if (r === null || !hasOwn.call(r, name)) p.reject(noResult(p.callFun!));
  else p.resolve(r[name]);
}

function noResult(fun: string): MpregError {
  return new MpregError(ErrorCode.INVALID_REQUEST, `reply to ${fun} carries no result`, { reason: "reply without result", fun });
}

function unreachable(reason: string, names: string[] = []): MpregError {
  return new MpregError(ErrorCode.UNREACHABLE, reason, names.length > 0 ? { reason, commands: names } : { reason });
}

function ackError(ack: PubsubAck): MpregError {
  if (ack.error) return MpregError.fromWire(ack.error);
  return new MpregError(ErrorCode.EXECUTION_FAILED, "pub/sub request failed", { reason: "success: false" });
}

function checkTimeout(ms: number): void {
  if (!(Number.isInteger(ms) && ms >= 1 && ms <= MAX_TIMEOUT_MS)) {
    throw MpregError.invalid(`timeout_ms must be an integer in [1, ${MAX_TIMEOUT_MS}]`, "timeout_ms");
  }
}
