import {
  DEFAULT_TIMEOUT_MS,
  ErrorCode,
  MAX_TIMEOUT_MS,
  MpregError,
  createLogger,
  decodeFrame,
  encodeCallRequest,
  encodeFrame,
  encodePlainPublish,
  encodePublish,
  encodePublishBatch,
  estimateEncodedSize,
  MAX_PUBSUB_BATCH,
  isMpregError,
  newId,
  type Frame,
  type IntermediateResult,
  type PubsubAck,
  type RpcCommand,
  type RpcRequest,
  type RpcResponse,
} from "@mpreg/envelope";
import {
  CloseCode,
  DEFAULT_BACKOFF,
  connectWs,
  type Connection,
  type ClientTlsOptions,
  type ConnectOptions,
  type FrameData,
  type RandomSource,
  type ReconnectOptions,
  type Unsubscribe,
} from "@mpreg/transport";
import { CacheClient } from "./cache-client.js";
import type { ClientCore, CoreCallOptions, PubsubRequest, PushKind, Resumable } from "./client-core.js";
import { FailoverLink } from "./failover-link.js";
import { KvClient } from "./kv-client.js";
import { FixedLink, type ClientState, type Link } from "./link.js";
import { QueueClient } from "./queue-client.js";
import { Subscription, type SubscribeOptions } from "./subscription.js";
import { UrlPool, urlKey } from "./url-pool.js";
import { checkClientOptions } from "./validate.js";

export type { ClientState } from "./link.js";

const log = createLogger("client");

/** Default bound on requests awaiting a reply (the node's own per-connection default). */
export const DEFAULT_MAX_PENDING = 1024;
/** How much longer than `timeout_ms` the client waits before giving up on a reply. */
export const DEFAULT_DEADLINE_GRACE_MS = 1000;
/** Default period of the `cluster_map` refresh. */
export const DEFAULT_DISCOVERY_INTERVAL_MS = 30_000;
/** Default longest time a connection to a node that is shutting down is kept for its last replies. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
/** Pushes for a subscription, watch or consumer not known yet, held until it is (then dropped oldest first). */
export const MAX_HELD_PUSHES = 256;
/** `timeout_ms` of the client's own `cluster_map` calls. */
const DISCOVERY_TIMEOUT_MS = 5000;

/** Options of `MpregClient.connect` (and of the constructor, minus the connection ones). */
export interface ClientOptions {
  /** Bearer token for nodes that require authentication. */
  token?: string;
  /**
   * Reconnect and fail over after a loss: on by default (infinite attempts, backoff with full
   * jitter from 100 ms to 10 s). `false`: the first loss closes the client.
   */
  reconnect?: boolean | ReconnectOptions;
  /** Default `timeout_ms` of each request. Default 30 000. */
  timeoutMs?: number;
  /**
   * Most requests awaiting a reply at once (requests held for a new connection included); past
   * it `call`/`request` reject at once with MpregError 1007 OVERLOADED. Default 1024.
   */
  maxPending?: number;
  /** Client-side deadline = `timeout_ms` + this. Default 1000. */
  deadlineGraceMs?: number;
  /** Most node URLs known at once (seeds plus discovered). Default 64. */
  maxUrls?: number;
  /**
   * Learn further node URLs from `cluster_map`: after each connect and every `intervalMs`
   * (default 30 000). On by default for `connect`; `false` turns it off.
   */
  discovery?: boolean | { intervalMs?: number };
  /**
   * How long a connection to a node that answered "shutting down" is kept open for the replies
   * still due on it, while new requests already go to another node. Default 10 000.
   */
  drainTimeoutMs?: number;
  /**
   * Node only, for `wss://` URLs: the CA that signed the nodes' certificates (when it is not a
   * public one), a client certificate and key when the nodes require one (mutual TLS),
   * `rejectUnauthorized` (default true), `servername`. A browser uses its own trust store.
   */
  tls?: ClientTlsOptions;
  /** Further transport options (ping period, frame limit, WebSocket constructor, jitter source...). */
  transport?: Omit<ConnectOptions, "token" | "reconnect">;
  /**
   * Coalesce `publish(topic, payload)` calls (without options) made in the same event-loop
   * turn into one `pubsub-publish-batch` frame (at most 256 messages, about 256 KiB), answered
   * by one ack. Each call still resolves with its own message id; a refused batch (1002 for
   * any bad message: all or nothing) rejects every call in it with that error. Off by default:
   * nodes older than this addition refuse the frame (docs/protocol.md).
   */
  batchPublishes?: boolean;
}

/** A coalesced publish batch stops growing at about this many (estimated) payload bytes. */
const PUBLISH_BATCH_BYTES = 256 * 1024;

/** Options of `call`. */
export interface CallOptions {
  kwargs?: Record<string, unknown>;
  locs?: string[];
  function_id?: string;
  version_constraint?: string;
  target_cluster?: string;
  timeout_ms?: number;
  /**
   * The call may run twice without harm. If its connection is lost before the reply, it is sent
   * once more on the next connection (instead of failing with 1005), and if it is made while
   * the client is between connections it waits for the next one (within its deadline).
   */
  idempotent?: boolean;
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
  /** As `CallOptions.idempotent`, for every command of the request. */
  idempotent?: boolean;
}

/** Options of `publish`. */
export interface PublishOptions {
  headers?: Record<string, unknown>;
  /** The message's id (the node makes one when absent); subscribers see each id at most once. */
  message_id?: string;
  /** Send it again on the next connection if the link is lost before the ack (see `CallOptions`). */
  idempotent?: boolean;
}

/** A failover: the client moved from the node at `from` to the node at `to`. */
export interface FailoverEvent {
  from: string;
  to: string;
}

