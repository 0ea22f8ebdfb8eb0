import type { Socket } from "node:net";
import { newId } from "@mpreg/envelope";
import WebSocket from "ws";
import {
  CloseCode,
  ConnectionEvents,
  checkClose,
  connectionClosedError,
  type CloseHandler,
  type Connection,
  type FrameData,
  type MessageHandler,
  type Unsubscribe,
} from "./connection.js";
import type { BudgetMember, OutboundBudget } from "./outbound-budget.js";

/** Limits of one ws-backed connection. */
export interface WsConnectionLimits {
  /**
   * Above this many bytes buffered in the socket, new frames wait in the connection's own
   * queue until the socket drains. Default 8 MiB.
   */
  highWaterMarkBytes?: number;
  /**
   * When socket buffer + queue would pass this many bytes, the peer is a slow consumer: the
   * connection is closed with 1008 "slow consumer" and the frame is dropped. Default 64 MiB.
   */
  maxBufferedBytes?: number;
  /** After `close()`, how long to wait for the peer's close frame before dropping the socket. Default 2000. */
  closeTimeoutMs?: number;
  /** Coalesce the frames of one event-loop turn into one socket write. Default true. */
  coalesce?: boolean;
  /**
   * While coalescing, write out what is corked once this many frames are waiting, so the peer
   * starts on the first replies while this side still produces the rest. Default 16.
   */
  coalesceMaxFrames?: number;
  /** Same, by bytes (frame payloads). Default 256 KiB. */
  coalesceMaxBytes?: number;
  /**
   * A node-wide budget shared with other connections: what this connection holds unsent (above
   * the socket's own 16 KiB high-water mark) counts towards it, and when the sum passes it the
   * connections holding the most are terminated, reported locally as 1008 "slow consumer".
   * Default none (only `maxBufferedBytes` applies); the listener gives its own.
   */
  outboundBudget?: OutboundBudget;
}

export const DEFAULT_HIGH_WATER_MARK_BYTES = 8 * 1024 * 1024;
export const DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024;
export const DEFAULT_CLOSE_TIMEOUT_MS = 2000;
export const DEFAULT_COALESCE_MAX_FRAMES = 16;
export const DEFAULT_COALESCE_MAX_BYTES = 256 * 1024;

/**
 * A `Connection` over a `ws` WebSocket (server or client side, Node only).
 *
 * Frame coalescing: the first `send` of an event-loop turn corks the underlying socket and a
 * `process.nextTick` uncorks it, so every frame sent in that turn (including from promise
 * continuations queued in it) leaves in one `writev`. This relies on ws writing synchronously,
 * which holds because permessage-deflate is disabled on both sides.
 *
 * A turn that produces many frames writes them out every `coalesceMaxFrames` frames (or
 * `coalesceMaxBytes` bytes) instead of all at the end: one write for the whole turn puts the
 * two ends in lockstep (the peer idles while this side encodes its batch, then this side idles
 * while the peer handles it); smaller writes let both work at once. With 64 requests in flight
 * over loopback this nearly doubled round trips per second (docs/rpc-hot-path.md).
 */
export class WsConnection implements Connection, BudgetMember {
  readonly id: string;
  readonly meta = new Map<string, unknown>();
  readonly remoteAddress: string | undefined;

  private readonly ws: WebSocket;
  private readonly socket: Socket | null;
  private readonly events = new ConnectionEvents();
  private readonly hwm: number;
  private readonly maxBuffered: number;
  private readonly closeTimeoutMs: number;
  private closing: { code: number; reason: string } | null = null;
  private closeTimer: ReturnType<typeof setTimeout> | null = null;
  private corked = false;
  private readonly coalesce: boolean;
  // Outbound queue used only while the socket is above the high-water mark.
  private queue: FrameData[] = [];
  private queueHead = 0;
  private queuedBytes = 0;
  /** Pings sent since the last sign of life (pong or message); used by `pingTick`. */
  private unanswered = 0;
  /** A message arrived since the last `pingTick`: the link is busy and needs no keepalive. */
  private heardSinceTick = false;
  private readonly budget: OutboundBudget | null;
  /** What this connection last reported to the budget. */
  private charged = 0;
  /** Below this many buffered bytes nothing is reported to the budget (the socket's own mark). */
  private readonly chargeFloor: number;
  private messagesIn = 0;
  private pingsIn = 0;

