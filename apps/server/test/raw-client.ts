import { decode, encode } from "@msgpack/msgpack";
import WebSocket from "ws";

/** A raw WebSocket speaking JSON (text) or MessagePack (binary) frames, for protocol tests. */
export class RawClient {
  private readonly replies = new Map<string | null, unknown[]>();
  readonly pushes: Record<string, unknown>[] = [];
  readonly all: Record<string, unknown>[] = [];
  closed: { code: number; reason: string } | undefined;

  private constructor(readonly ws: WebSocket, readonly encoding: "json" | "msgpack") {
    ws.on("message", (data, isBinary) => {
      const msg = (isBinary ? decode(data as Buffer) : JSON.parse(data.toString())) as Record<string, unknown>;
      this.all.push(msg);
      if (msg.role === "rpc-response" || msg.role === "pubsub-ack") {
        const u = (msg.u ?? null) as string | null;
        const list = this.replies.get(u) ?? [];
        list.push(msg);
        this.replies.set(u, list);
      } else {
        this.pushes.push(msg);
      }
    });
    ws.on("close", (code, reason) => {
      this.closed = { code, reason: reason.toString() };
    });
  }

  static open(url: string, encoding: "json" | "msgpack", headers?: Record<string, string>): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      const c = new RawClient(ws, encoding);
      ws.once("open", () => resolve(c));
      ws.once("error", reject);
      ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  sendRaw(data: string | Uint8Array): void {
    this.ws.send(data);
  }

  send(frame: unknown): void {
    this.ws.send(this.encoding === "json" ? JSON.stringify(frame) : encode(frame));
  }

  /** Waits for the reply with correlation `u` (polls; no fixed sleeps). */
  async reply(u: string | null, timeoutMs = 10_000): Promise<Record<string, any>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const list = this.replies.get(u);
      if (list && list.length > 0) return list.shift() as Record<string, any>;
      if (Date.now() > deadline) throw new Error(`no reply for u=${u} within ${timeoutMs} ms`);
      if (this.closed) throw new Error(`connection closed (${this.closed.code}) before reply ${u}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async request(frame: Record<string, unknown>, timeoutMs?: number): Promise<Record<string, any>> {
    this.send(frame);
    return this.reply(frame.u as string, timeoutMs);
  }

  replyCount(): number {
    let n = 0;
    for (const l of this.replies.values()) n += l.length;
    return n;
  }

  close(): void {
    this.ws.close();
  }
}
