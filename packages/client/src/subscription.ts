import {
  ErrorCode,
  MAX_PATTERNS_PER_SUBSCRIPTION,
  MpregError,
  createLogger,
  type PubsubNotificationMessage,
  type SubscriptionBacklog,
} from "@mpreg/envelope";
import type { Unsubscribe } from "@mpreg/transport";
import type { ClientCore, Resumable } from "./client-core.js";
import { PushStream } from "./push-stream.js";

const log = createLogger("client");

/** Default bound on the messages a subscription holds for its consumer. */
export const DEFAULT_MAX_BUFFERED = 1024;
/**
 * Message ids a subscription remembers to drop duplicates (failover overlap): at least the last
 * DEDUP_WINDOW, at most twice as many.
 */
export const DEDUP_WINDOW = 1024;

/** Options of `MpregClient.subscribe`. */
export interface SubscribeOptions {
  /** Retained messages first: younger than `seconds`, at most `max` (first subscribe only). */
  backlog?: SubscriptionBacklog;
  /** The id to use; one unique per client is made when absent. */
  subscription_id?: string;
  /**
   * Messages held for a slow `for await` consumer. Past it the oldest is dropped and
   * `dropped` counts it. Default 1024.
   */
  maxBuffered?: number;
  /** Receive messages through this function instead of iterating. */
  callback?: (message: PubsubNotificationMessage) => void;
  /**
   * Ask the node for `pubsub-notification-batch` pushes: the notifications of one event-loop
   * turn of the node in one frame (fewer frames to write, read and decode). Messages are still
   * handed over one at a time, in order. Default true: a node that does not know the field
   * ignores it and pushes one notification per message, which the client takes too.
   */
  batch?: boolean;
}

/**
 * A pub/sub subscription: an async iterator of messages (`for await (const m of sub)`), or a
 * callback. It ends cleanly on `unsubscribe()`, a `break` out of the loop, or `client.close()`;
 * it ends with an error when the client gives up or the node refuses to make it again.
 *
 * The subscription id is chosen by the client, so the same id is subscribed again on each new
 * connection. Messages are told apart by `message_id`: one seen among the last
 * {@link DEDUP_WINDOW} is dropped, so the overlap of a failover delivers nothing twice.
 */
export class Subscription implements AsyncIterable<PubsubNotificationMessage>, Resumable {
  /** The subscription id on the wire. */
  readonly id: string;
  readonly patterns: readonly string[];
  /** Messages delivered (to the buffer or the callback). */
  received = 0;
  private readonly stream: PushStream<PubsubNotificationMessage> | undefined;
  private readonly callback: ((m: PubsubNotificationMessage) => void) | undefined;
  // Two generations of ids: when the current one holds DEDUP_WINDOW it becomes the previous
  // one and the one before is forgotten whole (a ring with a delete per message was ~3% of a
  // subscriber's CPU).
  private seen = new Set<string>();
  private seenBefore = new Set<string>();
  private active = false;
  private ended = false;
  private offRoute: Unsubscribe | undefined;
  private offResume: Unsubscribe | undefined;

  /** Use `MpregClient.subscribe`. */
  constructor(
    private readonly core: ClientCore,
    patterns: readonly string[],
    private readonly options: SubscribeOptions,
  ) {
    if (!Array.isArray(patterns) || patterns.length === 0 || patterns.length > MAX_PATTERNS_PER_SUBSCRIPTION) {
      throw MpregError.invalid(`patterns must be 1 to ${MAX_PATTERNS_PER_SUBSCRIPTION} strings`, "patterns");
    }
    patterns.forEach((p, i) => {
      if (typeof p !== "string" || p.length === 0) throw MpregError.invalid("a pattern must be a non-empty string", `patterns.${i}`);
    });
    const max = options.maxBuffered ?? DEFAULT_MAX_BUFFERED;
    if (!(Number.isInteger(max) && max >= 1)) throw MpregError.invalid("maxBuffered must be a positive integer", "maxBuffered");
    if (options.callback !== undefined && typeof options.callback !== "function") {
      throw MpregError.invalid("callback must be a function", "callback");
    }
    if (options.batch !== undefined && typeof options.batch !== "boolean") throw MpregError.invalid("batch must be a boolean", "batch");
    if (options.subscription_id !== undefined && (typeof options.subscription_id !== "string" || options.subscription_id === "")) {
      throw MpregError.invalid("subscription_id must be a non-empty string", "subscription_id");
    }
    this.id = options.subscription_id ?? core.uniqueId("sub");
    this.patterns = [...patterns];
    this.callback = options.callback;
    this.stream = this.callback === undefined
      ? new PushStream({ maxBuffered: max, overflow: "drop-oldest", onReturn: () => void this.unsubscribe() })
      : undefined;
  }

