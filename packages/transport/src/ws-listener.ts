import { timingSafeEqual } from "node:crypto";
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { MpregError, createLogger } from "@mpreg/envelope";
import { WebSocketServer, type WebSocket } from "ws";
import { CloseCode, type Connection } from "./connection.js";
import { WsConnection, type WsConnectionLimits } from "./ws-connection.js";

const log = createLogger("transport");

export const DEFAULT_MAX_FRAME_BYTES = 20 * 1024 * 1024;
export const DEFAULT_PING_INTERVAL_MS = 30_000;
export const DEFAULT_MAX_CONNECTIONS = 10_000;

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
  /** Plain HTTP requests on the same port (e.g. monitoring). Default: 426 Upgrade Required. */
  onHttpRequest?: (req: IncomingMessage, res: ServerResponse) => void;
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
}

/** The bound address: `url` is `ws://HOST:PORT` with the real port. */
export interface ListenAddress {
  host: string;
  port: number;
  url: string;
}

export type ConnectionHandler = (conn: Connection, info: UpgradeInfo) => void;

/**
 * A WebSocket listener on a node `http.Server`. Each accepted socket becomes a `Connection`
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
  /** The underlying HTTP server (shared port for HTTP endpoints). */
  readonly httpServer: http.Server;
  /** Stops accepting, closes every connection with 1001 and resolves when all are closed. */
  close(): Promise<void>;
}

/** Creates a WebSocket listener; call `listen()` to bind it. */
export function createWsListener(options: WsListenerOptions = {}): WsListener {
  return new WsListenerImpl(options);
}

class WsListenerImpl implements WsListener {
  readonly httpServer: http.Server;
  private readonly wss: WebSocketServer;
  private readonly conns = new Set<WsConnection>();
  private readonly tokens: Buffer[] | null;
  private readonly opts: WsListenerOptions;
  private handler: ConnectionHandler | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private bound: ListenAddress | null = null;
  private closing: Promise<void> | null = null;

  constructor(opts: WsListenerOptions) {
    this.opts = opts;
    const maxFrame = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (!(Number.isInteger(maxFrame) && maxFrame > 0)) {
      throw MpregError.invalid("maxFrameBytes must be a positive integer", "maxFrameBytes");
    }
    this.tokens = opts.authTokens && opts.authTokens.length > 0 ? opts.authTokens.map((t) => Buffer.from(t)) : null;
    // permessage-deflate stays off: it would make ws write asynchronously (no coalescing) and
    // costs CPU on small frames.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: maxFrame, perMessageDeflate: false });
    this.httpServer = http.createServer(
      opts.onHttpRequest ??
        ((_req, res) => {
          res.writeHead(426, { "content-type": "text/plain", connection: "close" });
          res.end("WebSocket upgrade required\n");
        }),
    );
    this.httpServer.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.handleUpgrade(req, socket, head),
    );
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
        this.bound = { host: a.address, port: a.port, url: `ws://${h}:${a.port}` };
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
    if (this.closing !== null) return refuse(socket, 503, "Service Unavailable");
    if (this.conns.size >= (this.opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS)) {
      return refuse(socket, 503, "Service Unavailable");
    }
    const url = new URL(req.url ?? "/", "http://localhost");
    const info: UpgradeInfo = {
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      remoteAddress: req.socket.remoteAddress,
      authenticated: this.tokens === null || this.authorized(req, url),
    };
    if (!info.authenticated && this.opts.acceptWithoutToken?.(info) !== true) {
      log.debug("upgrade refused: missing or wrong token");
      return refuse(socket, 401, "Unauthorized");
    }
    this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      const conn = new WsConnection(ws, this.opts, req.socket.remoteAddress);
      if (this.closing !== null) {
        conn.close(CloseCode.GOING_AWAY, "server shutting down");
        return;
      }
      this.conns.add(conn);
      conn.onClose(() => this.conns.delete(conn));
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
      }
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

function refuse(socket: Duplex, status: number, text: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.once("finish", () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
