/**
 * Runs one rpc request: plans it, locates every command before anything runs, then starts each
 * command as soon as its own dependencies are done (no level barrier), locally through the
 * registry or remotely through the injected dispatcher. One timeout for the whole request;
 * the first failure (or the timeout) aborts everything still running and starts nothing more.
 */
import { ErrorCode, MAX_FRAME_ELEMENTS, MpregError, createLogger, estimateEncodedSize, isMpregError, tallyEncodedSize, type SizeTally } from "@mpreg/envelope";
import { planRequest, substitute, type Plan, type PlanCommand, type SubstituteOptions } from "@mpreg/router";
import type { FunctionRegistry, HandlerInput, RegisteredFunction } from "./registry.js";

const log = createLogger("rpc");

/** Where one command runs. `fn` (optional) is the already resolved local function. */
export type Location<Ctx = unknown> =
  | { kind: "local"; fn?: RegisteredFunction<Ctx> | undefined }
  | { kind: "remote"; node_id: string; cluster_id: string };

/**
 * Decides where a command runs. Throws (or returns) an MpregError — 1001 when there is no
 * candidate, 1002 for a malformed version constraint — to refuse the request.
 */
export type Locator<Ctx = unknown> = (cmd: PlanCommand) => Location<Ctx> | MpregError;

/**
 * A cheaper stand-in for an AbortSignal that the executor hands to dispatchers: creating an
 * AbortController and adding and removing an event listener per remote call was ~8% of an
 * ingress node's CPU for a trivial remote call.
 */
export interface Cancellation {
  /** True once the request failed or timed out. */
  readonly aborted: boolean;
  /** Why (an MpregError for timeouts and failures); undefined while not aborted. */
  readonly reason: unknown;
  /**
   * Calls `cb` once when the request is aborted later (not when it already ended, as with an
   * AbortSignal listener); returns a function that unregisters it.
   */
  onAbort(cb: () => void): () => void;
}

/**
 * A {@link Cancellation} with any number of listeners, aborted once: what a connection hands to
 * each of its requests instead of its AbortSignal (an EventTarget listener added and removed
 * per request was a visible share of an ingress node's CPU for a remote call). Listeners are
 * bounded by the requests in flight that registered one (those that went asynchronous).
 */
export class CancellationSource implements Cancellation {
  private abortedFlag = false;
  private why: unknown = undefined;
  private readonly listeners = new Set<() => void>();

  get aborted(): boolean {
    return this.abortedFlag;
  }

  get reason(): unknown {
    return this.why;
  }

  /** Listeners registered now. */
  get size(): number {
    return this.listeners.size;
  }

  onAbort(cb: () => void): () => void {
    if (this.abortedFlag) return noop;
    const listeners = this.listeners;
    listeners.add(cb);
    return () => {
      listeners.delete(cb);
    };
  }

  /** Aborts with `reason` and calls every listener once (later calls do nothing). */
  abort(reason: unknown): void {
    if (this.abortedFlag) return;
    this.abortedFlag = true;
    this.why = reason;
    const cbs = [...this.listeners];
    this.listeners.clear();
    for (const cb of cbs) {
      try {
        cb();
      } catch (e) {
        log.warn(`cancellation listener threw: ${(e as Error).message}`);
      }
    }
  }
}

function noop(): void {}

/** One remote call handed to the dispatcher. */
export interface DispatchRequest {
  /** The command with its references already substituted. */
  command: PlanCommand;
  node_id: string;
  cluster_id: string;
  request_id: string;
  /** The request's trace id (W3C, 32 hex), carried to the node that runs the command. */
  trace_id?: string | undefined;
  /**
   * Aborted when the request fails or times out. From the executor it is created only when
   * read: dispatchers that can should use `cancellation` instead.
   */
  signal: AbortSignal;
  /** The same as `signal`, cheaper; given by the executor (other callers may omit it). */
  cancellation?: Cancellation;
  /** Absolute deadline of the whole request, Unix epoch milliseconds. */
  deadline: number;
}

/**
 * Carries remote calls to other nodes. Resolves with the command's result; rejects with an
 * MpregError (1003 when the remote handler threw, 1005 when the node cannot be reached). Any
 * other rejection is reported as 1005.
 */
export interface Dispatcher {
  dispatch(req: DispatchRequest): Promise<unknown>;
  /**
   * Optional: the same without a promise, `done(true, value)` or `done(false, error)` exactly
   * once (possibly before it returns). The executor prefers it (a promise, its resolvers and a
   * continuation per remote call are a visible share of an ingress's allocations).
   */
  dispatchWith?(req: DispatchRequest, done: (ok: boolean, value: unknown) => void): void;
}

/** One entry of `intermediate_results` (also the payload of `rpc-progress`). */
export interface IntermediateResult {
  level_index: number;
  level_results: Record<string, unknown>;
  /** Results of every command of levels 0..level_index. */
  accumulated_results: Record<string, unknown>;
  total_levels: number;
  completed_levels: number;
  /** From the start of the level's first command to the end of its last, ms. */
  execution_time_ms: number;
  /** Unix epoch milliseconds when the entry was emitted. */
  timestamp: number;
}

