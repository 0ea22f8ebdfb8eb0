import { ErrorCode, MpregError, createLogger, newId } from "@mpreg/envelope";
import WebSocket from "ws";
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions, type RandomSource } from "./backoff.js";
import { BrowserWsConnection, type WhatwgWebSocketCtor } from "./browser-connection.js";
import {
  CloseCode,
  checkClose,
  connectionClosedError,
  HandlerList,
  type Connection,
  type FrameData,
  type MessageHandler,
  type Unsubscribe,
} from "./connection.js";
import { checkClientTlsShape, tlsDialError, type ClientTlsOptions, type PemInput } from "./tls-options.js";
import { DEFAULT_MAX_BUFFERED_BYTES, WsConnection, type WsConnectionLimits } from "./ws-connection.js";

const log = createLogger("transport");

/** Options of `connectWs`. */
export interface ConnectOptions extends WsConnectionLimits {
  /** Sent as `Authorization: Bearer <token>` in Node, as `?token=<token>` in browsers. */
  token?: string;
  /**
   * Reconnect after an unexpected drop (default on, infinite attempts). `false` disables it.
   * Only drops of an established connection are retried: a failing first connect rejects.
   */
  reconnect?: boolean | ReconnectOptions;
  /** Random source for the backoff jitter (tests inject a seeded one). Default Math.random. */
  random?: RandomSource;
  /** A dial that has not opened after this long fails. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** Node only: keepalive ping period (two unanswered pings drop the link). 0 disables. Default 30 000. */
  pingIntervalMs?: number;
  /** Node only: largest inbound frame (larger closes with 1009). Default 20 MiB. */
  maxFrameBytes?: number;
  /** Extra upgrade headers (Node only). */
  headers?: Record<string, string>;
  /**
   * Node only, for `wss://` URLs (ignored for `ws://`): the CA to trust, a client certificate
   * and key for mutual TLS, `rejectUnauthorized` (default true), `servername`. Checked by
   * `connectWs` (1002 naming `tls.…`); a browser uses its own trust store and refuses them.
   */
  tls?: ClientTlsOptions;
  /**
   * Use this WHATWG WebSocket constructor instead of `ws`. Defaults to the global
   * `WebSocket` outside Node; inside Node the `ws` package is used (it can cork the socket).
   */
  WebSocket?: WhatwgWebSocketCtor;
}

/** Reconnect policy: the backoff, plus when a connection counts as stable. */
export interface ReconnectOptions extends BackoffOptions {
  /**
   * The backoff starts again from attempt 0 only after a connection stayed up this long; a
   * link that drops sooner (a node that accepts and then closes at once) keeps growing the
   * delay and counts towards `maxAttempts`. Default 5000.
   */
  stableAfterMs?: number;
}

/** `onClose` handler of a ClientConnection: `willReconnect` is false on the final close. */
export type ClientCloseHandler = (code: number, reason: string, willReconnect: boolean) => void;

/** State of a ClientConnection. */
export type ClientConnectionState = "open" | "reconnecting" | "closed";

/**
 * The client side of a link to a node, with automatic reconnect. It is a `Connection` whose
 * underlying socket may be replaced: `send` while disconnected throws an MpregError 1005
 * (the layer above decides what to do, nothing is buffered across a drop). `onClose` fires on
 * every drop, with `willReconnect` telling whether a retry follows; the last one has false.
 */
export class ClientConnection implements Connection {
  readonly id = newId();
  readonly meta = new Map<string, unknown>();
  private current: Connection | null = null;
  private userClosed: { code: number; reason: string } | null = null;
  private ended: { code: number; reason: string } | null = null;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private readonly messageHandlers = new HandlerList<[FrameData, boolean]>("message");
  private readonly closeHandlers = new HandlerList<[number, string, boolean]>("close");
  private readonly openHandlers = new HandlerList<[]>("open");
  private readonly reconnectingHandlers = new HandlerList<[number, number]>("reconnecting");
  private readonly backoff: Required<ReconnectOptions> | null;
  private openedAt = Date.now();
  private readonly dispatch: MessageHandler = (data, isBinary) => this.messageHandlers.emit(data, isBinary);

  /** Use `connectWs`. */
  constructor(
    readonly url: string,
    private readonly options: ConnectOptions,
    first: Connection,
  ) {
    const r = options.reconnect ?? true;
    this.backoff = r === false ? null : { ...DEFAULT_BACKOFF, stableAfterMs: 5000, ...(r === true ? {} : r) };
    this.attach(first);
  }

  get open(): boolean {
    return this.current !== null && this.current.open;
  }

