import {
  ErrorCode,
  MpregError,
  createLogger,
  decodeFrame,
  encodeFrame,
  encodeNotification,
  encodeNotificationBatch,
  encodePubsubAck,
  encodeRpcResult,
  isMpregError,
  isPeerRole,
  newTraceId,
  rpcErrorReply,
  traceIdFromTraceparent,
  type Encoding,
  type PeerHello,
  type RpcRequest,
  type RpcResponse,
} from "@mpreg/envelope";
import type { PubsubService } from "@mpreg/pubsub";
import { CancellationSource, type Executor } from "@mpreg/rpc";
import { InflightLimiter, type Connection, type UpgradeInfo } from "@mpreg/transport";
import type { ClientSession } from "./client-session.js";

// The client loop left apps/server but keeps its log scope: operators turn the ingress line
// (`rpc u=… trace=…`) up with `MPREG_DEBUG=server`, as docs/operations.md says.
const log = createLogger("server");

/** Above this many bytes buffered on a connection, pub/sub notifications wait in their queue. */
export const PUSH_HIGH_WATER_BYTES = 1024 * 1024;

/** Counters the gateway moves; a node's metrics object implements it (all optional to watch). */
export interface GatewayMetrics {
  connectionsOpened: number;
  framesIn: number;
  requests: number;
  countError(code: number): void;
  /** One finished `rpc` request: its function (`"(multi)"` for several), latency, code (0: ok). */
  observeRequest(fun: string, ms: number, code: number): void;
}

/** What a gateway plugs into. */
export interface ClientGatewayOptions {
  /** This node's id, named in the error a request gets while the node shuts down. */
  nodeId: string;
  /** Runs `rpc` requests (`@mpreg/rpc`); handlers get the request's session as `ctx`. */
  executor: Executor<ClientSession>;
  /** Whether calling `fun` needs the admin scope (`FunctionRegistry.isAdmin`). */
  isAdminFunction(fun: string): boolean;
  /** Takes `pubsub-*` frames and the connections' notification sinks. */
  pubsub: PubsubService;
  /** Requests in flight per connection; one more is refused with 1007. */
  maxInflightPerConnection: number;
  /** Whether a connection's credentials carry the admin scope (docs/security.md). */
  isAdminConnection(info: UpgradeInfo): boolean;
  /**
   * A connection opened with `peer-hello`: it is a peer link, not a client, from then on; the
   * fabric takes it (`Fabric.adopt`). The gateway reads none of its frames after this.
   */
  adoptPeer(conn: Connection, hello: PeerHello): void;
  /** A client connection closed: release what it owned besides pub/sub (queue consumers, …). */
  onClose?(connId: string): void;
  metrics?: GatewayMetrics;
  /** Bytes buffered on a connection above which notifications wait (default 1 MiB). */
  pushHighWaterBytes?: number;
}

const noMetrics: GatewayMetrics = { connectionsOpened: 0, framesIn: 0, requests: 0, countError() {}, observeRequest() {} };

/**
 * The client side of a node: every accepted connection becomes a {@link ClientSession}; its
 * frames are decoded and validated (1002 for a bad one, the connection kept), `rpc` requests are
 * admitted (shutdown 1005, admin scope 1010, in-flight bound 1007) and run by the executor, with
 * their replies written in the request's encoding; `pubsub-*` frames go to the pub/sub service;
 * a `peer-hello` hands the connection over to the fabric.
 */
export class ClientGateway {
  private readonly sessions = new Set<ClientSession>();
  private readonly metrics: GatewayMetrics;
  private readonly highWater: number;
  private draining = false;

  constructor(private readonly opts: ClientGatewayOptions) {
    this.metrics = opts.metrics ?? noMetrics;
    this.highWater = opts.pushHighWaterBytes ?? PUSH_HIGH_WATER_BYTES;
  }

  /** Client connections open now (peer links excluded). */
  get connectionCount(): number {
    return this.sessions.size;
  }

  /** Requests in flight over every client connection (the node's load). */
  inflight(): number {
    let n = 0;
    for (const s of this.sessions) n += s.limiter.inflight;
    return n;
  }