/** `execution_summary` of a reply. */
export interface ExecutionSummary {
  total_execution_time_ms: number;
  total_levels: number;
  level_execution_times: number[];
  bottleneck_level_index: number;
  commands_executed: number;
  remote_commands: number;
  cross_cluster_commands: number;
}

/** One request to run. Field names follow the wire request. */
export interface ExecuteRequest<Ctx = unknown> {
  cmds: readonly PlanCommand[];
  request_id: string;
  /** Trace id of the request (docs/operations.md, Tracing): handed to every dispatch. */
  trace_id?: string | undefined;
  /** Whole-request timeout, ms. Default the executor's `defaultTimeoutMs` (30 000). */
  timeout_ms?: number | undefined;
  return_all?: boolean | undefined;
  return_intermediate_results?: boolean | undefined;
  include_execution_summary?: boolean | undefined;
  /** Called with each intermediate result as it is emitted (for `stream_progress`). */
  onProgress?: ((ir: IntermediateResult) => void) | undefined;
  /** Passed through to local handlers as `ctx` (e.g. the calling connection). */
  ctx?: Ctx | undefined;
  /**
   * External cancellation (connection closed, shutdown). When it aborts, the request fails
   * with its `reason` if that is an MpregError, else with 1003 `{reason: "cancelled"}`.
   */
  signal?: AbortSignal | undefined;
  /**
   * The same as `signal`, cheaper (e.g. a connection's {@link CancellationSource}): when given,
   * `signal` is not read.
   */
  cancellation?: Cancellation | undefined;
}

/** One already substituted command to run here (see {@link Executor.executeLocal}). */
export interface ExecuteLocalRequest<Ctx = unknown> {
  command: PlanCommand;
  request_id: string;
  /** Absolute deadline, Unix epoch ms (from the dispatching node). */
  deadline?: number | undefined;
  /** Relative timeout, ms, when there is no deadline. Default the executor's default. */
  timeout_ms?: number | undefined;
  signal?: AbortSignal | undefined;
  /**
   * The caller's cancellation, a cheaper stand-in for `signal` (no AbortController per call):
   * when given, `signal` is not read.
   */
  cancellation?: Cancellation | undefined;
  ctx?: Ctx | undefined;
}

/** A successful run. */
export interface ExecuteResult {
  /** `{name: result}` for the leaves, or for every command with `return_all`. */
  r: Record<string, unknown>;
  intermediate_results?: IntermediateResult[];
  execution_summary?: ExecutionSummary;
}

/** Executor settings. */
export interface ExecutorOptions<Ctx = unknown> {
  registry: FunctionRegistry<Ctx>;
  locate: Locator<Ctx>;
  dispatcher?: Dispatcher | undefined;
  /** This node's id (reported in 1003 details of local failures). */
  nodeId: string;
  /** This node's cluster (remote commands elsewhere count as cross-cluster). */
  clusterId?: string | undefined;
  /** Default 30 000 ms. */
  defaultTimeoutMs?: number | undefined;
  /** Largest accepted timeout_ms; larger values are clamped. Default 3 600 000 (1 h). */
  maxTimeoutMs?: number | undefined;
  /** Monotonic clock in ms (durations). Default `performance.now`. */
  now?: (() => number) | undefined;
  /** Wall clock in Unix ms (timestamps, deadlines). Default `Date.now`. */
  wallClock?: (() => number) | undefined;
  /**
   * Largest reply, in estimated encoded bytes (`estimateEncodedSize`): the results the reply
   * returns plus its intermediate results; also each `rpc-progress` push, and the result of a
   * command run for another node (`executeLocal`). Decided as results arrive, before anything
   * is encoded: past it the request fails with 1007 `{reason: "reply_too_large"}`. Default
   * 16 MiB ({@link DEFAULT_MAX_REPLY_BYTES}); `Infinity` disables it.
   */
  maxReplyBytes?: number | undefined;
  /**
   * Most values (as `decodeFrame` counts them: containers, scalars, map keys and values) one
   * reply, progress push or `executeLocal` result may hold, so that nothing is sent that the
   * receiver's decoder refuses. Past it: 1007 `{reason: "reply_too_large"}`. Default
   * `MAX_FRAME_ELEMENTS` − 64 ({@link DEFAULT_MAX_REPLY_VALUES}; room for the reply's envelope);
   * keep it below the `maxElements` every receiver decodes with.
   */
  maxReplyValues?: number | undefined;
  /**
   * Most bytes (estimated, as above) that references may substitute into arguments across one
   * request: one 1 MiB result referenced 1000 times counts 1000 MiB. Past it the request fails
   * with 1007 `{reason: "fan_out_too_large"}` before the command that would receive them runs.
   * Default 64 MiB ({@link DEFAULT_MAX_SUBSTITUTED_BYTES}); `Infinity` disables it.
   */
  maxSubstitutedBytes?: number | undefined;
}

