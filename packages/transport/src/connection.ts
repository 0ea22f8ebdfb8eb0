import { ErrorCode, MpregError, createLogger } from "@mpreg/envelope";

const log = createLogger("transport");

/** Data carried by one WebSocket message: bytes (binary frame) or a string (text frame). */
export type FrameData = Uint8Array | string;

/** Called for each inbound message. `isBinary` is true exactly when `data` is a Uint8Array. */
export type MessageHandler = (data: FrameData, isBinary: boolean) => void;

/**
 * Called once when the connection has closed. For a close started locally (`close()`, a
 * slow-consumer or ping-timeout close) it carries the code and reason this side chose; for a
 * close started by the peer, the code and reason the peer sent; 1006 when the link dropped
 * without a close frame.
 */
export type CloseHandler = (code: number, reason: string) => void;

/** Removes a handler registered with `onMessage`/`onClose`. */
export type Unsubscribe = () => void;

/**
 * One bidirectional, message-oriented link (a WebSocket, or an in-memory pair in tests).
 * Messages keep their order and their kind (binary or text). Kept small on purpose so an
 * in-memory or TCP implementation can satisfy it too.
 */
export interface Connection {
  /** Unique id of this connection (a ULID). */
  readonly id: string;
  /** True until the connection starts closing; `send` throws once it is false. */
  readonly open: boolean;
  /** The peer's address, when the implementation knows it. */
  readonly remoteAddress?: string | undefined;
  /**
   * Bytes accepted by `send` and not yet handed to the network, when the implementation knows
   * (WebSocket connections do). Producers of pushes read it to hold back for slow readers.
   */
  readonly bufferedAmount?: number;
  /** Free-form per-connection state for the layers above (e.g. the server's session). */
  readonly meta: Map<string, unknown>;
  /**
   * Sends one message: a binary frame for a Uint8Array, a text frame for a string. The data
   * must not be mutated afterwards. Throws an MpregError (code 1005 UNREACHABLE) when the
   * connection is not open.
   */
  send(data: FrameData): void;
  /** Starts closing (idempotent). Default code 1000. */
  close(code?: number, reason?: string): void;
  onMessage(handler: MessageHandler): Unsubscribe;
  /** Registers a close handler; one registered after the close is called on the next microtask. */
  onClose(handler: CloseHandler): Unsubscribe;
}

/** WebSocket close codes used by MPREG. */
export const CloseCode = {
  NORMAL: 1000,
  /** The server is shutting down. */
  GOING_AWAY: 1001,
  /** No close frame was received (link dropped, ping timeout). Never sent on the wire. */
  ABNORMAL: 1006,
  /** Slow consumer: the outbound buffer passed `maxBufferedBytes`. */
  POLICY_VIOLATION: 1008,
  /** An inbound frame was larger than `maxFrameBytes`. */
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  /** Node-to-node handshake refused (wrong or missing MAC). */
  PEER_UNAUTHORIZED: 4401,
} as const;

/** The error thrown by `send` on a connection that is not open. */
export function connectionClosedError(id: string, reason = "connection is closed"): MpregError {
  return new MpregError(ErrorCode.UNREACHABLE, reason, { reason, connection_id: id });
}

/**
 * True for a code that may be sent in a close frame (RFC 6455 section 7.4): 1000-1003,
 * 1007-1014 and 3000-4999.
 */
export function isSendableCloseCode(code: number): boolean {
  return (
    Number.isInteger(code) &&
    ((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999))
  );
}

/** Checks arguments of `close()`; the reason is cut to the 123 bytes a close frame can hold. */
export function checkClose(code: number, reason: string): string {
  if (!isSendableCloseCode(code)) {
    throw MpregError.invalid(`close code ${code} cannot be sent in a close frame`, "code");
  }
  if (reason.length <= 41 || utf8.encode(reason).length <= 123) return reason;
  let r = reason.slice(0, 123);
  while (utf8.encode(r).length > 123) r = r.slice(0, -1);
  return r;
}

// TextEncoder rather than Buffer: this file also runs in browsers.
const utf8 = new TextEncoder();

/**
 * A list of event handlers. Adding and removing copy the list, so a handler removed during
 * dispatch does not make another one skip; `emit` calls each handler and logs what one throws,
 * so a faulty handler never unwinds into the socket's read path or stops the others.
 */
export class HandlerList<A extends unknown[]> {
  private hs: ((...args: A) => void)[] = [];

  constructor(private readonly what: string) {}

  add(handler: (...args: A) => void): Unsubscribe {
    this.hs = [...this.hs, handler];
    return () => {
      this.hs = this.hs.filter((h) => h !== handler);
    };
  }

  emit(...args: A): void {
    const hs = this.hs;
    for (let i = 0; i < hs.length; i++) {
      try {
        hs[i]!(...args);
      } catch (err) {
        log.error(`${this.what} handler threw`, err);
      }
    }
  }

  clear(): void {
    this.hs = [];
  }
}

/**
 * Handler bookkeeping shared by implementations: handler lists, the one-shot close
 * notification and late close handlers.
 */
export class ConnectionEvents {
  private readonly messageHandlers = new HandlerList<[FrameData, boolean]>("message");
  private readonly closeHandlers = new HandlerList<[number, string]>("close");
  closed: { code: number; reason: string } | null = null;

  onMessage(handler: MessageHandler): Unsubscribe {
    return this.messageHandlers.add(handler);
  }

  onClose(handler: CloseHandler): Unsubscribe {
    const done = this.closed;
    if (done !== null) {
      let cancelled = false;
      queueMicrotask(() => {
        if (!cancelled) handler(done.code, done.reason);
      });
      return () => {
        cancelled = true;
      };
    }
    return this.closeHandlers.add(handler);
  }

  emitMessage(data: FrameData, isBinary: boolean): void {
    this.messageHandlers.emit(data, isBinary);
  }

  /** Emits the close once; later calls are ignored. */
  emitClose(code: number, reason: string): void {
    if (this.closed !== null) return;
    this.closed = { code, reason };
    this.messageHandlers.clear();
    const hs = this.closeHandlers;
    hs.emit(code, reason);
    hs.clear();
  }
}
