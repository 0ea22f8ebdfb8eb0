import type { Encoding } from "@mpreg/envelope";
import type { CancellationSource } from "@mpreg/rpc";
import type { Connection, InflightLimiter } from "@mpreg/transport";

/**
 * One client connection as the services see it: handlers get it as their context (`ctx`), and
 * what a connection owns (subscriptions, queue consumers, Raft sessions) ends with it.
 */
export interface ClientSession {
  readonly conn: Connection;
  /** Requests in flight on this connection (`inflight`) and its bound (1007 past it). */
  readonly limiter: InflightLimiter;
  /** Encoding of the latest inbound frame: pushes use it (PROTOCOL section 1). */
  pushEncoding: Encoding;
  /**
   * Aborted when the connection closes or the node shuts down (for whatever listens on the
   * connection's end, e.g. the Raft group's key-value sessions). One per connection rather than
   * one per request, because creating an AbortController per request was a visible share of a
   * trivial request's cost.
   */
  readonly cancel: AbortController;
  /**
   * Aborted with `cancel`: every request's external cancellation. Cheaper than listening on
   * `cancel.signal` per request (an EventTarget listener added and removed each time).
   */
  readonly cancellation: CancellationSource;
  /** Set once the connection opened with `peer-hello`: the fabric owns it from then on. */
  peer: boolean;
  /** Upgraded without a client token (allowed for peers only): its first frame must be `peer-hello`. */
  readonly peerOnly: boolean;
  /** May call administrative functions (docs/security.md). */
  readonly admin: boolean;
}