/** Default {@link ExecutorOptions.maxReplyBytes}: 16 MiB. */
export const DEFAULT_MAX_REPLY_BYTES = 16 * 1024 * 1024;
/** Default {@link ExecutorOptions.maxReplyValues}: `MAX_FRAME_ELEMENTS` − 64. */
export const DEFAULT_MAX_REPLY_VALUES = MAX_FRAME_ELEMENTS - 64;
/** Default {@link ExecutorOptions.maxSubstitutedBytes}: 64 MiB. */
export const DEFAULT_MAX_SUBSTITUTED_BYTES = 64 * 1024 * 1024;

/** Requests refused by the executor's size limits, for metrics. */
export interface ExecutorStats {
  /** Requests (and remote-run commands) failed with 1007 `reply_too_large`. */
  replyTooLarge: number;
  /** Requests failed with 1007 `fan_out_too_large`. */
  fanOutTooLarge: number;
}

const MAX_TIMER_MS = 2_147_483_647;

function byteLimit(v: number | undefined, dflt: number, name: string): number {
  const n = v ?? dflt;
  if (!(n === Number.POSITIVE_INFINITY || (Number.isSafeInteger(n) && n > 0))) {
    throw MpregError.invalid(`${name} must be a positive integer or Infinity, got ${String(n)}`, name);
  }
  return n;
}

/** 1007 for a size limit; `reason` is the machine-readable name, the message says which option. */
function tooLarge(reason: "reply_too_large" | "fan_out_too_large", option: string, unit: "bytes" | "values", limit: number, estimated: number, cmd: PlanCommand): MpregError {
  const what = reason === "reply_too_large" ? "the reply" : "arguments substituted from references";
  return new MpregError(ErrorCode.OVERLOADED, `${what} would exceed ${option} (${limit} ${unit}, estimated ${estimated}+ at command ${cmd.name})`, {
    reason,
    [`limit_${unit}`]: limit,
    [`estimated_${unit}`]: estimated,
    command: cmd.name,
  });
}

function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
  else target[key] = value;
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === "object" || typeof v === "function") && v !== null && typeof (v as { then?: unknown }).then === "function";
}

/** Runs planned requests. Stateless between requests; safe to share. */
export class Executor<Ctx = unknown> {
  readonly registry: FunctionRegistry<Ctx>;
  private readonly locate: Locator<Ctx>;
  private readonly dispatcher: Dispatcher | undefined;
  readonly nodeId: string;
  readonly clusterId: string | undefined;
  private readonly defaultTimeoutMs: number;
  private readonly maxTimeoutMs: number;
  private readonly now: () => number;
  private readonly wallClock: () => number;
  /** See {@link ExecutorOptions.maxReplyBytes}. */
  readonly maxReplyBytes: number;
  /** See {@link ExecutorOptions.maxReplyValues}. */
  readonly maxReplyValues: number;
  /** See {@link ExecutorOptions.maxSubstitutedBytes}. */
  readonly maxSubstitutedBytes: number;
  /** Counters for metrics. */
  readonly stats: ExecutorStats = { replyTooLarge: 0, fanOutTooLarge: 0 };

  constructor(options: ExecutorOptions<Ctx>) {
    this.maxReplyBytes = byteLimit(options.maxReplyBytes, DEFAULT_MAX_REPLY_BYTES, "maxReplyBytes");
    this.maxReplyValues = byteLimit(options.maxReplyValues, DEFAULT_MAX_REPLY_VALUES, "maxReplyValues");
    this.maxSubstitutedBytes = byteLimit(options.maxSubstitutedBytes, DEFAULT_MAX_SUBSTITUTED_BYTES, "maxSubstitutedBytes");
    this.registry = options.registry;
    this.locate = options.locate;
    this.dispatcher = options.dispatcher;
    this.nodeId = options.nodeId;
    this.clusterId = options.clusterId;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 30_000;
    this.maxTimeoutMs = Math.min(options.maxTimeoutMs ?? 3_600_000, MAX_TIMER_MS);
    this.now = options.now ?? (() => performance.now());
    this.wallClock = options.wallClock ?? Date.now;
  }

