import { timingSafeEqual } from "node:crypto";
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import { MpregError, createLogger } from "@mpreg/envelope";
import { WebSocketServer, type WebSocket } from "ws";
import { addressKey } from "./address-key.js";
import { CloseCode, type Connection } from "./connection.js";
import { DEFAULT_MAX_TOTAL_BUFFERED_BYTES, OutboundBudget } from "./outbound-budget.js";
import { checkListenerTls } from "./tls.js";
import type { ListenerTlsOptions, PemInput } from "./tls-options.js";
import { DEFAULT_CLOSE_TIMEOUT_MS, DEFAULT_HIGH_WATER_MARK_BYTES, DEFAULT_MAX_BUFFERED_BYTES, WsConnection, type WsConnectionLimits } from "./ws-connection.js";

const log = createLogger("transport");

export const DEFAULT_MAX_FRAME_BYTES = 20 * 1024 * 1024;
export const DEFAULT_PING_INTERVAL_MS = 30_000;
export const DEFAULT_MAX_CONNECTIONS = 10_000;
export const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 64;
export const DEFAULT_FIRST_FRAME_TIMEOUT_MS = 10_000;
export const DEFAULT_PROBATION_TIMEOUT_MS = 2_000;
/** Default peer reservation: min(64, ⌊maxConnections / 10⌋). */
export const DEFAULT_RESERVED_PEER_SLOTS = 64;

/** Options of `createWsListener`. */
export interface WsListenerOptions extends WsConnectionLimits {
  /** Largest inbound frame; a larger one closes that connection with 1009. Default 20 MiB. */
  maxFrameBytes?: number;
  /**
   * Keepalive ping period; a connection that leaves two pings in a row unanswered is
   * terminated. 0 disables pings. Default 30 000.
   */
  pingIntervalMs?: number;
  /**
   * When set (non-empty), the upgrade must carry `Authorization: Bearer <token>` or
   * `?token=<token>` with one of these tokens; otherwise it gets HTTP 401.
   */
  authTokens?: readonly string[];
  /**
   * With `authTokens`: an upgrade without a valid token is still accepted when this returns
   * true for it (the connection is then the caller's to restrict, e.g. to a peer handshake).
   * The node uses it for peer links, which authenticate by the cluster secret instead.
   */
  acceptWithoutToken?: (info: UpgradeInfo) => boolean;
  /** Upgrades past this many open connections get HTTP 503. Default 10 000. */
  maxConnections?: number;
  /**
   * Open connections per remote address at most (IPv6: per /64 prefix; IPv4-mapped IPv6 as
   * IPv4); past it the upgrade gets HTTP 429. 0 disables. Default 64.
   */
  maxConnectionsPerAddress?: number;
  /**
   * A connection that sends nothing (no data frame, no ping) this long after its upgrade is
   * closed with 4408 "first frame timeout"; the HTTP server's `headersTimeout` is set to it
   * too (an upgrade request that dribbles its headers). 0 disables. Default 10 000.
   */
  firstFrameTimeoutMs?: number;
  /**
   * Connection slots only peers may take: connections not marked with `markPeer` (clients, and
   * every connection before its first frame) may hold at most `maxConnections -
   * reservedPeerSlots`. An upgrade past that is admitted on probation: its first data frame
   * must make the layer above call `markPeer` (synchronously, in its message handler), or it is
   * closed with 1013 "client connection limit"; on probation the first-frame timeout is
   * `probationTimeoutMs`. Default min(64, ⌊maxConnections / 10⌋).
   */
  reservedPeerSlots?: number;
  /** First-frame timeout of a connection on probation for a reserved peer slot. Default 2000. */
  probationTimeoutMs?: number;
  /**
   * Node-wide budget for unsent outbound bytes across all connections (see `OutboundBudget`):
   * past it the connections holding the most are terminated, reported as 1008 "slow
   * consumer". 0 disables. Default 256 MiB. Ignored when `outboundBudget` is given.
   */
  maxTotalBufferedBytes?: number;
  /** Plain HTTP requests on the same port (e.g. monitoring). Default: 426 Upgrade Required. */
  onHttpRequest?: (req: IncomingMessage, res: ServerResponse) => void;
  /**
   * Serve `wss://` (and HTTPS for `onHttpRequest`) with this certificate and key; with
   * `requestClientCert`, every connection must present a certificate signed by `ca` (mutual
   * TLS). Validated when the listener is created (1002 naming `tls.cert`, `tls.key`, `tls.ca`).
   * Default none: plain `ws://`.
   */
  tls?: ListenerTlsOptions;
}

