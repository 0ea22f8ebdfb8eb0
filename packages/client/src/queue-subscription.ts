import { ErrorCode, MpregError, createLogger, type QueueMessage } from "@mpreg/envelope";
import type { Unsubscribe } from "@mpreg/transport";
import type { ClientCore, Resumable } from "./client-core.js";
import { PushStream } from "./push-stream.js";
import { ReceivedMessage, type QueueClient } from "./queue-client.js";
import { DEFAULT_MAX_BUFFERED } from "./subscription.js";

const log = createLogger("client");

/** Options of `QueueClient.subscribe`. */
export interface QueueSubscribeOptions {
  /** Most unacked messages the node pushes at once (node default 10). */
  prefetch?: number;
  /**
   * Messages held for a slow consumer. Default 1024. The node never has more than `prefetch`
   * unacked messages out, so with `prefetch <= maxBuffered` nothing is ever dropped. Past it the
   * oldest is dropped and counted in `dropped`; it is not acked, so it comes back after its
   * visibility timeout (a nack would have the node push it straight back to this full consumer).
   */
  maxBuffered?: number;
  /** Receive messages through this function instead of iterating. */
  callback?: (message: ReceivedMessage) => void;
}

/**
 * A consumer of one queue (`mpreg.queue.subscribe`): an async iterator of received messages,
 * each with `ack()`. The node's subscription id changes on each new connection (the consumer is
 * made again there); messages leased to a lost connection come back to the queue.
 */
export class QueueSubscription implements AsyncIterable<ReceivedMessage>, Resumable {
  /** Messages delivered (to the buffer or the callback). */
  received = 0;
  private subscriptionId: string | undefined;
  private readonly stream: PushStream<ReceivedMessage> | undefined;
  private active = false;
  private ended = false;
  private offRoute: Unsubscribe | undefined;
  private offResume: Unsubscribe | undefined;

  /** Use `client.queue(name).subscribe()`. */
  constructor(
    private readonly core: ClientCore,
    readonly queue: QueueClient,
    private readonly options: QueueSubscribeOptions,
  ) {
    const p = options.prefetch;
    if (p !== undefined && !(Number.isInteger(p) && p >= 1)) throw MpregError.invalid("prefetch must be a positive integer", "prefetch");
    const max = options.maxBuffered ?? DEFAULT_MAX_BUFFERED;
    if (!(Number.isInteger(max) && max >= 1)) throw MpregError.invalid("maxBuffered must be a positive integer", "maxBuffered");
    if (options.callback !== undefined && typeof options.callback !== "function") throw MpregError.invalid("callback must be a function", "callback");
    this.stream = options.callback === undefined
      ? new PushStream<ReceivedMessage>({
          maxBuffered: max,
          overflow: "drop-oldest",
          onReturn: () => void this.unsubscribe(),
        })
      : undefined;
  }

  /** The node's id of this consumer on the current connection. */
  get id(): string | undefined {
    return this.subscriptionId;
  }

  /** Messages dropped because the consumer fell `maxBuffered` behind (they come back later). */
  get dropped(): number {
    return this.stream?.dropped ?? 0;
  }

  get closed(): boolean {
    return this.ended;
  }

  /** @internal */
  async start(): Promise<void> {
    this.offResume = this.core.addResumable(this);
    try {
      // Idempotent: a consumer dies with its connection, so making it again elsewhere is safe.
      await this.core.callThen("mpreg.queue.subscribe", [this.queue.name, this.args()], { idempotent: true }, (r) => this.bind(r));
      this.active = true;
    } catch (e) {
      this.finish(undefined);
      throw e;
    }
  }

  /** Stops consuming: the iterator finishes, and the node is told when connected. */
  async unsubscribe(): Promise<void> {
    if (this.ended) return;
    const id = this.subscriptionId;
    this.finish(undefined);
    if (id === undefined || !this.core.connected) return;
    try {
      await this.core.call("mpreg.queue.unsubscribe", [id]);
    } catch (e) {
      log.debug(`queue unsubscribe ${id}: ${(e as Error).message}`);
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<ReceivedMessage> {
    if (this.stream === undefined) {
      throw MpregError.invalid("this queue subscription delivers to its callback; it cannot also be iterated", "callback");
    }
    return this.stream;
  }

  /** @internal */
  resume(): void {
    if (!this.active || this.ended) return;
    this.core.callThen("mpreg.queue.subscribe", [this.queue.name, this.args()], {}, (r) => this.bind(r)).catch((e: MpregError) => {
      if (e.code === ErrorCode.UNREACHABLE || this.ended) return;
      log.warn(`queue subscription to ${this.queue.name} could not be made again: ${e.message}`);
      this.finish(e);
    });
  }

  /** @internal */
  end(error?: MpregError): void {
    this.finish(error);
  }

  private args(): { prefetch?: number } {
    return this.options.prefetch !== undefined ? { prefetch: this.options.prefetch } : {};
  }

  /** Runs synchronously on the subscribe reply, so the deliveries right behind it find the route. */
  private bind(r: unknown): void {
    const id = (r as { subscription_id?: unknown } | null)?.subscription_id;
    if (typeof id !== "string" || id === "") throw MpregError.invalid("mpreg.queue.subscribe answered without a subscription_id", "subscription_id");
    if (this.ended) {
      // Unsubscribed while this was on its way: undo it on the node too.
      void this.core.call("mpreg.queue.unsubscribe", [id]).catch(() => {});
      return;
    }
    this.offRoute?.();
    this.subscriptionId = id;
    this.offRoute = this.core.route("queue-delivery", id, (f) => {
      if (f.role === "queue-delivery") this.deliver(f.message);
    });
  }

  private deliver(m: QueueMessage): void {
    if (this.ended) return;
    this.received++;
    const msg = new ReceivedMessage(this.queue, m);
    if (this.stream !== undefined) {
      this.stream.push(msg);
      return;
    }
    try {
      this.options.callback!(msg);
    } catch (err) {
      log.warn(`queue subscription to ${this.queue.name}: callback threw`, err);
    }
  }

  private finish(error: MpregError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.offRoute?.();
    this.offResume?.();
    this.stream?.end(error);
  }
}