  /**
   * Runs one request. Resolves with the results; rejects with an MpregError: 1002 (planning),
   * 1001 (no candidate for some command; nothing ran), 1003 (a handler threw), 1004 (timeout),
   * 1005 (remote node unreachable), or whatever MpregError a handler or dispatcher threw.
   */
  execute(req: ExecuteRequest<Ctx>): Promise<ExecuteResult> {
    try {
      return new Run<Ctx>(this, req).start();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Runs ONE command on this node without planning: the receiving side of a remote dispatch,
   * whose arguments the ingress node already substituted (strings in them are plain data, even
   * when they equal the command's name). Picks the registry's highest version matching
   * `function_id` and `version_constraint`; `locs` are not checked again (the ingress node
   * chose this node by them). Rejects with 1001 (not registered here), 1002 (bad constraint),
   * 1003 (handler threw; `node_id` is this node), 1004 (deadline passed; `pending: [name]`), or
   * the caller signal's MpregError reason.
   */
  executeLocal(req: ExecuteLocalRequest<Ctx>): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => this.executeLocalWith(req, (ok, v) => (ok ? resolve(v) : reject(v))));
  }

  /**
   * {@link executeLocal} reporting through `done` instead of a promise: `done(true, value)` or
   * `done(false, error)`, exactly once, synchronously when the handler is synchronous (the
   * callee of remote calls runs thousands per second; a promise and its continuation per call
   * showed in its profile).
   */
  executeLocalWith(req: ExecuteLocalRequest<Ctx>, done: (ok: boolean, value: unknown) => void): void {
    let run: LocalRun<Ctx>;
    try {
      run = new LocalRun<Ctx>(this, req);
    } catch (e) {
      done(false, e);
      return;
    }
    run.start(done);
  }

  /** @internal */
  _locate(cmd: PlanCommand): Location<Ctx> {
    const loc = this.locate(cmd);
    if (loc instanceof Error) throw loc;
    if (loc.kind === "remote" && this.dispatcher === undefined) {
      throw new MpregError(ErrorCode.UNREACHABLE, `no dispatcher to reach node ${loc.node_id}`, {
        command: cmd.name,
        node_id: loc.node_id,
        reason: "no dispatcher configured",
      });
    }
    return loc;
  }

  /** @internal */
  _timeout(ms: number | undefined): number {
    const t = ms ?? this.defaultTimeoutMs;
    if (typeof t !== "number" || !Number.isFinite(t) || t <= 0) {
      throw MpregError.invalid("timeout_ms must be a positive number", "timeout_ms");
    }
    return Math.min(t, this.maxTimeoutMs);
  }

  /** @internal Adds `value` to a reply tally; true while within the reply limits. */
  _tallyReply(value: unknown, tally: SizeTally): boolean {
    return tallyEncodedSize(value, tally, this.maxReplyBytes, this.maxReplyValues);
  }

  /** @internal A 1007 for the reply limits (whichever `tally` passed), counted. */
  _replyTooLarge(tally: SizeTally, cmd: PlanCommand): MpregError {
    this.stats.replyTooLarge++;
    return tally.bytes > this.maxReplyBytes
      ? tooLarge("reply_too_large", "maxReplyBytes", "bytes", this.maxReplyBytes, tally.bytes, cmd)
      : tooLarge("reply_too_large", "maxReplyValues", "values", this.maxReplyValues, tally.values, cmd);
  }

  /** @internal A 1007 for the fan-out limit, counted. */
  _fanOutTooLarge(estimated: number, cmd: PlanCommand): MpregError {
    this.stats.fanOutTooLarge++;
    return tooLarge("fan_out_too_large", "maxSubstitutedBytes", "bytes", this.maxSubstitutedBytes, estimated, cmd);
  }

  /** @internal */ get _dispatcher(): Dispatcher | undefined { return this.dispatcher; }
  /** @internal */ get _now(): () => number { return this.now; }
  /** @internal */ get _wall(): () => number { return this.wallClock; }
}

/** The state of one request in flight. */
class Run<Ctx> implements SignalSource, Cancellation {
  private readonly plan: Plan;
  private readonly n: number;
  private readonly locations: Location<Ctx>[];
  private readonly timeoutMs: number;
  private readonly startedAt: number;
  private deadline = -1;
  // Created on first use: most handlers never look at their signal, and an AbortController
  // costs more than the rest of a trivial request.
  private controller: AbortController | undefined;
  private failure: unknown;
  private readonly results = new Map<string, unknown>();
  /** Unfinished dependencies per command (absent for plans without references). */
  private readonly pendingDeps: number[] | undefined;
  private completed = 0;
  private finished = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private resolve!: (r: ExecuteResult) => void;
  private reject!: (e: unknown) => void;
  private readonly ready: number[] = [];
  private readyHead = 0;
  private draining = false;
  private removeExternal: (() => void) | undefined;
  /** `onAbort` callbacks of dispatchers (a removed one is set to null). */
  private abortCallbacks: ((() => void) | null)[] | undefined;
  // Level bookkeeping, only when intermediate results or a summary are asked for.
  private readonly track: boolean;
  private levelRemaining: number[] | undefined;
  private levelStart: number[] | undefined;
  private levelEnd: number[] | undefined;
  private nextLevel = 0;
  private readonly intermediates: IntermediateResult[] = [];
  private accumulated: Record<string, unknown> | undefined;
  // Size accounting (estimated encoded bytes): what references substituted so far, what the
  // reply holds so far, and the results of completed levels (intermediate results repeat them).
  private substitutedBytes = 0;
  private readonly reply: SizeTally = { bytes: 0, values: 0 };
  private accumulatedSize: SizeTally | undefined;
  private substituting: PlanCommand | undefined;
  private substituteOptionsCache: SubstituteOptions | undefined;
  /** Created for the first command with references (most requests have none). */
  private get substituteOptions(): SubstituteOptions {
    return (this.substituteOptionsCache ??= {
      onSubstitute: (value) => {
        const max = this.ex.maxSubstitutedBytes;
        this.substitutedBytes += estimateEncodedSize(value, max - this.substitutedBytes);
        if (this.substitutedBytes > max) throw this.ex._fanOutTooLarge(this.substitutedBytes, this.substituting!);
      },
    });
  }

