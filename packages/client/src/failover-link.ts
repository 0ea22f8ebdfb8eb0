import { ErrorCode, MpregError, createLogger, isMpregError } from "@mpreg/envelope";
import { CloseCode, backoffDelay, type Connection, type RandomSource, type ReconnectOptions } from "@mpreg/transport";
import { linkEvents, type ClientState, type Link } from "./link.js";
import type { UrlPool } from "./url-pool.js";

const log = createLogger("client");

/** Opens one connection to a node URL (no retry of its own). */
export type Dial = (url: string) => Promise<Connection>;

/** Options of a {@link FailoverLink}. */
export interface FailoverLinkOptions {
  dial: Dial;
  /** Backoff between attempts after a loss; null: no reconnect, the first loss ends the link. */
  reconnect: Required<ReconnectOptions> | null;
  /** Jitter source, [0, 1). */
  random: RandomSource;
  /** Longest time a drained connection is kept open for its last replies. */
  drainTimeoutMs: number;
}

/**
 * A link that dials node URLs from a {@link UrlPool} and fails over between them.
 *
 * After the current connection is lost (dropped, or drained because its node shuts down), it
 * waits a backoff with full jitter (uniform in `[0, min(maxDelayMs, initialDelayMs × 2ⁿ)]`,
 * `n` counting attempts since the last stable link) and dials `pool.pick(...)`: a URL with the
 * fewest consecutive failures, not the one just lost when there is another. Each failed dial
 * is one attempt; after `maxAttempts` the link ends. Timers live here; the choices are the pool's.
 */
export class FailoverLink implements Link {
  readonly events = linkEvents();
  private cur: Connection | null = null;
  private curUrl: string | undefined;
  /** URL of the last connection lost, reported with the next `up` (for the failover event). */
  private lostUrl: string | undefined;
  /** URL of the last connection lost or dial failed, which the next pick avoids. */
  private avoidUrl: string | undefined;
  private readonly draining = new Map<Connection, ReturnType<typeof setTimeout>>();
  private attempt = 0;
  private openedAt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private closing: { code: number; reason: string } | null = null;
  private ended = false;

  private constructor(
    readonly pool: UrlPool,
    private readonly opts: FailoverLinkOptions,
  ) {}

  /**
   * Connects to the first seed that answers, trying them in the order given, once each.
   * Rejects when none does: with the dial's own error for a single URL, else with 1006 if a
   * node refused the token, else 1005 listing the URLs tried.
   */
  static async open(pool: UrlPool, opts: FailoverLinkOptions): Promise<FailoverLink> {
    const link = new FailoverLink(pool, opts);
    const urls = pool.urls();
    const errors: MpregError[] = [];
    for (const url of urls) {
      try {
        const conn = await opts.dial(url);
        link.attach(conn, url);
        return link;
      } catch (e) {
        pool.failed(url);
        errors.push(isMpregError(e) ? e : new MpregError(ErrorCode.UNREACHABLE, String(e), { reason: String(e), url }));
      }
    }
    if (errors.length === 1) throw errors[0]!;
    const denied = errors.find((e) => e.code === ErrorCode.UNAUTHORIZED);
    if (denied !== undefined) throw denied;
    const reason = `no node reachable (tried ${urls.length})`;
    throw new MpregError(ErrorCode.UNREACHABLE, `cannot connect: ${reason}`, {
      reason,
      urls,
      errors: errors.map((e) => e.message),
    });
  }

  get connection(): Connection | null {
    return this.cur !== null && this.cur.open ? this.cur : null;
  }

  get url(): string | undefined {
    return this.curUrl;
  }

  get state(): ClientState {
    if (this.ended) return "closed";
    return this.connection !== null ? "open" : "reconnecting";
  }

  isDraining(conn: Connection): boolean {
    return this.draining.has(conn);
  }