  /**
   * Graceful stop of the client side: from now on every new `rpc` request is refused with 1005
   * "node is shutting down"; the requests in flight get up to `graceMs` to finish, then the rest
   * are aborted with that error (and so is whatever listens on a connection's end), and their
   * replies are written before this resolves. Connections stay open (the listener closes them).
   */
  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    const deadline = Date.now() + graceMs;
    // Polled: in-flight counts live in each connection's limiter, with no event when they drop.
    while (this.inflight() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const shutdown = new MpregError(ErrorCode.UNREACHABLE, "node is shutting down", { reason: "shutdown", node_id: this.opts.nodeId });
    for (const s of this.sessions) {
      s.cancellation.abort(shutdown);
      s.cancel.abort(shutdown);
    }
    // Let the aborted requests write their replies before the connections close.
    await new Promise((r) => setImmediate(r));
  }

  /** Takes a connection the listener accepted. */
  accept(conn: Connection, info: UpgradeInfo): ClientSession {
    const session: ClientSession = {
      peerOnly: !info.authenticated,
      admin: this.opts.isAdminConnection(info),
      conn,
      limiter: new InflightLimiter(this.opts.maxInflightPerConnection),
      pushEncoding: "msgpack",
      cancel: new AbortController(),
      cancellation: new CancellationSource(),
      peer: false,
    };
    this.sessions.add(session);
    this.metrics.connectionsOpened++;
    this.opts.pubsub.attach(conn.id, {
      // Notifications wait in their subscription's bounded queue while the socket is backed up.
      canWrite: () => conn.open && (conn.bufferedAmount ?? 0) < this.highWater,
      write: (n) => this.send(session, n, session.pushEncoding, session.pushEncoding === "msgpack" ? () => encodeNotification(n) : undefined),
      // Subscriptions made with `batch: true` get a turn's notifications in one frame.
      writeBatch: (b) => this.send(session, b, session.pushEncoding, session.pushEncoding === "msgpack" ? () => encodeNotificationBatch(b) : undefined),
    });
    conn.onMessage((data, isBinary) => this.onFrame(session, data, isBinary ? "msgpack" : "json"));
    conn.onClose(() => {
      this.sessions.delete(session);
      this.opts.pubsub.closeOwner(conn.id);
      this.opts.onClose?.(conn.id);
      const gone = new MpregError(ErrorCode.UNREACHABLE, "connection closed", { reason: "connection closed" });
      session.cancellation.abort(gone);
      session.cancel.abort(gone);
    });
    return session;
  }

  /**
   * Writes `frame` to the session's connection (nothing if it closed). `encode` (optional) is a
   * faster encoder producing the same bytes as `encodeFrame(frame, encoding)`.
   */
  send(session: ClientSession, frame: object, encoding: Encoding = session.pushEncoding, encode?: () => Uint8Array): void {
    if (!session.conn.open) return;
    let data: Uint8Array | string;
    try {
      data = encode !== undefined ? encode() : encodeFrame(frame, encoding);
    } catch (e) {
      // A handler returned something the codec cannot carry (BigInt, a cycle): say so instead.
      const u = (frame as { u?: unknown }).u;
      const err = isMpregError(e) ? e : MpregError.invalid(String(e));
      const reply = rpcErrorReply(typeof u === "string" ? u : null, new MpregError(ErrorCode.EXECUTION_FAILED, `result cannot be encoded: ${err.message}`, { reason: "unencodable result" }));
      data = encodeFrame(reply, encoding);
    }
    try {
      session.conn.send(data);
    } catch (e) {
      log.debug(`send on ${session.conn.id} failed: ${(e as Error).message}`);
    }
  }

  private refuse(session: ClientSession, u: unknown, err: MpregError, encoding: Encoding): void {
    this.metrics.countError(err.code);
    this.send(session, rpcErrorReply(typeof u === "string" ? u : null, err), encoding);
  }