  constructor(
    private readonly ex: Executor<Ctx>,
    private readonly req: ExecuteRequest<Ctx>,
  ) {
    if (typeof req.request_id !== "string") throw MpregError.invalid("request_id must be a string", "request_id");
    // The timeout and the summary count planning and locating too.
    this.startedAt = ex._now();
    this.timeoutMs = ex._timeout(req.timeout_ms);
    this.plan = planRequest(req.cmds);
    this.n = this.plan.commands.length;
    // Locate every command first: an unknown function anywhere means nothing runs.
    this.locations = new Array(this.n);
    for (let i = 0; i < this.n; i++) {
      const cmd = this.plan.commands[i]!.command;
      try {
        this.locations[i] = ex._locate(cmd);
      } catch (e) {
        if (isMpregError(e) && (e.code === ErrorCode.NOT_FOUND || e.code === ErrorCode.UNREACHABLE) && e.details.command === undefined) {
          throw new MpregError(e.code, e.message, { command: cmd.name, fun: cmd.fun, ...e.details });
        }
        throw e;
      }
    }
    if (!this.plan.trivial) {
      this.pendingDeps = new Array(this.n);
      for (let i = 0; i < this.n; i++) this.pendingDeps[i] = this.plan.commands[i]!.deps.length;
    }
    this.track = req.return_intermediate_results === true || req.include_execution_summary === true || req.onProgress !== undefined;
    if (this.track) {
      const L = this.plan.levels.length;
      this.levelRemaining = this.plan.levels.map((l) => l.length);
      this.levelStart = new Array<number>(L).fill(-1);
      this.levelEnd = new Array<number>(L).fill(0);
      this.accumulated = {};
    }
  }

  /** Absolute deadline (Unix ms), computed on the first remote dispatch. */
  private deadlineMs(): number {
    if (this.deadline < 0) this.deadline = this.ex._wall() + this.timeoutMs - (this.ex._now() - this.startedAt);
    return this.deadline;
  }