  drain(conn: Connection, reason: string): void {
    if (conn !== this.cur || this.closing !== null || this.opts.reconnect === null) return;
    // With nowhere else to go, moving would only dial the stopping node again: wait for its close.
    if (this.pool.size < 2) return;
    const url = this.curUrl!;
    log.info(`node at ${url} is shutting down (${reason}); failing over`);
    this.cur = null;
    this.curUrl = undefined;
    this.lostUrl = url;
    this.avoidUrl = url;
    this.pool.failed(url);
    const timer = setTimeout(() => conn.close(CloseCode.NORMAL, "drain timeout"), this.opts.drainTimeoutMs);
    (timer as { unref?: () => void }).unref?.();
    this.draining.set(conn, timer);
    // A drain is the node's choice, not a failure of the link: no growing backoff for it.
    this.attempt = 0;
    this.events.down.emit(CloseCode.GOING_AWAY, reason, true);
    this.scheduleRetry();
  }

  release(conn: Connection): void {
    if (this.draining.has(conn)) conn.close(CloseCode.NORMAL, "drained");
  }

  close(code: number, reason: string): void {
    if (this.closing !== null || this.ended) return;
    this.closing = { code, reason };
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    for (const c of this.draining.keys()) c.close(code, reason);
    if (this.cur !== null) this.cur.close(code, reason);
    this.finishIfIdle();
  }

  private attach(conn: Connection, url: string): void {
    this.cur = conn;
    this.curUrl = url;
    this.openedAt = Date.now();
    this.pool.succeeded(url);
    conn.onMessage((data, isBinary) => this.events.message.emit(conn, data, isBinary));
    conn.onClose((code, reason) => this.closed(conn, url, code, reason));
  }

  private closed(conn: Connection, url: string, code: number, reason: string): void {
    const timer = this.draining.get(conn);
    if (timer !== undefined) {
      clearTimeout(timer);
      this.draining.delete(conn);
      this.events.closed.emit(conn, code, reason, url);
      this.finishIfIdle();
      return;
    }
    if (conn !== this.cur) return;
    this.cur = null;
    this.curUrl = undefined;
    this.lostUrl = url;
    this.avoidUrl = url;
    this.pool.failed(url);
    this.events.closed.emit(conn, code, reason, url);
    const b = this.opts.reconnect;
    if (b !== null && Date.now() - this.openedAt >= b.stableAfterMs) this.attempt = 0;
    if (this.closing !== null || b === null || this.attempt >= b.maxAttempts) {
      this.closing ??= { code, reason };
      this.finishIfIdle();
      return;
    }
    this.events.down.emit(code, reason, true);
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    const b = this.opts.reconnect!;
    const delay = backoffDelay(this.attempt, b, this.opts.random);
    this.attempt++;
    const url = this.pool.pick(this.opts.random, this.avoidUrl);
    this.events.reconnecting.emit(this.attempt, delay, url);
    this.retryTimer = setTimeout(() => void this.retry(url), delay);
  }

  private async retry(url: string): Promise<void> {
    this.retryTimer = undefined;
    if (this.closing !== null) return;
    let conn: Connection;
    try {
      conn = await this.opts.dial(url);
    } catch (e) {
      log.debug(`connecting to ${url} failed: ${(e as Error).message}`);
      this.pool.failed(url);
      this.avoidUrl = url;
      if (this.closing !== null) return;
      if (this.attempt >= this.opts.reconnect!.maxAttempts) {
        this.closing = { code: CloseCode.ABNORMAL, reason: `reconnect failed after ${this.attempt} attempts` };
        this.finishIfIdle();
      } else {
        this.scheduleRetry();
      }
      return;
    }
    // close() may have run while the dial was on its way.
    const closing = this.closing as { code: number; reason: string } | null;
    if (closing !== null) {
      conn.close(closing.code, closing.reason);
      return;
    }
    const previous = this.lostUrl;
    this.attach(conn, url);
    this.events.up.emit(conn, url, previous);
  }

  /** Ends the link once it is closing and no connection is left open. */
  private finishIfIdle(): void {
    if (this.ended || this.closing === null || this.cur !== null || this.draining.size > 0) return;
    this.ended = true;
    this.events.down.emit(this.closing.code, this.closing.reason, false);
  }
}