/** What the HTTP upgrade request said, handed to the connection handler. */
export interface UpgradeInfo {
  /** Request path without the query string, e.g. `/`. */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  remoteAddress: string | undefined;
  /** True when no tokens are configured or the upgrade carried a valid one. */
  authenticated: boolean;
  /**
   * With `tls.requestClientCert`: the client certificate the TLS handshake verified against the
   * CA (its subject as `CN=…, O=…` and its SHA-256 fingerprint). Absent otherwise.
   */
  clientCertificate?: { subject: string; fingerprint256: string };
}

/** The bound address: `url` is `ws://HOST:PORT` (`wss://` with TLS) with the real port. */
export interface ListenAddress {
  host: string;
  port: number;
  url: string;
}

export type ConnectionHandler = (conn: Connection, info: UpgradeInfo) => void;

/**
 * A WebSocket listener on a node `http.Server` (an `https.Server` with TLS). Each accepted socket becomes a `Connection`
 * handed to the `onConnection` handler. Created by `createWsListener`.
 */
export interface WsListener {
  /** Binds (port 0 picks a free port) and resolves with the bound address. */
  listen(opts?: { host?: string; port?: number }): Promise<ListenAddress>;
  /** Sets the handler for new connections (one handler; a later call replaces it). */
  onConnection(handler: ConnectionHandler): void;
  /** The bound address once listening, else null. */
  readonly address: ListenAddress | null;
  /** Open connections. */
  readonly connections: ReadonlySet<Connection>;
  /** The underlying HTTP server (shared port for HTTP endpoints); an `https.Server` with `tls`. */
  readonly httpServer: http.Server | https.Server;
  /** Stops accepting, closes every connection with 1001 and resolves when all are closed. */
  close(): Promise<void>;
  /**
   * Marks `conn` (one of this listener's) as a peer link: it no longer counts against the
   * client share and may hold a reserved peer slot. Call it from the message handler of the
   * frame that shows it is a peer (e.g. `peer-hello`), before the handshake completes; a link
   * whose handshake then fails is closed by the caller as usual.
   */
  markPeer(conn: Connection): void;
  /** The node-wide outbound budget, to share with dialed connections (`connectWs`); null when off. */
  readonly outboundBudget: OutboundBudget | null;
  /** Counters for metrics. */
  readonly stats: ListenerStats;
}

/** Counters of a listener (refusals by reason, limit-triggered closes), for `/metrics`. */
export interface ListenerStats {
  /** Upgrades refused with 503 (`maxConnections` reached, or shutting down). */
  refusedFull: number;
  /** Upgrades refused with 429 (`maxConnectionsPerAddress`). */
  refusedPerAddress: number;
  /** Upgrades refused with 401 (tokens). */
  refusedUnauthorized: number;
  /** Connections closed with 4408 (nothing sent within the first-frame timeout). */
  firstFrameTimeouts: number;
  /** Connections on probation closed with 1013 (not a peer, client share full). */
  probationRefused: number;
  /** Connections closed as slow consumers (1008), by their own limit or the node-wide budget. */
  slowConsumers: number;
  /**
   * TLS handshakes that failed (a client that does not trust our certificate, one without a
   * valid client certificate under `requestClientCert`, plain HTTP on a TLS port, timeouts).
   */
  tlsHandshakeFailures: number;
}

/** Limits after defaults and validation. */
interface ResolvedLimits {
  maxConnections: number;
  perAddress: number;
  firstFrameMs: number;
  probationMs: number;
  reservedPeers: number;
}

function intOption(opts: WsListenerOptions, name: keyof WsListenerOptions, dflt: number, min: number): number {
  const v = opts[name] ?? dflt;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
    throw MpregError.invalid(`${name} must be an integer >= ${min}, got ${String(v)}`, name);
  }
  return v;
}