  /** The request's signal; already aborted when asked for after the request failed. */
  signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.finished && this.failure !== undefined) this.controller.abort(this.failure);
    }
    return this.controller.signal;
  }

  start(): Promise<ExecuteResult> {
    const p = new Promise<ExecuteResult>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    const canc = this.req.cancellation;
    const ext = canc === undefined ? this.req.signal : undefined;
    if (canc?.aborted === true || ext?.aborted === true) {
      this.fail(cancelled(canc !== undefined ? canc.reason : ext!.reason));
      return p;
    }
    for (const i of this.plan.levels[0]!) this.ready.push(i);
    this.drain();
    // Only requests that went asynchronous need a timer and an abort listener: nothing can
    // abort the external signal while the handlers run synchronously, and adding/removing an
    // EventTarget listener per request is a measurable share of a trivial request's cost.
    if (!this.finished) {
      if (canc !== undefined) {
        if (canc.aborted) {
          this.fail(cancelled(canc.reason));
          return p;
        }
        this.removeExternal = canc.onAbort(() => this.fail(cancelled(canc.reason)));
      } else if (ext !== undefined) {
        if (ext.aborted) {
          this.fail(cancelled(ext.reason));
          return p;
        }
        const onAbort = () => this.fail(cancelled(ext.reason));
        ext.addEventListener("abort", onAbort, { once: true });
        this.removeExternal = () => ext.removeEventListener("abort", onAbort);
      }
      const left = this.timeoutMs - (this.ex._now() - this.startedAt);
      this.timer = setTimeout(() => this.onTimeout(), Math.max(0, left));
    }
    return p;
  }

  /** Starts ready commands one after another; synchronous completions feed the same loop. */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      // FIFO, so independent commands start in request order.
      while (this.readyHead < this.ready.length && !this.finished) this.run(this.ready[this.readyHead++]!);
    } finally {
      this.draining = false;
      if (this.readyHead === this.ready.length) {
        this.ready.length = 0;
        this.readyHead = 0;
      }
    }
  }

  private run(i: number): void {
    const pc = this.plan.commands[i]!;
    const cmd = pc.command;
    if (this.track) {
      const lv = pc.level;
      if (this.levelStart![lv]! < 0) this.levelStart![lv] = this.ex._now() - this.startedAt;
    }
    let args: readonly unknown[];
    let kwargs: Readonly<Record<string, unknown>>;
    try {
      this.substituting = cmd;
      ({ args, kwargs } = substitute(this.plan, i, this.results, pc.refs.length > 0 ? this.substituteOptions : undefined));
    } catch (e) {
      this.fail(e);
      return;
    }
    const loc = this.locations[i]!;
    let out: unknown;
    if (loc.kind === "local") {
      let fn: RegisteredFunction<Ctx>;
      try {
        fn = loc.fn ?? this.ex.registry.resolve(cmd.fun, {
          function_id: cmd.function_id,
          version_constraint: cmd.version_constraint,
          resources: cmd.locs,
        });
      } catch (e) {
        // Unregistered between locate and run.
        this.fail(isMpregError(e) ? withCommand(e, cmd) : e);
        return;
      }
      try {
        out = fn.handler(new Invocation(this, args, kwargs, this.req.request_id, this.req.ctx));
      } catch (e) {
        this.fail(handlerError(e, cmd, this.ex.nodeId));
        return;
      }
      if (isThenable(out)) {
        out.then(
          (v) => this.complete(i, v),
          (e: unknown) => this.fail(handlerError(e, cmd, this.ex.nodeId)),
        );
        return;
      }
      this.complete(i, out);
      return;
    }
    // Nothing substituted: the command travels as the client sent it (no copy per call).
    const command: PlanCommand =
      pc.refs.length === 0 ? cmd : { ...cmd, args: args as unknown[], kwargs: kwargs as Record<string, unknown> };
    const dispatcher = this.ex._dispatcher!;
    const call = new RunDispatch(this, command, loc.node_id, loc.cluster_id, this.req.request_id, this.req.trace_id, this.deadlineMs());
    if (dispatcher.dispatchWith !== undefined) {
      try {
        dispatcher.dispatchWith(call, (ok, v) => (ok ? this.complete(i, v) : this.fail(remoteError(v, cmd, loc.node_id))));
      } catch (e) {
        this.fail(remoteError(e, cmd, loc.node_id));
      }
      return;
    }
    let p: Promise<unknown>;
    try {
      p = dispatcher.dispatch(call);
    } catch (e) {
      this.fail(remoteError(e, cmd, loc.node_id));
      return;
    }
    Promise.resolve(p).then(
      (v) => this.complete(i, v),
      (e: unknown) => this.fail(remoteError(e, cmd, loc.node_id)),
    );
  }

  private complete(i: number, value: unknown): void {
    if (this.finished) return;
    const pc = this.plan.commands[i]!;
    // `undefined` does not survive the wire (JSON drops the key): a handler returning nothing
    // yields null, locally and remotely alike.
    const result = value === undefined ? null : value;
    // A result the reply returns is counted as it arrives: the reply is refused before it is
    // ever assembled or encoded.
    if (pc.dependents.length === 0 || this.req.return_all === true) {
      // The key, then the value.
      this.reply.bytes += pc.name.length + 5;
      this.reply.values += 1;
      if (!this.ex._tallyReply(result, this.reply)) {
        this.fail(this.ex._replyTooLarge(this.reply, pc.command));
        return;
      }
    }
    this.results.set(pc.name, result);
    this.completed++;
    if (this.track) {
      this.levelDone(pc.level);
      if (this.finished) return;
    }
    if (this.completed === this.n) {
      this.succeed();
      return;
    }
    const pending = this.pendingDeps;
    if (pending !== undefined) {
      for (const j of pc.dependents) {
        if (--pending[j]! === 0) this.ready.push(j);
      }
    }
    this.drain();
  }

  /** Emits intermediate results for every level that is now complete, in level order. */
  private levelDone(level: number): void {
    const remaining = this.levelRemaining!;
    remaining[level]!--;
    if (remaining[level] === 0) this.levelEnd![level] = this.ex._now() - this.startedAt;
    const L = this.plan.levels.length;
    const wantIr = this.req.return_intermediate_results === true || this.req.onProgress !== undefined;
    while (this.nextLevel < L && remaining[this.nextLevel] === 0) {
      const k = this.nextLevel++;
      if (!wantIr) continue;
      const levelResults: Record<string, unknown> = {};
      // An intermediate result repeats the level's results and everything accumulated so far:
      // with many levels that is quadratic, so it is counted like the reply (and a pushed one
      // on its own, since it travels as a frame of its own).
      const level: SizeTally = { bytes: 0, values: 0 };
      for (const c of this.plan.levels[k]!) {
        const name = this.plan.commands[c]!.name;
        const v = this.results.get(name);
        setOwn(levelResults, name, v);
        setOwn(this.accumulated!, name, v);
        level.bytes += name.length + 5;
        level.values += 1;
        if (!this.ex._tallyReply(v, level)) break;
      }
      const acc = (this.accumulatedSize ??= { bytes: 0, values: 0 });
      acc.bytes += level.bytes;
      acc.values += level.values;
      // Seven more fields and the two maps of the entry itself.
      const entry: SizeTally = { bytes: level.bytes + acc.bytes + 128, values: level.values + acc.values + 16 };
      const first = this.plan.commands[this.plan.levels[k]![0]!]!.command;
      if (entry.bytes > this.ex.maxReplyBytes || entry.values > this.ex.maxReplyValues) {
        this.fail(this.ex._replyTooLarge(entry, first));
        return;
      }
      if (this.req.return_intermediate_results === true) {
        this.reply.bytes += entry.bytes;
        this.reply.values += entry.values;
        if (this.reply.bytes > this.ex.maxReplyBytes || this.reply.values > this.ex.maxReplyValues) {
          this.fail(this.ex._replyTooLarge(this.reply, first));
          return;
        }
      }
      const ir: IntermediateResult = {
        level_index: k,
        level_results: levelResults,
        accumulated_results: { ...this.accumulated! },
        total_levels: L,
        completed_levels: k + 1,
        execution_time_ms: this.levelEnd![k]! - Math.max(0, this.levelStart![k]!),
        timestamp: this.ex._wall(),
      };
      if (this.req.return_intermediate_results === true) this.intermediates.push(ir);
      if (this.req.onProgress !== undefined) {
        try {
          this.req.onProgress(ir);
        } catch (e) {
          log.warn("onProgress callback threw", e);
        }
      }
    }
  }

  private succeed(): void {
    this.finish();
    const r: Record<string, unknown> = {};
    // Reply keys in request order.
    if (this.req.return_all === true) {
      for (const pc of this.plan.commands) setOwn(r, pc.name, this.results.get(pc.name));
    } else {
      for (const i of this.plan.leaves) {
        const name = this.plan.commands[i]!.name;
        setOwn(r, name, this.results.get(name));
      }
    }
    const result: ExecuteResult = { r };
    if (this.req.return_intermediate_results === true) result.intermediate_results = this.intermediates;
    if (this.req.include_execution_summary === true) result.execution_summary = this.summary();
    this.resolve(result);
  }

  private summary(): ExecutionSummary {
    const L = this.plan.levels.length;
    const times: number[] = [];
    let bottleneck = 0;
    for (let k = 0; k < L; k++) {
      times.push(this.levelEnd![k]! - Math.max(0, this.levelStart![k]!));
      if (times[k]! > times[bottleneck]!) bottleneck = k;
    }
    let remote = 0;
    let cross = 0;
    for (const loc of this.locations) {
      if (loc.kind !== "remote") continue;
      remote++;
      if (loc.cluster_id !== this.ex.clusterId) cross++;
    }
    return {
      total_execution_time_ms: this.ex._now() - this.startedAt,
      total_levels: L,
      level_execution_times: times,
      bottleneck_level_index: bottleneck,
      commands_executed: this.completed,
      remote_commands: remote,
      cross_cluster_commands: cross,
    };
  }

  private onTimeout(): void {
    if (this.finished) return;
    const completed: string[] = [];
    const pending: string[] = [];
    for (let i = 0; i < this.n; i++) {
      const name = this.plan.commands[i]!.name;
      (this.results.has(name) ? completed : pending).push(name);
    }
    this.fail(
      new MpregError(ErrorCode.TIMEOUT, `request timed out after ${this.timeoutMs} ms`, { completed, pending }),
    );
  }

  /** First failure wins: abort everything running, start nothing more, reject. */
  private fail(err: unknown): void {
    if (this.finished) return;
    this.finish();
    this.failure = err;
    this.controller?.abort(err);
    const cbs = this.abortCallbacks;
    if (cbs !== undefined) {
      this.abortCallbacks = undefined;
      for (const cb of cbs) cb?.();
    }
    this.reject(err);
  }

  // Cancellation (what dispatchers get instead of creating a signal).
  get aborted(): boolean {
    return this.finished && this.failure !== undefined;
  }

  get reason(): unknown {
    return this.failure;
  }

  onAbort(cb: () => void): () => void {
    // Like an AbortSignal listener: nothing fires for a request that already ended.
    if (this.finished) return () => {};
    const cbs = (this.abortCallbacks ??= []);
    const i = cbs.push(cb) - 1;
    return () => {
      if (this.abortCallbacks === cbs) cbs[i] = null;
    };
  }

  private finish(): void {
    this.finished = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.removeExternal?.();
  }


}