/**
 * A server push that is not a reply (`pubsub-notification`, `pubsub-notification-batch`,
 * `queue-delivery`, `kv-event`, ...).
 */
export type PushFrame = Exclude<Frame, { u: string } | { u: string | null }>;

/** A frame the client sends and correlates by `u`. */
type OutFrame = RpcRequest | (PubsubRequest & { u: string });

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
  /** Runs synchronously on the result before the promise resolves (see ClientCore.callThen). */
  onResult: ((result: unknown) => unknown) | undefined;
  /** The connection it was sent on; null while it waits for one. */
  conn: Connection | null;
  /** How often it was sent (an idempotent request is sent at most twice). */
  sends: number;
  /** Kept only for idempotent requests, to send again. */
  frame: OutFrame | undefined;
  plain: boolean;
}

/**
 * A plain publish awaiting its ack: the lighter record of `publishPlain` (no frame kept, no
 * progress, no result mapping), in its own table so that the ack settles it with one lookup.
 */
interface AckWaiter {
  resolve(messageId: string): void;
  reject(err: MpregError): void;
  /** Client-side deadline, on the `performance.now()` clock. */
  deadline: number;
  /** The connection it was sent on (plain publishes are never sent again). */
  conn: Connection;
}

/** Plain publishes coalesced into one `pubsub-publish-batch` (see `ClientOptions.batchPublishes`). */
interface PublishBatch {
  readonly conn: Connection;
  readonly messages: { topic: string; payload: unknown }[];
  readonly waiters: { resolve(messageId: string): void; reject(err: MpregError): void }[];
  bytes: number;
  /** Set once sent: the ack's `u`, and the client-side deadline. */
  u: string;
  deadline: number;
}

const NO_OPTIONS: CallOptions = Object.freeze({});
const hasOwn = Object.prototype.hasOwnProperty;

/**
 * The MPREG client: sends requests as MessagePack binary frames and correlates replies by `u`.
 *
 * - It knows several node URLs (given, and discovered through `cluster_map`) and fails over to
 *   another node when its node is lost or shuts down; see docs/client.md for the rules.
 * - Every request has a client-side deadline (`timeout_ms` + grace) and rejects with 1004 if
 *   the node never answers.
 * - When the connection is lost, every request sent on it rejects with 1005 UNREACHABLE
 *   (`details.reason` "connection lost"), except those marked `idempotent`, which are sent
 *   once more on the next connection.
 * - Error replies reject with an MpregError carrying the wire code, message and details.
 * - Subscriptions, queue consumers and KV watches made through it are made again on each new
 *   connection.
 */
export class MpregClient {
  /** Cache built-ins (`mpreg.cache.*`). */
  readonly cache: CacheClient;
  /** Replicated key-value store built-ins (`mpreg.kv.*`) and coordination on top of them. */
  readonly kv: KvClient;