  get state(): ClientConnectionState {
    if (this.ended !== null) return "closed";
    return this.open ? "open" : "reconnecting";
  }

  get remoteAddress(): string | undefined {
    return this.current?.remoteAddress;
  }

  send(data: FrameData): void {
    const c = this.current;
    if (c === null || !c.open) {
      throw connectionClosedError(this.id, this.ended !== null || this.userClosed !== null ? "connection is closed" : "not connected (reconnecting)");
    }
    c.send(data);
  }

  /** Closes for good: no reconnect follows. */
  close(code: number = CloseCode.NORMAL, reason = ""): void {
    if (this.userClosed !== null || this.ended !== null) return;
    const r = checkClose(code, reason);
    this.userClosed = { code, reason: r };
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    const c = this.current;
    if (c !== null) c.close(code, r);
    else this.end(code, r);
  }

  onMessage(handler: MessageHandler): Unsubscribe {
    return this.messageHandlers.add(handler);
  }

  /** See the class comment; registered after the final close, it is called on the next microtask. */
  onClose(handler: ClientCloseHandler): Unsubscribe {
    const done = this.ended;
    if (done !== null) {
      queueMicrotask(() => safe(() => handler(done.code, done.reason, false)));
      return () => {};
    }
    return this.closeHandlers.add(handler);
  }

  /** Called after each successful reconnect (not for the first connect, which `connectWs` resolves). */
  onOpen(handler: () => void): Unsubscribe {
    return this.openHandlers.add(handler);
  }

  /** Called when a retry is scheduled: `attempt` counts from 1, `delayMs` is the wait before it. */
  onReconnecting(handler: (attempt: number, delayMs: number) => void): Unsubscribe {
    return this.reconnectingHandlers.add(handler);
  }

  private attach(c: Connection): void {
    this.current = c;
    c.onMessage(this.dispatch);
    c.onClose((code, reason) => this.dropped(c, code, reason));
    const every = this.options.pingIntervalMs ?? 30_000;
    // A ping at once: a listener with a first-frame timeout keeps a client that is idle from
    // the start (the server sends none itself; pings carry no message, so any node accepts one).
    if (c instanceof WsConnection) c.pingTick();
    if (c instanceof WsConnection && every > 0) {
      this.pingTimer = setInterval(() => c.pingTick(), every);
      this.pingTimer.unref?.();
    }
  }

  private dropped(c: Connection, code: number, reason: string): void {
    if (this.current !== c) return;
    this.current = null;
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    this.pingTimer = null;
    if (this.backoff !== null && Date.now() - this.openedAt >= this.backoff.stableAfterMs) this.attempt = 0;
    const retry = this.userClosed === null && this.backoff !== null && this.attempt < this.backoff.maxAttempts;
    if (!retry) {
      this.end(code, reason);
      return;
    }
    this.closeHandlers.emit(code, reason, true);
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    const b = this.backoff!;
    const delay = backoffDelay(this.attempt, b, this.options.random);
    this.attempt++;
    this.reconnectingHandlers.emit(this.attempt, delay);
    this.retryTimer = setTimeout(() => void this.retry(), delay);
  }

  private async retry(): Promise<void> {
    this.retryTimer = null;
    if (this.userClosed !== null) return;
    let c: Connection;
    try {
      c = await dial(this.url, this.options);
    } catch (err) {
      log.debug(`reconnect ${this.attempt} to ${this.url} failed: ${(err as Error).message}`);
      if (this.userClosed !== null) return;
      if (this.attempt >= this.backoff!.maxAttempts) {
        this.end(CloseCode.ABNORMAL, `reconnect failed after ${this.attempt} attempts`);
      } else {
        this.scheduleRetry();
      }
      return;
    }
    const closedMeanwhile = this.userClosed as { code: number; reason: string } | null;
    if (closedMeanwhile !== null) {
      c.close(closedMeanwhile.code, closedMeanwhile.reason);
      this.end(closedMeanwhile.code, closedMeanwhile.reason);
      return;
    }
    this.openedAt = Date.now();
    this.attach(c);
    this.openHandlers.emit();
  }

  private end(code: number, reason: string): void {
    if (this.ended !== null) return;
    this.ended = { code, reason };
    this.closeHandlers.emit(code, reason, false);
    this.closeHandlers.clear();
    this.messageHandlers.clear();
  }
}

function safe(f: () => void): void {
  try {
    f();
  } catch (err) {
    log.error("connection event handler threw", err);
  }
}