interface SignalSource {
  signal(): AbortSignal;
}

/**
 * A remote call of a run, as handed to the dispatcher: `signal` is created only when read (a
 * class rather than an object literal with a getter, which costs a closure and a slow-path
 * object per call).
 */
class RunDispatch implements DispatchRequest {
  readonly #run: SignalSource & Cancellation;

  constructor(
    run: SignalSource & Cancellation,
    readonly command: PlanCommand,
    readonly node_id: string,
    readonly cluster_id: string,
    readonly request_id: string,
    readonly trace_id: string | undefined,
    readonly deadline: number,
  ) {
    this.#run = run;
  }

  get signal(): AbortSignal {
    return this.#run.signal();
  }

  get cancellation(): Cancellation {
    return this.#run;
  }
}

/** A handler's input; `signal` is materialised only when the handler reads it. */
class Invocation<Ctx> implements HandlerInput<Ctx> {
  // A true private field: spreading or serialising the input does not expose the run.
  readonly #owner: SignalSource;

  constructor(
    owner: SignalSource,
    readonly args: readonly unknown[],
    readonly kwargs: Readonly<Record<string, unknown>>,
    readonly request_id: string,
    readonly ctx: Ctx | undefined,
  ) {
    this.#owner = owner;
  }

  get signal(): AbortSignal {
    return this.#owner.signal();
  }
}

/** The state of one {@link Executor.executeLocal} call. */
class LocalRun<Ctx> implements SignalSource {
  private controller: AbortController | undefined;
  private failure: unknown;
  private finished = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private removeExternal: (() => void) | undefined;
  private readonly fn: RegisteredFunction<Ctx>;
  private readonly timeoutMs: number;

