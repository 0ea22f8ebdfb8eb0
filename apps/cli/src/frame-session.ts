/**
 * A bare frame session for the pub/sub commands: sends PROTOCOL section 4 frames, correlates
 * `pubsub-ack` replies by `u` and hands pushes to a listener. (`@mpreg/client` has no pub/sub
 * calls yet; when it has, `pub` and `sub` can use them instead.)
 */
import { ErrorCode, MpregError, decodeFrame, encodeFrame, newId } from "@mpreg/envelope";
import { connectWs, type Connection } from "@mpreg/transport";

/** Most requests awaiting a reply on one session (the CLI sends one or two). */
const MAX_PENDING = 64;

export class FrameSession {
  private readonly pending = new Map<string, { resolve: (f: Record<string, unknown>) => void; reject: (e: MpregError) => void; timer: ReturnType<typeof setTimeout> }>();
  private pushListener: ((frame: Record<string, unknown>) => void) | undefined;
  private closeListener: ((reason: string) => void) | undefined;

  private constructor(private readonly conn: Connection) {
    conn.onMessage((data, isBinary) => this.receive(data, isBinary));
    conn.onClose((_code, reason) => {
      const err = new MpregError(ErrorCode.UNREACHABLE, `connection closed${reason ? `: ${reason}` : ""}`, { reason: "connection closed" });
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(err);
      }
      this.pending.clear();
      this.closeListener?.(reason);
    });
  }

  /** Connects without reconnecting: a subscription that drops ends the command. */
  static async open(url: string, token: string | undefined): Promise<FrameSession> {
    const conn = await connectWs(url, { reconnect: false, ...(token === undefined ? {} : { token }) });
    return new FrameSession(conn);
  }

  /** Sends `frame` with a fresh `u`; resolves with a successful ack, rejects with its error. */
  request(frame: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> {
    if (this.pending.size >= MAX_PENDING) return Promise.reject(MpregError.overloaded("too many requests in flight"));
    const u = newId();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(u);
        reject(new MpregError(ErrorCode.TIMEOUT, `no reply within ${timeoutMs} ms`, { reason: "timeout" }));
      }, timeoutMs);
      this.pending.set(u, { resolve, reject, timer });
      try {
        this.conn.send(encodeFrame({ ...frame, u } as never, "msgpack"));
      } catch (e) {
        clearTimeout(timer);
        this.pending.delete(u);
        reject(e);
      }
    });
  }

  /** Called with every push (`pubsub-notification`, ...). */
  onPush(listener: (frame: Record<string, unknown>) => void): void {
    this.pushListener = listener;
  }

  /** Called once when the connection ends (by either side). */
  onClose(listener: (reason: string) => void): void {
    this.closeListener = listener;
  }

  close(): void {
    this.conn.close(1000, "done");
  }

  private receive(data: Uint8Array | string, isBinary: boolean): void {
    const res = decodeFrame(data, isBinary ? "msgpack" : "json");
    if (!res.ok) return;
    const frame = res.frame as unknown as Record<string, unknown>;
    const u = frame.u;
    if (typeof u === "string" && this.pending.has(u)) {
      const p = this.pending.get(u)!;
      this.pending.delete(u);
      clearTimeout(p.timer);
      const error = frame.error as { code: number; message: string; details?: Record<string, unknown> } | null | undefined;
      if (error) p.reject(MpregError.fromWire({ code: error.code, message: error.message, details: error.details ?? {} }));
      else if (frame.success === false) p.reject(new MpregError(ErrorCode.EXECUTION_FAILED, "request failed", { reason: "success: false" }));
      else p.resolve(frame);
      return;
    }
    if (!("u" in frame)) this.pushListener?.(frame);
  }
}