/** Validates the listener's options once, with errors that name the option (1002). */
function resolveLimits(opts: WsListenerOptions): ResolvedLimits {
  intOption(opts, "maxFrameBytes", DEFAULT_MAX_FRAME_BYTES, 1);
  intOption(opts, "pingIntervalMs", DEFAULT_PING_INTERVAL_MS, 0);
  intOption(opts, "highWaterMarkBytes", DEFAULT_HIGH_WATER_MARK_BYTES, 0);
  intOption(opts, "maxBufferedBytes", DEFAULT_MAX_BUFFERED_BYTES, 1);
  intOption(opts, "closeTimeoutMs", DEFAULT_CLOSE_TIMEOUT_MS, 0);
  intOption(opts, "maxTotalBufferedBytes", DEFAULT_MAX_TOTAL_BUFFERED_BYTES, 0);
  const maxConnections = intOption(opts, "maxConnections", DEFAULT_MAX_CONNECTIONS, 1);
  const reservedPeers = intOption(opts, "reservedPeerSlots", Math.min(DEFAULT_RESERVED_PEER_SLOTS, Math.floor(maxConnections / 10)), 0);
  if (reservedPeers >= maxConnections) {
    throw MpregError.invalid(`reservedPeerSlots (${reservedPeers}) must be below maxConnections (${maxConnections})`, "reservedPeerSlots");
  }
  return {
    maxConnections,
    reservedPeers,
    perAddress: intOption(opts, "maxConnectionsPerAddress", DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, 0),
    firstFrameMs: intOption(opts, "firstFrameTimeoutMs", DEFAULT_FIRST_FRAME_TIMEOUT_MS, 0),
    probationMs: intOption(opts, "probationTimeoutMs", DEFAULT_PROBATION_TIMEOUT_MS, 1),
  };
}

/** What the listener keeps per accepted connection. */
interface Slot {
  address: string | null;
  peer: boolean;
  probation: boolean;
  timer: ReturnType<typeof setTimeout> | null;
}

/** Creates a WebSocket listener; call `listen()` to bind it. */
export function createWsListener(options: WsListenerOptions = {}): WsListener {
  return new WsListenerImpl(options);
}

class WsListenerImpl implements WsListener {
  readonly httpServer: http.Server | https.Server;
  readonly outboundBudget: OutboundBudget | null;
  readonly stats: ListenerStats = {
    refusedFull: 0,
    refusedPerAddress: 0,
    refusedUnauthorized: 0,
    firstFrameTimeouts: 0,
    probationRefused: 0,
    slowConsumers: 0,
    tlsHandshakeFailures: 0,
  };
  private readonly wss: WebSocketServer;
  private readonly conns = new Set<WsConnection>();
  private readonly slots = new Map<Connection, Slot>();
  private readonly perAddress = new Map<string, number>();
  private peerCount = 0;
  private readonly limits: ResolvedLimits;
  private readonly connOptions: WsConnectionLimits;
  private readonly tokens: Buffer[] | null;
  private readonly opts: WsListenerOptions;
  private readonly scheme: "ws" | "wss";
  private handler: ConnectionHandler | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  /** Connections whose first request's headers are still awaited (see `guardHeaders`). */
  private readonly headerTimers = new Map<Socket, ReturnType<typeof setTimeout>>();
  private bound: ListenAddress | null = null;
  private closing: Promise<void> | null = null;

