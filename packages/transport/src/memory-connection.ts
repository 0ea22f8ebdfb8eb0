import { newId } from "@mpreg/envelope";
import {
  ConnectionEvents,
  checkClose,
  connectionClosedError,
  type CloseHandler,
  type Connection,
  type FrameData,
  type MessageHandler,
  type Unsubscribe,
} from "./connection.js";

/** Options of `createMemoryConnectionPair`. */
export interface MemoryPairOptions {
  /** Largest frame a side accepts; a larger one closes the pair with 1009. Default 20 MiB. */
  maxFrameBytes?: number;
}

/**
 * Two connected in-memory `Connection`s for tests of higher layers. Delivery is asynchronous
 * (one microtask per message, in order), binary data is copied (the sender may reuse its
 * buffer, as with a socket), and closing one side closes the other with the same code.
 */
export function createMemoryConnectionPair(options: MemoryPairOptions = {}): [Connection, Connection] {
  const max = options.maxFrameBytes ?? 20 * 1024 * 1024;
  const a = new MemoryConnection(max);
  const b = new MemoryConnection(max);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

class MemoryConnection implements Connection {
  readonly id = newId();
  readonly meta = new Map<string, unknown>();
  readonly remoteAddress = "memory";
  peer: MemoryConnection | null = null;
  private readonly events = new ConnectionEvents();
  private closing = false;

  constructor(private readonly maxFrameBytes: number) {}

  get open(): boolean {
    return !this.closing;
  }

  send(data: FrameData): void {
    if (this.closing) throw connectionClosedError(this.id);
    const isBinary = typeof data !== "string";
    const copy: FrameData = isBinary ? (data as Uint8Array).slice() : data;
    const size = isBinary ? copy.length : (data as string).length;
    const peer = this.peer!;
    queueMicrotask(() => {
      if (peer.closing) return;
      if (size > peer.maxFrameBytes) {
        peer.shutdown(1009, "frame too large");
        return;
      }
      peer.events.emitMessage(copy, isBinary);
    });
  }

  close(code = 1000, reason = ""): void {
    if (this.closing) return;
    this.shutdown(code, checkClose(code, reason));
  }

  onMessage(handler: MessageHandler): Unsubscribe {
    return this.events.onMessage(handler);
  }

  onClose(handler: CloseHandler): Unsubscribe {
    return this.events.onClose(handler);
  }

  /** Closes this side and, after messages already in flight, the peer with the same code. */
  private shutdown(code: number, reason: string): void {
    this.closing = true;
    const peer = this.peer!;
    queueMicrotask(() => this.events.emitClose(code, reason));
    queueMicrotask(() => {
      peer.closing = true;
      peer.events.emitClose(code, reason);
    });
  }
}