  private corkedFrames = 0;
  private corkedBytes = 0;
  private maxCorkedFrames: number;
  private readonly maxCorkedBytes: number;
  private readonly uncork = (): void => {
    this.corked = false;
    this.socket?.uncork();
  };

  constructor(ws: WebSocket, limits: WsConnectionLimits = {}, remoteAddress?: string) {
    this.id = newId();
    this.ws = ws;
    this.closeTimeoutMs = limits.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    // ws keeps the net.Socket in a private field; it is set once the socket is open.
    this.socket = (ws as unknown as { _socket: Socket | null })._socket ?? null;
    this.coalesce = limits.coalesce ?? true;
    this.maxCorkedFrames = Math.max(1, limits.coalesceMaxFrames ?? DEFAULT_COALESCE_MAX_FRAMES);
    this.maxCorkedBytes = Math.max(1, limits.coalesceMaxBytes ?? DEFAULT_COALESCE_MAX_BYTES);
    // The queue is flushed on the socket's 'drain', which only fires once the socket's own
    // high-water mark (16 KiB) was passed: the threshold may not be below it.
    this.hwm = Math.max(
      limits.highWaterMarkBytes ?? DEFAULT_HIGH_WATER_MARK_BYTES,
      this.socket?.writableHighWaterMark ?? 0,
    );
    this.maxBuffered = Math.max(limits.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES, this.hwm);
    this.remoteAddress = remoteAddress ?? this.socket?.remoteAddress;
    this.budget = limits.outboundBudget ?? null;
    this.chargeFloor = this.socket?.writableHighWaterMark ?? 16 * 1024;

    ws.on("message", (data: WebSocket.RawData, isBinary: boolean) => {
      this.unanswered = 0;
      this.heardSinceTick = true;
      this.messagesIn++;
      if (this.closing !== null) return;
      // binaryType is "nodebuffer": data is a Buffer (a Uint8Array), delivered without copy.
      if (isBinary) this.events.emitMessage(data as Buffer, true);
      else this.events.emitMessage((data as Buffer).toString("utf8"), false);
    });
    ws.on("pong", () => {
      this.unanswered = 0;
    });
    ws.on("ping", () => {
      this.pingsIn++;
    });
    // Errors (oversized frame, invalid UTF-8, socket reset) are followed by 'close'.
    ws.on("error", () => {});
    ws.on("close", (code: number, reason: Buffer) => {
      if (this.closeTimer !== null) clearTimeout(this.closeTimer);
      this.dropQueue();
      this.charged = 0;
      this.budget?.release(this);
      const local = this.closing;
      if (local !== null) this.events.emitClose(local.code, local.reason);
      else this.events.emitClose(code, reason.toString("utf8"));
    });
    this.socket?.on("drain", () => this.flushQueue());
  }

  /**
   * Changes `coalesceMaxFrames` of this connection (e.g. a node raises it on a peer link once
   * the link is known to be one: see `PEER_COALESCE_MAX_FRAMES` in `@mpreg/fabric`).
   */
  setCoalesceMaxFrames(frames: number): void {
    this.maxCorkedFrames = Math.max(1, Math.floor(frames));
  }