  private readonly link: Link;
  private readonly pool: UrlPool | undefined;
  private readonly pending = new Map<string, Pending>();
  /** Plain publishes awaiting their ack (counted in `maxPending` with `pending`). */
  private readonly acks = new Map<string, AckWaiter>();
  /** Publish batches sent and awaiting their ack, by `u`. */
  private readonly batchAcks = new Map<string, PublishBatch>();
  /** The batch of this turn's publishes, sent at its end (or when full). */
  private openBatch: PublishBatch | undefined;
  /** Publishes in `openBatch` and `batchAcks` (counted in `maxPending`). */
  private batched = 0;
  private readonly batchPublishes: boolean;
  /** Requests awaiting a reply per connection (to release a drained one when it reaches 0). */
  private readonly perConn = new Map<Connection, number>();
  private readonly maxPending: number;
  private readonly timeoutMs: number;
  private readonly graceMs: number;
  private pushHandlers: Array<(frame: PushFrame) => void> = [];
  /** Push handlers by kind, then by subscription/watch id (no key string built per push). */
  private readonly routes = new Map<PushKind, Map<string, (frame: PushFrame) => void>>();
  /** Pushes whose subscription is not known yet (bounded by MAX_HELD_PUSHES). */
  private held: PushFrame[] = [];
  private readonly resumables = new Set<Resumable>();
  private readonly failoverHandlers: Array<(e: FailoverEvent) => void> = [];
  private closedByUser = false;
  private endInfo: { code: number; reason: string } | null = null;
  /** Node id behind the current connection, once discovery found it. */
  private currentNodeId: string | undefined;
  private discoveryTimer: ReturnType<typeof setInterval> | undefined;
  private discovering = false;
  private readonly core: ClientCore;
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
        this.take(u);
        const reason = `no reply within ${p.waitMs} ms`;
        p.reject(new MpregError(ErrorCode.TIMEOUT, reason, { completed: [], pending: p.names, reason }));
      } else if (p.deadline < next) {
        next = p.deadline;
      }
    }
    for (const [u, w] of this.acks) {
      if (w.deadline <= now) {
        this.takeAck(u, w);
        const reason = `no reply within ${this.timeoutMs + this.graceMs} ms`;
        w.reject(new MpregError(ErrorCode.TIMEOUT, reason, { completed: [], pending: [], reason }));
      } else if (w.deadline < next) {
        next = w.deadline;
      }
    }
    for (const [u, b] of this.batchAcks) {
      if (b.deadline <= now) {
        this.takeBatch(u, b);
        const reason = `no reply within ${this.timeoutMs + this.graceMs} ms`;
        this.rejectBatch(b, new MpregError(ErrorCode.TIMEOUT, reason, { completed: [], pending: [], reason }));
      } else if (b.deadline < next) {
        next = b.deadline;
      }
    }
    // A timer that fired a little early finds nothing expired and simply re-arms.
    if (next !== Infinity) this.armDeadline(next);
  };

  /**
   * Connects to a node: `urls` is one `ws://HOST:PORT` URL or several nodes of one cluster,
   * tried in the order given until one answers. Rejects as `connectWs` does (1005, 1006) when
   * none does, and with 1002 for bad options.
   */
  static async connect(urls: string | readonly string[], options: ClientOptions = {}): Promise<MpregClient> {
    checkClientOptions(options);
    const pool = new UrlPool(typeof urls === "string" ? [urls] : urls, options.maxUrls);
    const r = options.reconnect ?? true;
    const random: RandomSource = options.transport?.random ?? Math.random;
    const link = await FailoverLink.open(pool, {
      dial: (url) =>
        connectWs(url, {
          ...options.transport,
          ...(options.token !== undefined ? { token: options.token } : {}),
          ...(options.tls !== undefined ? { tls: options.tls } : {}),
          reconnect: false,
        }),
      reconnect: r === false ? null : { ...DEFAULT_BACKOFF, stableAfterMs: 5000, ...(r === true ? {} : r) },
      random,
      drainTimeoutMs: options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS,
    });
    const client = new MpregClient(link, options, pool);
    const d = options.discovery ?? true;
    if (d !== false) client.startDiscovery(d === true ? DEFAULT_DISCOVERY_INTERVAL_MS : d.intervalMs ?? DEFAULT_DISCOVERY_INTERVAL_MS);
    return client;
  }

  /**
   * Wraps an already open connection (a `connectWs` result, or one end of an in-memory pair
   * in tests). Such a client never fails over to another node; a `ClientConnection` still
   * reconnects to its own URL. Connection options in `options` are ignored here.
   */
  constructor(conn: Connection, options?: ClientOptions);
  /** @internal */
  constructor(link: Link, options: ClientOptions, pool: UrlPool);
  constructor(connOrLink: Connection | Link, options: ClientOptions = {}, pool?: UrlPool) {
    checkClientOptions(options);
    this.link = pool !== undefined ? (connOrLink as Link) : new FixedLink(connOrLink as Connection);
    this.pool = pool;
    this.maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
    this.batchPublishes = options.batchPublishes === true;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.graceMs = options.deadlineGraceMs ?? DEFAULT_DEADLINE_GRACE_MS;
    const ev = this.link.events;
    ev.message.add((conn, data, isBinary) => this.receive(conn, data, isBinary));
    ev.closed.add((conn, code, reason, url) => this.connectionClosed(conn, code, reason, url));
    ev.up.add((conn, url, previousUrl) => this.connectionUp(conn, url, previousUrl));
    ev.down.add((code, reason, will) => {
      this.currentNodeId = undefined;
      if (!will) this.ended(code, reason);
    });
    this.core = this.makeCore();
    this.cache = new CacheClient(this.core);
    this.kv = new KvClient(this.core);
  }

  /** `open`, `reconnecting` (between connections) or `closed`. */
  get state(): ClientState {
    return this.link.state;
  }

  /** URL of the node the client is connected to (undefined between connections, or when unknown). */
  get url(): string | undefined {
    return this.link.url;
  }

  /** Every node URL the client may fail over to: the ones given, then the discovered ones. */
  get knownUrls(): string[] {
    return this.pool?.urls() ?? (this.link.url !== undefined ? [this.link.url] : []);
  }

  /** Id of the node the client is connected to, once discovery told it. */
  get nodeId(): string | undefined {
    return this.currentNodeId;
  }

  /** Number of requests awaiting a reply (requests waiting for a connection included). */
  get pendingCount(): number {
    return this.pending.size + this.acks.size + this.batched;
  }

  /**
   * Calls one function and resolves with its result. The request holds a single command
   * named `<fun>@<nonce>`, `nonce` being random per client (so no argument can reference it
   * by accident).
   */
  call(fun: string, args: unknown[] = [], options: CallOptions = NO_OPTIONS): Promise<unknown> {
    try {
      return this.startCall(fun, args, options, undefined);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private startCall(fun: string, args: unknown[], options: CallOptions, onResult: ((r: unknown) => unknown) | undefined): Promise<unknown> {
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
    return this.send({ role: "rpc", u, cmds: [cmd], timeout_ms: timeout }, timeout, [name], undefined, fun, plain, options.idempotent === true, onResult);
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
    return (await this.send(frame, timeout, names, options.onProgress, undefined, false, options.idempotent === true, undefined)) as RpcResponse;
  }

  /**
   * Publishes one message and resolves with its `message_id` once the node accepted it for
   * delivery. A refusal (bad topic: 1002, ...) rejects with the ack's error code.
   */
  publish(topic: string, payload: unknown, options?: PublishOptions): Promise<string> {
    if (options === undefined) return this.publishPlain(topic, payload);
    const message: { topic: string; payload: unknown; headers?: Record<string, unknown>; message_id?: string } = { topic, payload };
    if (options.headers !== undefined) message.headers = options.headers;
    if (options.message_id !== undefined) message.message_id = options.message_id;
    const id = options.message_id;
    return this.core.pubsub({ role: "pubsub-publish", message }, options.idempotent === true).then((ack) => ack.message_id ?? id ?? "");
  }

  /**
   * Subscribes to topic patterns (`*` one segment, `#` zero or more). Resolves once the node
   * acknowledged it; iterate the result with `for await`, or pass `callback`. The subscription
   * is made again on each new connection; `unsubscribe()` (or `break`) ends it.
   */
  subscribe(patterns: string | string[], options: SubscribeOptions = {}): Promise<Subscription> {
    try {
      const list = typeof patterns === "string" ? [patterns] : patterns;
      const sub = new Subscription(this.core, list, options);
      return sub.start().then(() => sub);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The queue `name` (PROTOCOL section 5); nothing is sent until an operation is called. */
  queue(name: string): QueueClient {
    return new QueueClient(this.core, name);
  }

  /** Registers a handler for every push that is not a reply (also those a subscription takes). */
  onPush(handler: (frame: PushFrame) => void): Unsubscribe {
    this.pushHandlers = [...this.pushHandlers, handler];
    return () => {
      this.pushHandlers = this.pushHandlers.filter((h) => h !== handler);
    };
  }

  /** Called after each new connection (`url` is the node reached; it may be another node). */
  onReconnect(handler: (url: string) => void): Unsubscribe {
    return this.link.events.up.add((_conn, url) => handler(url));
  }

  /** Called when the client moved to another node: `{from, to}` URLs. */
  onFailover(handler: (event: FailoverEvent) => void): Unsubscribe {
    this.failoverHandlers.push(handler);
    return () => {
      const i = this.failoverHandlers.indexOf(handler);
      if (i >= 0) this.failoverHandlers.splice(i, 1);
    };
  }

  /** Called when a retry is scheduled (`attempt` from 1, `delayMs` before it, the URL it will try). */
  onReconnecting(handler: (attempt: number, delayMs: number, url: string) => void): Unsubscribe {
    return this.link.events.reconnecting.add(handler);
  }

  /** Called on each loss of the connection; `willReconnect` is false on the final close. */
  onDisconnect(handler: (code: number, reason: string, willReconnect: boolean) => void): Unsubscribe {
    const done = this.endInfo;
    if (done !== null) {
      queueMicrotask(() => handler(done.code, done.reason, false));
      return () => {};
    }
    return this.link.events.down.add(handler);
  }

  /**
   * Closes for good: pending requests reject with 1005, subscriptions, consumers and watches
   * end (their iterators finish), leases stop being kept alive. Resolves once closed.
   */
  close(): Promise<void> {
    this.closedByUser = true;
    this.stopDiscovery();
    if (this.endInfo !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.link.events.down.add((_c, _r, will) => {
        if (!will) resolve();
      });
      this.link.close(CloseCode.NORMAL, "client closed");
    });
  }

  // -------------------------------------------------------------------------------------------
  // Sending and correlation
  // -------------------------------------------------------------------------------------------

  private nextId(): string {
    return this.nonce + (++this.seq).toString(36);
  }

  /**
   * `publish(topic, payload)` without options, the hot path of a publisher: the same frame and
   * the same outcomes as a request through `send` (1005 when closed or between connections,
   * 1007 past `maxPending`, 1004 at the deadline, the ack's error), with a lighter record in
   * its own table and the promise settled with the message id directly.
   */
  private publishPlain(topic: string, payload: unknown): Promise<string> {
    if (this.closedByUser || this.endInfo !== null) return Promise.reject(unreachable("client closed"));
    if (this.batchPublishes) return this.publishCoalesced(topic, payload);
    if (this.pending.size + this.acks.size + this.batched >= this.maxPending) {
      return Promise.reject(MpregError.overloaded(`too many pending requests (maxPending ${this.maxPending})`));
    }
    const u = this.nextId();
    let data: Uint8Array;
    try {
      data = encodePlainPublish(u, topic, payload);
    } catch (e) {
      return Promise.reject(e);
    }
    const conn = this.link.connection;
    if (conn === null) {
      return Promise.reject(unreachable(this.link.state === "closed" ? "connection is closed" : "not connected (reconnecting)"));
    }
    return new Promise<string>((resolve, reject) => {
      const deadline = performance.now() + this.timeoutMs + this.graceMs;
      const w: AckWaiter = { resolve, reject, deadline, conn };
      // Registered before sending, so even a synchronous transport finds the entry.
      this.acks.set(u, w);
      this.perConn.set(conn, (this.perConn.get(conn) ?? 0) + 1);
      if (deadline < this.deadlineTimerAt) this.armDeadline(deadline);
      else if (this.pending.size + this.acks.size === 1) refTimer(this.deadlineTimer, true);
      try {
        conn.send(data);
      } catch (e) {
        this.takeAck(u, w);
        reject(isMpregError(e) ? e : unreachable(String(e)));
      }
    });
  }

  /** A plain publish joining this turn's batch (`batchPublishes`). */
  private publishCoalesced(topic: string, payload: unknown): Promise<string> {
    if (this.pending.size + this.acks.size + this.batched >= this.maxPending) {
      return Promise.reject(MpregError.overloaded(`too many pending requests (maxPending ${this.maxPending})`));
    }
    if (typeof topic !== "string") return Promise.reject(MpregError.invalid("topic must be a string", "topic"));
    let size: number;
    try {
      size = topic.length + estimateEncodedSize(payload);
    } catch (e) {
      return Promise.reject(isMpregError(e) ? e : MpregError.invalid(String(e)));
    }
    const conn = this.link.connection;
    if (conn === null) {
      return Promise.reject(unreachable(this.link.state === "closed" ? "connection is closed" : "not connected (reconnecting)"));
    }
    return new Promise<string>((resolve, reject) => {
      let b = this.openBatch;
      if (b !== undefined && (b.conn !== conn || b.bytes + size > PUBLISH_BATCH_BYTES)) {
        this.sendBatch(b);
        b = undefined;
      }
      if (b === undefined) {
        b = { conn, messages: [], waiters: [], bytes: 0, u: "", deadline: Infinity };
        this.openBatch = b;
        queueMicrotask(this.sendOpenBatch);
      }
      b.messages.push({ topic, payload });
      b.waiters.push({ resolve, reject });
      b.bytes += size;
      this.batched++;
      if (b.messages.length >= MAX_PUBSUB_BATCH) this.sendBatch(b);
    });
  }

  private readonly sendOpenBatch = (): void => {
    const b = this.openBatch;
    if (b !== undefined) this.sendBatch(b);
  };

  /** Sends a batch of publishes (one frame) and waits for its ack. */
  private sendBatch(b: PublishBatch): void {
    if (this.openBatch === b) this.openBatch = undefined;
    if (this.closedByUser || this.endInfo !== null) {
      this.batched -= b.waiters.length;
      return this.rejectBatch(b, unreachable("client closed"));
    }
    const u = this.nextId();
    let data: Uint8Array;
    try {
      data = encodePublishBatch({ role: "pubsub-publish-batch", u, messages: b.messages });
    } catch (e) {
      this.batched -= b.waiters.length;
      return this.rejectBatch(b, isMpregError(e) ? e : MpregError.invalid(String(e)));
    }
    b.u = u;
    b.deadline = performance.now() + this.timeoutMs + this.graceMs;
    this.batchAcks.set(u, b);
    this.perConn.set(b.conn, (this.perConn.get(b.conn) ?? 0) + 1);
    if (b.deadline < this.deadlineTimerAt) this.armDeadline(b.deadline);
    else refTimer(this.deadlineTimer, true);
    try {
      b.conn.send(data);
    } catch (e) {
      this.takeBatch(u, b);
      this.rejectBatch(b, isMpregError(e) ? e : unreachable(String(e)));
    }
  }

  /** Removes a sent batch's record (see `take`). */
  private takeBatch(u: string, b: PublishBatch): void {
    this.batchAcks.delete(u);
    this.batched -= b.waiters.length;
    this.unbindConn(b.conn);
    if (this.pending.size === 0 && this.acks.size === 0 && this.batchAcks.size === 0) refTimer(this.deadlineTimer, false);
  }

  private rejectBatch(b: PublishBatch, err: MpregError): void {
    for (const w of b.waiters) w.reject(err);
  }

  /** The ack of a publish batch: each publish resolves with its id, or all reject with the error. */
  private settleBatch(ack: PubsubAck, b: PublishBatch, conn: Connection): void {
    this.takeBatch(ack.u, b);
    const ids = ack.message_ids;
    if (ack.success && Array.isArray(ids) && ids.length === b.waiters.length) {
      for (let i = 0; i < ids.length; i++) b.waiters[i]!.resolve(ids[i]!);
      return;
    }
    const err = ack.success
      ? new MpregError(ErrorCode.INVALID_REQUEST, "publish batch ack without one message id per message", { reason: "malformed batch ack" })
      : ackError(ack);
    if (isShutdown(err) && !this.link.isDraining(conn) && this.isOwnShutdown(err, conn)) this.link.drain(conn, "node shutting down");
    this.rejectBatch(b, err);
  }

  /** Removes a plain publish's record (see `take`). */
  private takeAck(u: string, w: AckWaiter): void {
    this.acks.delete(u);
    this.unbindConn(w.conn);
    if (this.pending.size === 0 && this.acks.size === 0 && this.batchAcks.size === 0) refTimer(this.deadlineTimer, false);
  }

  private send(
    frame: OutFrame,
    timeoutMs: number,
    names: string[],
    onProgress: ((ir: IntermediateResult) => void) | undefined,
    callFun: string | undefined,
    plain: boolean,
    idempotent: boolean,
    onResult: ((r: unknown) => unknown) | undefined,
  ): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      if (this.closedByUser || this.endInfo !== null) return reject(unreachable("client closed"));
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
        data = encodeOut(frame, plain, timeoutMs);
      } catch (e) {
        return reject(e);
      }
      const conn = this.link.connection;
      if (conn === null && !idempotent) {
        return reject(unreachable(this.link.state === "closed" ? "connection is closed" : "not connected (reconnecting)", names));
      }
      const u = frame.u;
      const waitMs = timeoutMs + this.graceMs;
      const deadline = performance.now() + waitMs;
      const p: Pending = {
        resolve, reject, deadline, waitMs, onProgress, names, callFun, onResult,
        conn: null, sends: 0, frame: idempotent ? frame : undefined, plain,
      };
      // Registered before sending, so even a synchronous transport finds the entry.
      this.pending.set(u, p);
      if (deadline < this.deadlineTimerAt) this.armDeadline(deadline);
      else if (this.pending.size + this.acks.size === 1) refTimer(this.deadlineTimer, true);
      // An idempotent request made between connections waits for the next one.
      if (conn !== null) this.transmit(u, p, conn, data);
    });
  }

  /** Sends a registered request on `conn`; a failed send is a lost connection for it. */
  private transmit(u: string, p: Pending, conn: Connection, data: Uint8Array): void {
    this.bind(p, conn);
    p.sends++;
    try {
      conn.send(data);
    } catch (e) {
      this.unbind(p);
      if (p.frame !== undefined && p.sends < 2) return; // held for the next connection
      this.take(u);
      p.reject(isMpregError(e) ? e : unreachable(String(e), p.names));
    }
  }

  private bind(p: Pending, conn: Connection): void {
    p.conn = conn;
    this.perConn.set(conn, (this.perConn.get(conn) ?? 0) + 1);
  }

  private unbind(p: Pending): void {
    const conn = p.conn;
    if (conn === null) return;
    p.conn = null;
    this.unbindConn(conn);
  }

  /** One request less awaiting a reply on `conn`. */
  private unbindConn(conn: Connection): void {
    const n = (this.perConn.get(conn) ?? 1) - 1;
    if (n > 0) {
      this.perConn.set(conn, n);
      return;
    }
    this.perConn.delete(conn);
    // A drained connection with nothing left to answer is closed now.
    if (this.link.isDraining(conn)) this.link.release(conn);
  }

  private receive(conn: Connection, data: FrameData, isBinary: boolean): void {
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
        const p = this.pending.get(frame.u);
        if (p === undefined) {
          // A node older than pubsub-publish-batch refuses it with an error reply.
          const b = this.batchAcks.get(frame.u);
          if (b !== undefined && frame.error !== null) {
            this.takeBatch(frame.u, b);
            this.rejectBatch(b, MpregError.fromWire(frame.error));
          }
          return; // else a late reply after the deadline
        }
        if (frame.error !== null) return this.failed(frame.u, p, conn, MpregError.fromWire(frame.error));
        this.take(frame.u);
        if (p.callFun !== undefined) settleCall(p, frame);
        else settle(p, frame);
        return;
      }
      case "pubsub-ack": {
        const w = this.acks.get(frame.u);
        if (w !== undefined) return this.settleAck(frame, w, conn);
        const b = this.batchAcks.get(frame.u);
        if (b !== undefined) return this.settleBatch(frame, b, conn);
        const p = this.pending.get(frame.u);
        if (p === undefined) return;
        if (!frame.success) return this.failed(frame.u, p, conn, ackError(frame));
        this.take(frame.u);
        if (p.callFun !== undefined) p.reject(noResult(p.callFun));
        else settle(p, frame);
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
        this.dispatchPush(frame as PushFrame);
      }
    }
  }

  /**
   * An error reply. "Node shutting down" (1005, reason `shutdown`) from the node of the current
   * connection starts a failover; an idempotent request it refused is then held for the next
   * connection instead of failing.
   */
  private failed(u: string, p: Pending, conn: Connection, err: MpregError): void {
    const draining = this.link.isDraining(conn);
    if (isShutdown(err) && (draining || this.isOwnShutdown(err, conn))) {
      if (!draining) this.link.drain(conn, "node shutting down");
      if (p.frame !== undefined && p.sends < 2 && this.link.state !== "closed") {
        this.unbind(p);
        // Sent again by connectionUp (it may already be up when the link had one ready).
        const next = this.link.connection;
        if (next !== null && next !== conn) this.resend(u, p, next);
        return;
      }
    }
    this.take(u);
    p.reject(err);
  }

  /** The ack of a plain publish (see `failed` for the "node shutting down" rule). */
  private settleAck(ack: PubsubAck, w: AckWaiter, conn: Connection): void {
    this.takeAck(ack.u, w);
    if (ack.success) return w.resolve(ack.message_id ?? "");
    const err = ackError(ack);
    if (isShutdown(err) && !this.link.isDraining(conn) && this.isOwnShutdown(err, conn)) this.link.drain(conn, "node shutting down");
    w.reject(err);
  }

  private isOwnShutdown(err: MpregError, conn: Connection): boolean {
    if (conn !== this.link.connection) return false;
    // A remote node shutting down says so with its own id; only ours means we must move.
    const id = err.details.node_id;
    return typeof id !== "string" || this.currentNodeId === undefined || id === this.currentNodeId;
  }

  private take(u: string): Pending | undefined {
    const p = this.pending.get(u);
    if (p === undefined) return undefined;
    this.pending.delete(u);
    this.unbind(p);
    // The deadline timer stays armed (re-arming per request is what it saves); with nothing
    // pending it no longer keeps the process alive, and when it fires it is not re-armed.
    if (this.pending.size === 0 && this.acks.size === 0 && this.batchAcks.size === 0) refTimer(this.deadlineTimer, false);
    return p;
  }

  private armDeadline(at: number): void {
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    this.deadlineTimerAt = at;
    this.deadlineTimer = setTimeout(this.sweepDeadlines, Math.max(0, at - performance.now()));
  }

  /** Sends an idempotent request again (or for the first time) on `conn`, with its remaining time. */
  private resend(u: string, p: Pending, conn: Connection): void {
    const frame = p.frame!;
    let data: Uint8Array;
    try {
      let timeout = 0;
      if (frame.role === "rpc") {
        timeout = Math.max(1, Math.min(MAX_TIMEOUT_MS, Math.floor(p.deadline - performance.now() - this.graceMs)));
        frame.timeout_ms = timeout;
      }
      data = encodeOut(frame, p.plain, timeout);
    } catch (e) {
      this.take(u);
      p.reject(isMpregError(e) ? e : unreachable(String(e), p.names));
      return;
    }
    this.transmit(u, p, conn, data);
  }

  // -------------------------------------------------------------------------------------------
  // Connections coming and going
  // -------------------------------------------------------------------------------------------

  /** A connection closed: what was sent on it is lost, except idempotent requests sent once. */
  private connectionClosed(conn: Connection, code: number, reason: string, url: string | undefined): void {
    if (!this.perConn.has(conn)) return;
    for (const [u, b] of [...this.batchAcks]) {
      if (b.conn !== conn) continue;
      this.takeBatch(u, b);
      this.rejectBatch(b, this.closedByUser ? unreachable("client closed") : connectionLost(code, reason, url, []));
    }
    for (const [u, w] of [...this.acks]) {
      if (w.conn !== conn) continue;
      this.takeAck(u, w);
      w.reject(this.closedByUser ? unreachable("client closed") : connectionLost(code, reason, url, []));
    }
    for (const [u, p] of [...this.pending]) {
      if (p.conn !== conn) continue;
      this.unbind(p);
      if (p.frame !== undefined && p.sends < 2 && !this.closedByUser) continue; // held
      this.take(u);
      p.reject(this.closedByUser ? unreachable("client closed", p.names) : connectionLost(code, reason, url, p.names));
    }
  }

  private connectionUp(conn: Connection, url: string, previousUrl: string | undefined): void {
    this.currentNodeId = undefined;
    if (previousUrl !== undefined && urlKey(previousUrl) !== urlKey(url)) {
      log.info(`failed over from ${previousUrl} to ${url}`);
      for (const h of [...this.failoverHandlers]) {
        try {
          h({ from: previousUrl, to: url });
        } catch (err) {
          log.warn("failover handler threw", err);
        }
      }
    }
    // Subscriptions first, so that pushes caused by the held requests find them.
    for (const r of [...this.resumables]) {
      try {
        r.resume();
      } catch (err) {
        log.warn("resuming a subscription threw", err);
      }
    }
    for (const [u, p] of [...this.pending]) {
      if (p.conn === null && p.frame !== undefined && conn.open) this.resend(u, p, conn);
    }
    if (this.discoveryTimer !== undefined) void this.discover();
  }

  /** The link ended for good: everything pending fails, every resumable ends. */
  private ended(code: number, reason: string): void {
    this.endInfo = { code, reason };
    this.stopDiscovery();
    if (this.deadlineTimer !== undefined) {
      clearTimeout(this.deadlineTimer);
      this.deadlineTimer = undefined;
      this.deadlineTimerAt = Infinity;
    }
    const all = [...this.pending.values()];
    const acks = [...this.acks.values()];
    const batches = [...this.batchAcks.values()];
    this.pending.clear();
    this.acks.clear();
    this.batchAcks.clear();
    this.batched = this.openBatch?.waiters.length ?? 0; // the open batch rejects when it is sent
    this.perConn.clear();
    const why = this.closedByUser ? "client closed" : `connection lost${reason ? `: ${reason}` : ""}`;
    for (const p of all) p.reject(this.closedByUser ? unreachable(why, p.names) : connectionLost(code, reason, undefined, p.names));
    for (const w of acks) w.reject(this.closedByUser ? unreachable(why) : connectionLost(code, reason, undefined, []));
    for (const b of batches) this.rejectBatch(b, this.closedByUser ? unreachable(why) : connectionLost(code, reason, undefined, []));
    const err = this.closedByUser ? undefined : connectionLost(code, reason, undefined, []);
    for (const r of [...this.resumables]) {
      try {
        r.end(err);
      } catch (e) {
        log.warn("ending a subscription threw", e);
      }
    }
    this.resumables.clear();
    this.routes.clear();
    this.held = [];
  }

  // -------------------------------------------------------------------------------------------
  // Pushes
  // -------------------------------------------------------------------------------------------

  private dispatchPush(frame: PushFrame): void {
    for (const h of this.pushHandlers) {
      try {
        h(frame);
      } catch (err) {
        log.warn("push handler threw", err);
      }
    }
    const id = pushId(frame);
    if (id === undefined) return;
    const route = this.routes.get(pushKind(frame))?.get(id);
    if (route !== undefined) {
      try {
        route(frame);
      } catch (err) {
        log.warn("subscription handler threw", err);
      }
      return;
    }
    // The reply that names this subscription may still be on its way (or its owner is gone):
    // hold a bounded number of such pushes for a route registered soon.
    this.held.push(frame);
    if (this.held.length > MAX_HELD_PUSHES) this.held.shift();
  }

  private addRoute(kind: PushKind, id: string, handler: (frame: PushFrame) => void): Unsubscribe {
    const key = `${kind}\n${id}`;
    let byId = this.routes.get(kind);
    if (byId === undefined) this.routes.set(kind, (byId = new Map()));
    byId.set(id, handler);
    if (this.held.length > 0) {
      const mine = this.held.filter((f) => pushKey(f) === key);
      if (mine.length > 0) {
        this.held = this.held.filter((f) => pushKey(f) !== key);
        for (const f of mine) handler(f);
      }
    }
    return () => {
      if (byId.get(id) === handler) byId.delete(id);
    };
  }

  // -------------------------------------------------------------------------------------------
  // Discovery
  // -------------------------------------------------------------------------------------------

  private startDiscovery(intervalMs: number): void {
    this.discoveryTimer = setInterval(() => void this.discover(), intervalMs);
    refTimer(this.discoveryTimer, false);
    void this.discover();
  }

  private stopDiscovery(): void {
    if (this.discoveryTimer !== undefined) clearInterval(this.discoveryTimer);
    this.discoveryTimer = undefined;
  }

  /** Refreshes the known URLs from `cluster_map` (one refresh at a time; failures are ignored). */
  private async discover(): Promise<void> {
    const conn = this.link.connection;
    if (this.discovering || conn === null || this.pool === undefined) return;
    this.discovering = true;
    try {
      const map = await this.call("cluster_map", [], { timeout_ms: DISCOVERY_TIMEOUT_MS });
      const nodes = (map as { nodes?: unknown } | null)?.nodes;
      if (!Array.isArray(nodes)) return;
      const urls: unknown[] = [];
      const here = this.link.url !== undefined ? urlKey(this.link.url) : undefined;
      for (const n of nodes as Array<{ node_id?: unknown; urls?: unknown } | null>) {
        if (n === null || typeof n !== "object" || !Array.isArray(n.urls)) continue;
        urls.push(...n.urls);
        if (conn === this.link.connection && typeof n.node_id === "string" && n.urls.some((u) => typeof u === "string" && urlKey(u) === here)) {
          this.currentNodeId = n.node_id;
        }
      }
      const { added, removed } = this.pool.setDiscovered(urls);
      if (added.length > 0 || removed.length > 0) log.debug(`cluster URLs: +${added.join(",")} -${removed.join(",")}`);
    } catch (e) {
      log.debug(`cluster_map refresh failed: ${(e as Error).message}`);
    } finally {
      this.discovering = false;
    }
  }

  // -------------------------------------------------------------------------------------------
  // The helpers' view
  // -------------------------------------------------------------------------------------------

  private makeCore(): ClientCore {
    const self = this;
    const callOpts = (o: CoreCallOptions): CallOptions => o;
    return {
      call: (fun, args, options = {}) => this.call(fun, args, callOpts(options)),
      callThen: <T>(fun: string, args: unknown[], options: CoreCallOptions, onResult: (r: unknown) => T) => {
        try {
          return this.startCall(fun, args, callOpts(options), onResult) as Promise<T>;
        } catch (e) {
          return Promise.reject(e);
        }
      },
      pubsub: (frame, idempotent) => {
        const f = { ...frame, u: this.nextId() } as OutFrame;
        // A publish of just topic and payload has the fixed shape encodePlainPublish writes.
        const plain = frame.role === "pubsub-publish" && frame.message.headers === undefined && frame.message.message_id === undefined;
        return this.send(f, this.timeoutMs, [], undefined, undefined, plain, idempotent, undefined) as Promise<PubsubAck>;
      },
      route: (kind, id, handler) => this.addRoute(kind, id, handler),
      addResumable: (r) => {
        this.resumables.add(r);
        return () => {
          this.resumables.delete(r);
        };
      },
      get connected() {
        return self.link.connection !== null;
      },
      get closed() {
        return self.closedByUser || self.endInfo !== null;
      },
      uniqueId: (prefix) => `${prefix}-${this.nonce}-${(++this.seq).toString(36)}`,
    };
  }
}


