import type { MpregError, PubsubAck, PubsubPublish, PubsubSubscribe, PubsubUnsubscribe } from "@mpreg/envelope";
import type { Unsubscribe } from "@mpreg/transport";
import type { PushFrame } from "./client.js";

/** Options the helpers pass with a built-in call. */
export interface CoreCallOptions {
  /** May be (re)sent on another node after a failover (see `CallOptions.idempotent`). */
  idempotent?: boolean;
  timeout_ms?: number;
}

/** A pub/sub request frame without its `u` (the client adds it). */
export type PubsubRequest = Omit<PubsubPublish, "u"> | Omit<PubsubSubscribe, "u"> | Omit<PubsubUnsubscribe, "u">;

/** The push roles that belong to one subscription, watch or queue consumer. */
export type PushKind = "pubsub-notification" | "queue-delivery" | "kv-event";

/**
 * Something a connection owns on the node (a subscription, a queue consumer, a watch) that
 * the client makes again on each new connection.
 */
export interface Resumable {
  /** A new connection is up: make it again there (errors are the resumable's to handle). */
  resume(): void;
  /** The client ended: stop (with `error` when it ended by a failure rather than `close()`). */
  end(error?: MpregError): void;
}

/**
 * What the helper objects (subscriptions, queues, cache, KV) use of an `MpregClient`. Built
 * by the client from its private members; not part of the public API.
 */
export interface ClientCore {
  /** Calls one function; resolves with its result. */
  call(fun: string, args: unknown[], options?: CoreCallOptions): Promise<unknown>;
  /**
   * Like `call`, but `onResult` runs synchronously when the reply is read, before any later
   * frame of the connection is dispatched: a push that follows the reply (a delivery after
   * `mpreg.queue.subscribe`) then finds the route `onResult` registered.
   */
  callThen<T>(fun: string, args: unknown[], options: CoreCallOptions, onResult: (result: unknown) => T): Promise<T>;
  /** Sends a pub/sub request and resolves with its successful `pubsub-ack`. */
  pubsub(frame: PubsubRequest, idempotent: boolean): Promise<PubsubAck>;
  /** Sends pushes of `kind` for `id` to `handler` (and any such push held back so far). */
  route(kind: PushKind, id: string, handler: (frame: PushFrame) => void): Unsubscribe;
  /** Registers something to make again on each new connection. */
  addResumable(r: Resumable): Unsubscribe;
  /** True while a connection is open. */
  readonly connected: boolean;
  /** True once the client was closed or gave up. */
  readonly closed: boolean;
  /** A string unique within this client, for client-chosen ids. */
  uniqueId(prefix: string): string;
}