  constructor(
    private readonly ex: Executor<Ctx>,
    private readonly req: ExecuteLocalRequest<Ctx>,
  ) {
    const cmd = req.command;
    if (typeof cmd !== "object" || cmd === null || typeof cmd.fun !== "string") throw MpregError.invalid("command.fun must be a string", "command.fun");
    if (typeof req.request_id !== "string") throw MpregError.invalid("request_id must be a string", "request_id");
    try {
      this.fn = ex.registry.resolve(cmd.fun, {
        function_id: cmd.function_id ?? undefined,
        version_constraint: cmd.version_constraint ?? undefined,
      });
    } catch (e) {
      throw isMpregError(e) ? withCommand(e, cmd) : e;
    }
    this.timeoutMs =
      req.deadline !== undefined && Number.isFinite(req.deadline)
        ? Math.min(Math.max(0, req.deadline - ex._wall()), MAX_TIMER_MS)
        : ex._timeout(req.timeout_ms);
  }

  signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.finished && this.failure !== undefined) this.controller.abort(this.failure);
    }
    return this.controller.signal;
  }

  start(done: (ok: boolean, value: unknown) => void): void {
    const cmd = this.req.command;
    const fail = (err: unknown) => {
      if (this.finished) return;
      this.finish();
      this.failure = err;
      this.controller?.abort(err);
      done(false, err);
    };
    const ok = (v: unknown) => {
      if (this.finished) return;
      // The result goes back to the calling node in one frame: bounded like a reply.
      const size: SizeTally = { bytes: 0, values: 0 };
      if (!this.ex._tallyReply(v, size)) {
        fail(this.ex._replyTooLarge(size, cmd));
        return;
      }
      this.finish();
      done(true, v === undefined ? null : v);
    };
    const canc = this.req.cancellation;
    const ext = canc === undefined ? this.req.signal : undefined;
    if (canc?.aborted) {
      fail(cancelled(canc.reason));
      return;
    }
    if (ext?.aborted) {
      fail(cancelled(ext.reason));
      return;
    }
    const timedOut = () =>
      fail(new MpregError(ErrorCode.TIMEOUT, `command ${cmd.name} timed out`, { completed: [], pending: [cmd.name] }));
    if (this.timeoutMs <= 0) {
      timedOut();
      return;
    }
    let out: unknown;
    try {
      out = this.fn.handler(new Invocation(this, cmd.args ?? EMPTY_ARGS, cmd.kwargs ?? EMPTY_KWARGS, this.req.request_id, this.req.ctx));
    } catch (e) {
      fail(handlerError(e, cmd, this.ex.nodeId));
      return;
    }
    if (!isThenable(out)) {
      ok(out);
      return;
    }
    // As in Run.start: only a handler that went asynchronous needs the abort listener.
    if (canc !== undefined) {
      if (canc.aborted) {
        fail(cancelled(canc.reason));
        return;
      }
      this.removeExternal = canc.onAbort(() => fail(cancelled(canc.reason)));
    } else if (ext !== undefined) {
      if (ext.aborted) {
        fail(cancelled(ext.reason));
        return;
      }
      const onAbort = () => fail(cancelled(ext.reason));
      ext.addEventListener("abort", onAbort, { once: true });
      this.removeExternal = () => ext.removeEventListener("abort", onAbort);
    }
    this.timer = setTimeout(timedOut, this.timeoutMs);
    out.then(ok, (e: unknown) => fail(handlerError(e, cmd, this.ex.nodeId)));
  }

  private finish(): void {
    this.finished = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.removeExternal?.();
  }
}

const EMPTY_ARGS: readonly unknown[] = Object.freeze([]);
const EMPTY_KWARGS: Readonly<Record<string, unknown>> = Object.freeze({});

function handlerError(e: unknown, cmd: PlanCommand, nodeId: string): MpregError {
  // A handler may fail on purpose with a wire error (e.g. 1001 for a stale queue receipt).
  if (isMpregError(e)) return e;
  const err = e instanceof Error ? e : undefined;
  return new MpregError(ErrorCode.EXECUTION_FAILED, `command ${cmd.name} (${cmd.fun}) failed: ${err?.message ?? String(e)}`, {
    command: cmd.name,
    fun: cmd.fun,
    node_id: nodeId,
    error_type: err?.name ?? typeof e,
    message: err?.message ?? String(e),
  });
}

function withCommand(e: MpregError, cmd: PlanCommand): MpregError {
  if (e.details.command !== undefined) return e;
  return new MpregError(e.code, e.message, { command: cmd.name, fun: cmd.fun, ...e.details });
}

function remoteError(e: unknown, cmd: PlanCommand, nodeId: string): MpregError {
  if (isMpregError(e)) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new MpregError(ErrorCode.UNREACHABLE, `node ${nodeId} failed while running ${cmd.name}: ${message}`, {
    command: cmd.name,
    node_id: nodeId,
    ...(cmd.target_cluster === undefined ? {} : { target_cluster: cmd.target_cluster }),
    reason: message,
  });
}

function cancelled(reason: unknown): MpregError {
  if (isMpregError(reason)) return reason;
  return new MpregError(ErrorCode.EXECUTION_FAILED, "request cancelled", { reason: "cancelled" });
}