function encodeOut(frame: OutFrame, plain: boolean, timeoutMs: number): Uint8Array {
  if (plain && frame.role === "rpc") {
    const cmd = frame.cmds[0]!;
    return encodeCallRequest(frame.u, cmd.name, cmd.fun, cmd.args as unknown[], timeoutMs);
  }
  if (frame.role === "pubsub-publish") return plain ? encodePlainPublish(frame.u, frame.message.topic, frame.message.payload) : encodePublish(frame);
  return encodeFrame(frame, "msgpack");
}

/** "Node shutting down" (PROTOCOL: a node that stops answers new requests with this). */
function isShutdown(err: MpregError): boolean {
  return err.code === ErrorCode.UNREACHABLE && err.details.reason === "shutdown";
}

/** The route kind of a push: a notification batch goes where the subscription's notifications go. */
function pushKind(frame: PushFrame): PushKind {
  return (frame.role === "pubsub-notification-batch" ? "pubsub-notification" : frame.role) as PushKind;
}

/** The subscription (or watch) id a push belongs to. */
function pushId(frame: PushFrame): string | undefined {
  switch (frame.role) {
    case "pubsub-notification-batch":
    case "pubsub-notification":
    case "queue-delivery":
      return frame.subscription_id;
    case "kv-event":
      return frame.watch_id;
    default:
      return undefined;
  }
}