  /** Messages dropped because the consumer fell `maxBuffered` behind. */
  get dropped(): number {
    return this.stream?.dropped ?? 0;
  }

  /** True once it ended (unsubscribed, client closed, or failed). */
  get closed(): boolean {
    return this.ended;
  }

  /** @internal Subscribes on the node; the route is in place before the request leaves. */
  async start(): Promise<void> {
    this.offRoute = this.core.route("pubsub-notification", this.id, (f) => {
      if (f.role === "pubsub-notification") this.deliver(f.message);
      else if (f.role === "pubsub-notification-batch") for (const m of f.messages) this.deliver(m);
    });
    this.offResume = this.core.addResumable(this);
    try {
      // Idempotent: a subscription dies with its connection, so sending it again elsewhere is safe.
      await this.core.pubsub({ role: "pubsub-subscribe", subscription: this.request(true) }, true);
      this.active = true;
    } catch (e) {
      this.finish(undefined);
      throw e;
    }
  }

  /** Ends the subscription: the iterator finishes, and the node is told when connected. */
  async unsubscribe(): Promise<void> {
    if (this.ended) return;
    this.finish(undefined);
    if (!this.core.connected) return;
    try {
      await this.core.pubsub({ role: "pubsub-unsubscribe", subscription_id: this.id }, false);
    } catch (e) {
      // Gone already (connection lost, node restarted): nothing left to undo.
      log.debug(`unsubscribe ${this.id}: ${(e as Error).message}`);
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<PubsubNotificationMessage> {
    if (this.stream === undefined) {
      throw MpregError.invalid("this subscription delivers to its callback; it cannot also be iterated", "callback");
    }
    return this.stream;
  }

  /** @internal A new connection: subscribe again there (no backlog: it was asked once). */
  resume(): void {
    if (!this.active || this.ended) return;
    this.core.pubsub({ role: "pubsub-subscribe", subscription: this.request(false) }, false).catch((e: MpregError) => {
      // 1005: that connection is gone too; the next one resumes again.
      if (e.code === ErrorCode.UNREACHABLE || this.ended) return;
      log.warn(`subscription ${this.id} could not be made again: ${e.message}`);
      this.finish(e);
    });
  }

  /** @internal The client ended. */
  end(error?: MpregError): void {
    this.finish(error);
  }

  private request(first: boolean): { subscription_id: string; patterns: string[]; backlog?: SubscriptionBacklog; batch?: boolean } {
    const r: { subscription_id: string; patterns: string[]; backlog?: SubscriptionBacklog; batch?: boolean } = { subscription_id: this.id, patterns: [...this.patterns] };
    if (this.options.batch !== false) r.batch = true;
    if (first && this.options.backlog !== undefined) r.backlog = this.options.backlog;
    return r;
  }

  private deliver(m: PubsubNotificationMessage): void {
    if (this.ended || this.isDuplicate(m.message_id)) return;
    this.received++;
    if (this.stream !== undefined) {
      this.stream.push(m);
      return;
    }
    try {
      this.callback!(m);
    } catch (err) {
      log.warn(`subscription ${this.id} callback threw`, err);
    }
  }

  private isDuplicate(id: string): boolean {
    if (this.seenBefore.size > 0 && this.seenBefore.has(id)) return true;
    const n = this.seen.size;
    if (n >= DEDUP_WINDOW) {
      if (this.seen.has(id)) return true;
      this.seenBefore = this.seen;
      this.seen = new Set([id]);
      return false;
    }
    return this.seen.add(id).size === n;
  }

  private finish(error: MpregError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.offRoute?.();
    this.offResume?.();
    this.stream?.end(error);
  }
}