  get open(): boolean {
    return this.closing === null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Bytes waiting to be written: socket buffer plus the connection's own queue. */
  get bufferedAmount(): number {
    return this.ws.bufferedAmount + this.queuedBytes;
  }

  /** Data frames received so far. */
  get messagesReceived(): number {
    return this.messagesIn;
  }

  /** True once the peer sent anything: a data frame or a ping (a pong to our ping does not count). */
  get heardFromPeer(): boolean {
    return this.messagesIn > 0 || this.pingsIn > 0;
  }

  /**
   * Drops the socket at once and reports 1008 "slow consumer" locally: called by the node-wide
   * outbound budget. No close handshake: the close frame would wait behind the unread bytes.
   */
  cutOff(): void {
    if (this.events.closed !== null) return;
    // A connection already closing (its close frame stuck behind unread bytes) goes too.
    this.closing ??= { code: CloseCode.POLICY_VIOLATION, reason: "slow consumer" };
    this.dropQueue();
    this.charged = 0;
    this.ws.terminate();
  }

  send(data: FrameData): void {
    if (!this.open) throw connectionClosedError(this.id);
    if (this.queue.length > this.queueHead || this.ws.bufferedAmount > this.hwm) {
      this.enqueue(data);
    } else {
      this.write(data);
    }
    if (this.budget !== null) this.account();
  }

  close(code: number = CloseCode.NORMAL, reason = ""): void {
    if (this.closing !== null || this.events.closed !== null) return;
    const r = checkClose(code, reason);
    this.closeWith(code, r);
  }

  /** Drops the socket without a close handshake; handlers see `code` (default 1006). */
  terminate(code: number = CloseCode.ABNORMAL, reason = "terminated"): void {
    if (this.events.closed !== null) return;
    if (this.closing === null) this.closing = { code, reason };
    this.ws.terminate();
  }

  onMessage(handler: MessageHandler): Unsubscribe {
    return this.events.onMessage(handler);
  }

  onClose(handler: CloseHandler): Unsubscribe {
    return this.events.onClose(handler);
  }

  /**
   * One keepalive tick: terminates the connection when the last two pings went unanswered
   * (no pong and no message since), otherwise sends a ping, unless a message arrived since the
   * previous tick (a link carrying traffic, e.g. a peer link's gossip every second, is alive
   * without keepalives). Returns false when terminated.
   */
  pingTick(): boolean {
    if (this.events.closed !== null || this.closing !== null) return false;
    if (this.heardSinceTick) {
      this.heardSinceTick = false;
      return true;
    }
    if (this.unanswered >= 2) {
      this.terminate(CloseCode.ABNORMAL, "ping timeout");
      return false;
    }
    this.unanswered++;
    try {
      this.ws.ping();
    } catch {
      // Socket already gone; 'close' follows.
    }
    return true;
  }

  /** Reports what this connection holds to the budget (only when it changed). */
  private account(): void {
    if (this.events.closed !== null) return;
    const held = this.ws.bufferedAmount + this.queuedBytes;
    const charge = held > this.chargeFloor ? held : 0;
    if (charge === this.charged) return;
    this.charged = charge;
    this.budget!.update(this, charge);
  }

  private closeWith(code: number, reason: string): void {
    this.closing = { code, reason };
    this.dropQueue();
    try {
      this.ws.close(code, reason);
    } catch {
      this.ws.terminate();
      return;
    }
    // A peer that never answers the close frame must not hold the socket for ws's 30 s.
    this.closeTimer = setTimeout(() => this.ws.terminate(), this.closeTimeoutMs);
    this.closeTimer.unref?.();
  }

  private write(data: FrameData): void {
    const socket = this.socket;
    if (this.coalesce && socket !== null) {
      if (!this.corked) {
        this.corked = true;
        this.corkedFrames = 0;
        this.corkedBytes = 0;
        socket.cork();
        process.nextTick(this.uncork);
      } else if (this.corkedFrames >= this.maxCorkedFrames || this.corkedBytes >= this.maxCorkedBytes) {
        // Write out this turn's frames so far; stay corked for the rest of the turn.
        this.corkedFrames = 0;
        this.corkedBytes = 0;
        socket.uncork();
        socket.cork();
      }
      this.corkedFrames++;
      this.corkedBytes += typeof data === "string" ? data.length : data.byteLength;
    }
    this.ws.send(data, { binary: typeof data !== "string" });
  }

  private enqueue(data: FrameData): void {
    // String sizes count UTF-16 units: an approximation that avoids scanning the string.
    const size = typeof data === "string" ? data.length : data.byteLength;
    if (this.ws.bufferedAmount + this.queuedBytes + size > this.maxBuffered) {
      this.closeWith(CloseCode.POLICY_VIOLATION, "slow consumer");
      return;
    }
    this.queue.push(data);
    this.queuedBytes += size;
  }

  private flushQueue(): void {
    while (this.queueHead < this.queue.length && this.open && this.ws.bufferedAmount <= this.hwm) {
      const data = this.queue[this.queueHead]!;
      this.queue[this.queueHead] = "";
      this.queueHead++;
      this.queuedBytes -= typeof data === "string" ? data.length : data.byteLength;
      this.write(data);
    }
    if (this.queueHead === this.queue.length) {
      this.queue = [];
      this.queueHead = 0;
      this.queuedBytes = 0;
    } else if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    if (this.budget !== null) this.account();
  }

  private dropQueue(): void {
    this.queue = [];
    this.queueHead = 0;
    this.queuedBytes = 0;
  }
}