function pushKey(frame: PushFrame): string | undefined {
  switch (frame.role) {
    case "pubsub-notification":
    case "pubsub-notification-batch":
      return `pubsub-notification\n${frame.subscription_id}`;
    case "queue-delivery":
      return `${frame.role}\n${frame.subscription_id}`;
    case "kv-event":
      return `kv-event\n${frame.watch_id}`;
    default:
      return undefined;
  }
}

/** Node timers can stop holding the process open; browser timer ids cannot (and need not). */
function refTimer(timer: ReturnType<typeof setTimeout> | ReturnType<typeof setInterval> | undefined, ref: boolean): void {
  const t = timer as { ref?: () => void; unref?: () => void } | undefined;
  if (ref) t?.ref?.();
  else t?.unref?.();
}

/** Settles a request with its whole reply (or `onResult` of it). */
function settle(p: Pending, value: unknown): void {
  if (p.onResult === undefined) return p.resolve(value);
  try {
    p.resolve(p.onResult(value));
  } catch (e) {
    p.reject(isMpregError(e) ? e : MpregError.invalid(String(e)));
  }
}

/** Settles a `call`: its single command's result, or 1002 when the reply lacks it. */
function settleCall(p: Pending, reply: RpcResponse): void {
  const name = p.names[0]!;
  const r = reply.r;
  if (r === null || !hasOwn.call(r, name)) p.reject(noResult(p.callFun!));
  else settle(p, r[name]);
}

function noResult(fun: string): MpregError {
  return new MpregError(ErrorCode.INVALID_REQUEST, `reply to ${fun} carries no result`, { reason: "reply without result", fun });
}

function unreachable(reason: string, names: string[] = []): MpregError {
  return new MpregError(ErrorCode.UNREACHABLE, reason, names.length > 0 ? { reason, commands: names } : { reason });
}

/** The error of a request whose connection was lost before its reply. */
function connectionLost(code: number, closeReason: string, url: string | undefined, names: string[]): MpregError {
  const where = url !== undefined ? ` to ${url}` : "";
  const details: Record<string, unknown> = { reason: "connection lost", close_code: code, close_reason: closeReason };
  if (url !== undefined) details.url = url;
  if (names.length > 0) details.commands = names;
  return new MpregError(ErrorCode.UNREACHABLE, `connection${where} lost (${code}${closeReason ? ` ${closeReason}` : ""})`, details);
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
