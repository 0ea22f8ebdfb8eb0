import { newId } from "@mpreg/envelope";
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

/** The subset of the WHATWG WebSocket this adapter uses. */
export interface WhatwgWebSocket {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string | ArrayBufferView | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (ev: any) => void): void;
}

/** A WHATWG WebSocket constructor (the browser's global `WebSocket`). */
export type WhatwgWebSocketCtor = new (url: string, protocols?: string | string[]) => WhatwgWebSocket;

const OPEN = 1;

/**
 * A `Connection` over a WHATWG WebSocket (browsers). Binary frames arrive as ArrayBuffer and
 * are delivered as a Uint8Array view (no copy). Browsers neither expose the socket nor allow
 * sending pings, so there is no coalescing and no keepalive here; the browser answers the
 * server's pings itself. Past `maxBufferedBytes` of `bufferedAmount` the connection closes
 * (locally reported as 1008 "slow consumer"; browsers only let scripts send 1000 or 3000-4999,
 * so other codes go out as 1000).
 */
export class BrowserWsConnection implements Connection {
  readonly id = newId();
  readonly meta = new Map<string, unknown>();
  readonly remoteAddress: string | undefined = undefined;
  private readonly events = new ConnectionEvents();
  private closing: { code: number; reason: string } | null = null;

  constructor(
    private readonly ws: WhatwgWebSocket,
    private readonly maxBufferedBytes: number,
  ) {
    ws.binaryType = "arraybuffer";
    ws.addEventListener("message", (ev: { data: unknown }) => {
      if (this.closing !== null) return;
      const d = ev.data;
      if (typeof d === "string") this.events.emitMessage(d, false);
      else if (d instanceof ArrayBuffer) this.events.emitMessage(new Uint8Array(d), true);
      else if (ArrayBuffer.isView(d)) this.events.emitMessage(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), true);
    });
    ws.addEventListener("close", (ev: { code: number; reason: string }) => {
      const local = this.closing;
      if (local !== null) this.events.emitClose(local.code, local.reason);
      else this.events.emitClose(ev.code, ev.reason);
    });
  }

  get open(): boolean {
    return this.closing === null && this.ws.readyState === OPEN;
  }

  send(data: FrameData): void {
    if (!this.open) throw connectionClosedError(this.id);
    if (this.ws.bufferedAmount > this.maxBufferedBytes) {
      this.closeWith(CloseCode.POLICY_VIOLATION, "slow consumer");
      return;
    }
    this.ws.send(data);
  }

  close(code: number = CloseCode.NORMAL, reason = ""): void {
    if (this.closing !== null || this.events.closed !== null) return;
    this.closeWith(code, checkClose(code, reason));
  }

  onMessage(handler: MessageHandler): Unsubscribe {
    return this.events.onMessage(handler);
  }

  onClose(handler: CloseHandler): Unsubscribe {
    return this.events.onClose(handler);
  }

  private closeWith(code: number, reason: string): void {
    this.closing = { code, reason };
    const wireCode = code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000;
    try {
      this.ws.close(wireCode, reason);
    } catch {
      this.ws.close();
    }
  }
}