/**
 * Opens a client connection to `url` (`ws://` or `wss://`). Resolves once the first socket is
 * open; rejects with MpregError 1006 UNAUTHORIZED on HTTP 401 or when a `wss://` server refused
 * the client certificate (Node), 1002 for bad `tls` options, and 1005 UNREACHABLE on any other
 * failure (a server certificate that does not verify included: `details.tls_error` holds the
 * reason, e.g. `SELF_SIGNED_CERT_IN_CHAIN`). Later drops are retried according to
 * `options.reconnect`.
 */
export async function connectWs(url: string, options: ConnectOptions = {}): Promise<ClientConnection> {
  if (options.tls !== undefined) {
    checkClientTlsShape(options.tls, "tls");
    if (options.WebSocket !== undefined || !isNode()) {
      throw MpregError.invalid("tls options are for the Node client only: a browser uses its own trust store and certificates", "tls");
    }
  }
  const first = await dial(url, options);
  return new ClientConnection(url, options, first);
}

function isNode(): boolean {
  return typeof process !== "undefined" && typeof process.versions?.node === "string";
}

/** Opens one socket (no retry). */
function dial(url: string, options: ConnectOptions): Promise<Connection> {
  const Ctor = options.WebSocket ?? (isNode() ? undefined : (globalThis as { WebSocket?: WhatwgWebSocketCtor }).WebSocket);
  if (Ctor !== undefined) return dialWhatwg(Ctor, url, options);
  return dialNode(url, options);
}

function unreachable(url: string, reason: string): MpregError {
  return new MpregError(ErrorCode.UNREACHABLE, `cannot connect to ${url}: ${reason}`, { reason, url });
}

function dialNode(url: string, options: ConnectOptions): Promise<Connection> {
  return new Promise<Connection>((resolve, reject) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, {
        headers,
        perMessageDeflate: false,
        maxPayload: options.maxFrameBytes ?? 20 * 1024 * 1024,
        handshakeTimeout: options.connectTimeoutMs ?? 10_000,
        ...tlsClientOptions(options.tls),
      });
    } catch (err) {
      reject(tlsDialError(url, err as Error) ?? unreachable(url, (err as Error).message));
      return;
    }
    let settled = false;
    const fail = (e: MpregError): void => {
      if (settled) return;
      settled = true;
      reject(e);
    };
    ws.on("unexpected-response", (req, res) => {
      const status = res.statusCode ?? 0;
      req.destroy();
      res.destroy();
      if (status === 401) {
        fail(new MpregError(ErrorCode.UNAUTHORIZED, `connection to ${url} refused: HTTP 401`, { reason: "HTTP 401", url }));
      } else {
        fail(unreachable(url, `HTTP ${status}`));
      }
    });
    ws.on("error", (err: Error) => fail(tlsDialError(url, err) ?? unreachable(url, err.message)));
    ws.once("open", () => {
      if (settled) return;
      settled = true;
      resolve(new WsConnection(ws, options));
    });
  });
}

/** `ws` passes these on to `tls.connect` for `wss://` URLs (and ignores them for `ws://`). */
function tlsClientOptions(tls: ClientTlsOptions | undefined): Record<string, unknown> {
  if (tls === undefined) return {};
  const pem = (v: PemInput): string | Buffer => (typeof v === "string" ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  return {
    ...(tls.ca === undefined ? {} : { ca: pem(tls.ca) }),
    ...(tls.cert === undefined ? {} : { cert: pem(tls.cert) }),
    ...(tls.key === undefined ? {} : { key: pem(tls.key) }),
    rejectUnauthorized: tls.rejectUnauthorized ?? true,
    ...(tls.servername === undefined ? {} : { servername: tls.servername }),
  };
}

function dialWhatwg(Ctor: WhatwgWebSocketCtor, url: string, options: ConnectOptions): Promise<Connection> {
  return new Promise<Connection>((resolve, reject) => {
    let target = url;
    if (options.token !== undefined) {
      const u = new URL(url);
      u.searchParams.set("token", options.token);
      target = u.toString();
    }
    let ws: ReturnType<typeof construct>;
    const construct = (): InstanceType<WhatwgWebSocketCtor> => new Ctor(target);
    try {
      ws = construct();
    } catch (err) {
      reject(unreachable(url, (err as Error).message));
      return;
    }
    ws.binaryType = "arraybuffer";
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      ws.close();
      reject(unreachable(url, "connect timeout"));
    }, options.connectTimeoutMs ?? 10_000);
    // Browsers hide the HTTP status of a refused upgrade: a 401 looks like any failure.
    const fail = (reason: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(unreachable(url, reason));
    };
    ws.addEventListener("error", () => fail("connection failed"));
    ws.addEventListener("close", (ev: { code: number }) => fail(`closed with ${ev.code}`));
    ws.addEventListener("open", () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(new BrowserWsConnection(ws, options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES));
    });
  });
}
