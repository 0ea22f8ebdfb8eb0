import { ClientConnection, HandlerList, type Connection, type FrameData } from "@mpreg/transport";

/** Connection state as the client sees it. */
export type ClientState = "open" | "reconnecting" | "closed";

/** What a {@link Link} reports to the client. */
export interface LinkEvents {
  /** A connection became the current one: `url`, and the URL of the link lost before it. */
  readonly up: HandlerList<[conn: Connection, url: string, previousUrl: string | undefined]>;
  /**
   * The current connection is gone (dropped, or drained); `willReconnect` is false exactly
   * once, when the link ends for good.
   */
  readonly down: HandlerList<[code: number, reason: string, willReconnect: boolean]>;
  /** A connection closed (the current one or one being drained); requests sent on it are lost. */
  readonly closed: HandlerList<[conn: Connection, code: number, reason: string, url: string | undefined]>;
  /** A retry is scheduled: `attempt` from 1, the wait before it, the URL it will try. */
  readonly reconnecting: HandlerList<[attempt: number, delayMs: number, url: string]>;
  /** A message on any open connection of the link. */
  readonly message: HandlerList<[conn: Connection, data: FrameData, isBinary: boolean]>;
}

/**
 * The client's way to reach a node: one current connection at a time, replaced when it is
 * lost. `FailoverLink` dials a list of node URLs; `FixedLink` wraps a connection given by the
 * caller.
 */
export interface Link {
  /** The current connection, or null while there is none. */
  readonly connection: Connection | null;
  /** URL of the current connection, when known. */
  readonly url: string | undefined;
  readonly state: ClientState;
  readonly events: LinkEvents;
  /**
   * The node behind `conn` is shutting down: stop using it for new requests and find another
   * node. `conn` stays open (its requests may still be answered) until `release(conn)`, its own
   * close, or the drain timeout. Ignored when `conn` is not current or the link cannot fail over
   * (no reconnect, or no other URL).
   */
  drain(conn: Connection, reason: string): void;
  /** True while `conn` is being drained. */
  isDraining(conn: Connection): boolean;
  /** Closes a drained connection that has nothing left to answer. */
  release(conn: Connection): void;
  /** Closes everything for good; `down(…, false)` follows once every connection closed. */
  close(code: number, reason: string): void;
}

export function linkEvents(): LinkEvents {
  return {
    up: new HandlerList("link up"),
    down: new HandlerList("link down"),
    closed: new HandlerList("link closed"),
    reconnecting: new HandlerList("link reconnecting"),
    message: new HandlerList("link message"),
  };
}

/**
 * A link over one connection given by the caller (`new MpregClient(conn)`). A transport
 * `ClientConnection` brings its own reconnect to the same URL, which is reported as such;
 * any other connection ends the link when it closes. It never fails over.
 */
export class FixedLink implements Link {
  readonly events = linkEvents();

  constructor(private readonly conn: Connection) {
    conn.onMessage((data, isBinary) => this.events.message.emit(conn, data, isBinary));
    if (conn instanceof ClientConnection) {
      conn.onClose((code, reason, will) => {
        this.events.closed.emit(conn, code, reason, conn.url);
        this.events.down.emit(code, reason, will);
      });
      conn.onOpen(() => this.events.up.emit(conn, conn.url, conn.url));
      conn.onReconnecting((attempt, delayMs) => this.events.reconnecting.emit(attempt, delayMs, conn.url));
    } else {
      conn.onClose((code, reason) => {
        this.events.closed.emit(conn, code, reason, undefined);
        this.events.down.emit(code, reason, false);
      });
    }
  }

  get connection(): Connection | null {
    return this.conn.open ? this.conn : null;
  }

  get url(): string | undefined {
    return this.conn instanceof ClientConnection ? this.conn.url : undefined;
  }

  get state(): ClientState {
    if (this.conn instanceof ClientConnection) return this.conn.state;
    return this.conn.open ? "open" : "closed";
  }

  drain(): void {
    // Nowhere else to go: the node closes the connection when it is done.
  }

  isDraining(): boolean {
    return false;
  }

  release(): void {}

  close(code: number, reason: string): void {
    this.conn.close(code, reason);
  }
}