  private onFrame(session: ClientSession, data: Uint8Array | string, encoding: Encoding): void {
    if (session.peer) return; // a peer link: the fabric reads its frames
    session.pushEncoding = encoding;
    this.metrics.framesIn++;
    const decoded = decodeFrame(data, encoding);
    if (!decoded.ok) {
      this.refuse(session, decoded.u, decoded.error, encoding);
      return;
    }
    const frame = decoded.frame;
    if (session.peerOnly && frame.role !== "peer-hello") {
      // Let in without a client token for a peer handshake only: nothing else is processed.
      session.conn.close(4401, "a connection without a client token may only open a peer link");
      return;
    }
    switch (frame.role) {
      case "peer-hello":
        // A peer link is not a client: it is not counted as one and takes no pushes.
        session.peer = true;
        this.sessions.delete(session);
        this.opts.adoptPeer(session.conn, frame);
        return;
      case "rpc":
        this.onRpc(session, frame, encoding);
        return;
      case "pubsub-publish":
      case "pubsub-publish-batch":
      case "pubsub-subscribe":
      case "pubsub-unsubscribe":
        this.opts.pubsub.handle(session.conn.id, frame, (ack) => {
          if (ack.error) this.metrics.countError(ack.error.code);
          this.send(session, ack, encoding, encoding === "msgpack" ? () => encodePubsubAck(ack) : undefined);
        });
        return;
      default: {
        const reason = isPeerRole(frame.role)
          ? `role ${frame.role} is only accepted on a peer link after the handshake`
          : `role ${frame.role} is not a request`;
        this.refuse(session, (frame as { u?: unknown }).u, MpregError.invalid(reason, "role"), encoding);
      }
    }
  }

  private onRpc(session: ClientSession, req: RpcRequest, encoding: Encoding): void {
    this.metrics.requests++;
    if (this.draining) {
      this.refuse(session, req.u, new MpregError(ErrorCode.UNREACHABLE, "node is shutting down", { reason: "shutdown", node_id: this.opts.nodeId }), encoding);
      return;
    }
    const denied = session.admin ? undefined : req.cmds.find((c) => this.opts.isAdminFunction(c.fun));
    if (denied !== undefined) {
      this.refuse(session, req.u, new MpregError(ErrorCode.UNAUTHORIZED, `${denied.fun} needs the admin scope`, { reason: "admin scope required", command: denied.name, fun: denied.fun }), encoding);
      return;
    }
    if (!session.limiter.tryAcquire()) {
      this.refuse(session, req.u, MpregError.overloaded(`too many requests in flight on this connection (limit ${session.limiter.limit})`, 100), encoding);
      return;
    }
    const u = req.u;
    // One trace id for the whole request, on every hop (docs/operations.md, Tracing).
    const trace_id = traceIdFromTraceparent(req.traceparent) ?? newTraceId();
    if (log.getLevel() <= log.levels.DEBUG) log.debug(`rpc u=${u} ${req.cmds.map((c) => c.fun).join(",")} trace=${trace_id}`);
    const started = performance.now();
    const fun = req.cmds.length === 1 ? req.cmds[0]!.fun : "(multi)";
    this.opts.executor
      .execute({
        cmds: req.cmds,
        request_id: u,
        trace_id,
        timeout_ms: req.timeout_ms,
        return_all: req.return_all,
        return_intermediate_results: req.return_intermediate_results,
        include_execution_summary: req.include_execution_summary,
        onProgress: req.stream_progress
          ? (ir) => this.send(session, { role: "rpc-progress", u, intermediate_result: ir }, session.pushEncoding)
          : undefined,
        ctx: session,
        cancellation: session.cancellation,
      })
      // The limiter's slot is released in both branches (a `.finally` cost one more promise per request).
      .then(
        (result) => {
          session.limiter.release();
          const reply: RpcResponse = { role: "rpc-response", u, r: result.r, error: null };
          if (result.intermediate_results) reply.intermediate_results = result.intermediate_results;
          if (result.execution_summary) reply.execution_summary = result.execution_summary;
          // The common reply goes through the template encoder (same bytes, fewer cycles).
          const plain = encoding === "msgpack" && reply.intermediate_results === undefined && reply.execution_summary === undefined;
          this.send(session, reply, encoding, plain ? () => encodeRpcResult(u, result.r) : undefined);
          this.metrics.observeRequest(fun, performance.now() - started, 0);
        },
        (e: unknown) => {
          session.limiter.release();
          const err = isMpregError(e)
            ? e
            : new MpregError(ErrorCode.EXECUTION_FAILED, String((e as Error)?.message ?? e), { reason: "internal error" });
          this.refuse(session, u, err, encoding);
          this.metrics.observeRequest(fun, performance.now() - started, err.code);
        },
      );
  }
}