  constructor(opts: WsListenerOptions) {
    this.opts = opts;
    this.limits = resolveLimits(opts);
    const tls = opts.tls === undefined ? undefined : checkListenerTls(opts.tls, "tls");
    this.scheme = tls === undefined ? "ws" : "wss";
    const maxFrame = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    const totalBuffered = opts.maxTotalBufferedBytes ?? DEFAULT_MAX_TOTAL_BUFFERED_BYTES;
    this.outboundBudget = opts.outboundBudget ?? (totalBuffered > 0 ? new OutboundBudget(totalBuffered) : null);
    this.connOptions = { ...opts, ...(this.outboundBudget ? { outboundBudget: this.outboundBudget } : {}) };
    this.tokens = opts.authTokens && opts.authTokens.length > 0 ? opts.authTokens.map((t) => Buffer.from(t)) : null;
    // permessage-deflate stays off: it would make ws write asynchronously (no coalescing) and
    // costs CPU on small frames.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: maxFrame, perMessageDeflate: false });
    const firstFrameMs = this.limits.firstFrameMs;
    // An upgrade request that dribbles its headers is the same abuse one step before the first
    // frame: the same timeout applies to the headers. Node checks `headersTimeout` on a timer
    // that runs whether or not a connection is open (at 1 s that woke every idle node once a
    // second), so the first request of a connection is bounded by a timer of its own
    // (`guardHeaders`); Node's check, at its default period, still covers later requests.
    const serverOptions: http.ServerOptions = firstFrameMs > 0 ? { headersTimeout: firstFrameMs, requestTimeout: Math.max(300_000, firstFrameMs) } : {};
    const onRequest =
      opts.onHttpRequest ??
      ((_req: IncomingMessage, res: ServerResponse) => {
        res.writeHead(426, { "content-type": "text/plain", connection: "close" });
        res.end("WebSocket upgrade required\n");
      });
    if (tls === undefined) {
      this.httpServer = http.createServer(serverOptions, onRequest);
    } else {
      const mutual = tls.requestClientCert === true;
      this.httpServer = https.createServer(
        {
          ...serverOptions,
          cert: buf(tls.cert),
          key: buf(tls.key),
          ...(tls.ca === undefined ? {} : { ca: buf(tls.ca) }),
          // Mutual TLS: a connection without a certificate signed by the CA fails the handshake.
          requestCert: mutual,
          rejectUnauthorized: mutual,
          // A TLS handshake that never completes holds a socket like dribbled headers do.
          ...(firstFrameMs > 0 ? { handshakeTimeout: firstFrameMs } : {}),
        },
        onRequest,
      );
      this.httpServer.on("tlsClientError", (err: Error) => {
        this.stats.tlsHandshakeFailures++;
        log.debug(`TLS handshake failed: ${err.message}`);
      });
    }
    if (firstFrameMs > 0) {
      // Over TLS the handshake has its own timeout; the headers' timer starts after it.
      this.httpServer.on(tls === undefined ? "connection" : "secureConnection", (socket: Socket) => this.guardHeaders(socket, firstFrameMs));
      this.httpServer.on("request", (req: IncomingMessage) => this.headersArrived(req.socket));
    }
    this.httpServer.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.headersArrived(req.socket);
      this.handleUpgrade(req, socket, head);
    });
  }

  /** Destroys a connection whose first request's headers are not complete within `ms`. */
  private guardHeaders(socket: Socket, ms: number): void {
    const timer = setTimeout(() => {
      this.headerTimers.delete(socket);
      socket.destroy();
    }, ms);
    timer.unref?.();
    this.headerTimers.set(socket, timer);
    socket.once("close", () => this.headersArrived(socket));
  }

  private headersArrived(socket: Socket): void {
    const timer = this.headerTimers.get(socket);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.headerTimers.delete(socket);
  }

  markPeer(conn: Connection): void {
    const slot = this.slots.get(conn);
    if (!slot || slot.peer) return;
    slot.peer = true;
    this.peerCount++;
  }

  get address(): ListenAddress | null {
    return this.bound;
  }

  get connections(): ReadonlySet<Connection> {
    return this.conns;
  }

  onConnection(handler: ConnectionHandler): void {
    this.handler = handler;
  }

  listen(opts: { host?: string; port?: number } = {}): Promise<ListenAddress> {
    const host = opts.host ?? "127.0.0.1";
    const port = opts.port ?? 0;
    if (this.bound !== null) return Promise.reject(MpregError.invalid("listener already listening"));
    return new Promise<ListenAddress>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.httpServer.once("error", onError);
      this.httpServer.listen(port, host, () => {
        this.httpServer.off("error", onError);
        const a = this.httpServer.address() as AddressInfo;
        const h = a.family === "IPv6" || a.address.includes(":") ? `[${a.address}]` : a.address;
        this.bound = { host: a.address, port: a.port, url: `${this.scheme}://${h}:${a.port}` };
        this.startPings();
        log.debug(`listening on ${this.bound.url}`);
        resolve(this.bound);
      });
    });
  }

  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closing = (async () => {
      if (this.pingTimer !== null) clearInterval(this.pingTimer);
      const serverClosed = new Promise<void>((resolve) => {
        if (!this.httpServer.listening) return resolve();
        this.httpServer.close(() => resolve());
        this.httpServer.closeIdleConnections();
      });
      const all = [...this.conns].map(
        (c) =>
          new Promise<void>((resolve) => {
            c.onClose(() => resolve());
            c.close(CloseCode.GOING_AWAY, "server shutting down");
          }),
      );
      await Promise.all(all);
      await serverClosed;
      this.wss.close();
    })();
    return this.closing;
  }

  private startPings(): void {
    const every = this.opts.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;
    if (every <= 0) return;
    this.pingTimer = setInterval(() => {
      for (const c of this.conns) c.pingTick();
    }, every);
    this.pingTimer.unref?.();
  }

  private handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => socket.destroy());
    const lim = this.limits;
    if (this.closing !== null || this.conns.size >= lim.maxConnections) {
      this.stats.refusedFull++;
      return refuse(socket, 503, "Service Unavailable");
    }
    const address = addressKey(req.socket.remoteAddress);
    if (lim.perAddress > 0 && address !== null && (this.perAddress.get(address) ?? 0) >= lim.perAddress) {
      this.stats.refusedPerAddress++;
      log.debug(`upgrade refused: ${lim.perAddress} connections from ${address} already`);
      return refuse(socket, 429, "Too Many Requests");
    }
    const url = new URL(req.url ?? "/", "http://localhost");
    const info: UpgradeInfo = {
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      remoteAddress: req.socket.remoteAddress,
      authenticated: this.tokens === null || this.authorized(req, url),
    };
    if (this.opts.tls?.requestClientCert === true) {
      // The handshake already refused anything the CA did not sign: this is a verified certificate.
      const cert = (req.socket as TLSSocket).getPeerCertificate?.();
      if (cert && cert.fingerprint256) {
        const subject = Object.entries(cert.subject ?? {}).map(([k, v]) => `${k}=${String(v)}`).join(", ");
        info.clientCertificate = { subject, fingerprint256: cert.fingerprint256 };
      }
    }
    if (!info.authenticated && this.opts.acceptWithoutToken?.(info) !== true) {
      this.stats.refusedUnauthorized++;
      log.debug("upgrade refused: missing or wrong token");
      return refuse(socket, 401, "Unauthorized");
    }
    this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      const conn = new WsConnection(ws, this.connOptions, req.socket.remoteAddress);
      if (this.closing !== null) {
        conn.close(CloseCode.GOING_AWAY, "server shutting down");
        return;
      }
      // Re-checked here: other upgrades may have completed since the request arrived.
      if (this.conns.size >= lim.maxConnections) {
        this.stats.refusedFull++;
        conn.close(1013, "connection limit");
        return;
      }
      // Clients (and every connection before its first frame) may not take a reserved peer slot.
      const probation = this.conns.size - this.peerCount >= lim.maxConnections - lim.reservedPeers;
      this.admit(conn, address, probation);
      const h = this.handler;
      if (h === null) {
        conn.close(1013, "no connection handler");
        return;
      }
      try {
        h(conn, info);
      } catch (err) {
        log.warn("connection handler threw", err);
        conn.close(CloseCode.INTERNAL_ERROR, "internal error");
        return;
      }
      // Registered after the layer above's handler, so it runs after it for the first frame.
      if (probation) {
        const off = conn.onMessage(() => {
          off();
          const slot = this.slots.get(conn);
          if (slot && !slot.peer) {
            this.stats.probationRefused++;
            conn.close(1013, "client connection limit");
          }
        });
      }
    });
  }

  /** Books the connection's slot: its address, its class and its first-frame timer. */
  private admit(conn: WsConnection, address: string | null, probation: boolean): void {
    const slot: Slot = { address, peer: false, probation, timer: null };
    this.conns.add(conn);
    this.slots.set(conn, slot);
    if (address !== null) this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    const wait = probation ? this.limits.probationMs : this.limits.firstFrameMs;
    if (wait > 0) {
      slot.timer = setTimeout(() => {
        slot.timer = null;
        // On probation only a peer's first frame counts (a client's first frame closed it already).
        if (!conn.open || (probation ? slot.peer : conn.heardFromPeer)) return;
        this.stats.firstFrameTimeouts++;
        conn.close(CLOSE_FIRST_FRAME_TIMEOUT, "first frame timeout");
      }, wait);
      slot.timer.unref?.();
    }
    conn.onClose((code, reason) => {
      this.conns.delete(conn);
      this.slots.delete(conn);
      if (slot.timer !== null) clearTimeout(slot.timer);
      if (slot.peer) this.peerCount--;
      if (address !== null) {
        const n = (this.perAddress.get(address) ?? 1) - 1;
        if (n <= 0) this.perAddress.delete(address);
        else this.perAddress.set(address, n);
      }
      if (code === CloseCode.POLICY_VIOLATION && reason === "slow consumer") this.stats.slowConsumers++;
    });
  }

  private authorized(req: IncomingMessage, url: URL): boolean {
    const auth = req.headers.authorization;
    if (typeof auth === "string" && auth.startsWith("Bearer ") && this.tokenOk(auth.slice(7).trim())) return true;
    const q = url.searchParams.get("token");
    return q !== null && this.tokenOk(q);
  }

  private tokenOk(candidate: string): boolean {
    const c = Buffer.from(candidate);
    let ok = false;
    // Compare against every token in constant time per token (no early exit on a match).
    for (const t of this.tokens!) {
      if (t.length === c.length && timingSafeEqual(t, c)) ok = true;
    }
    return ok;
  }
}

/** Close code of a connection that sent nothing within `firstFrameTimeoutMs` (like HTTP 408). */
export const CLOSE_FIRST_FRAME_TIMEOUT = 4408;

function buf(v: PemInput): string | Buffer {
  return typeof v === "string" ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function refuse(socket: Duplex, status: number, text: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.once("finish", () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
