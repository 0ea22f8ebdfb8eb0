import { ErrorCode, MpregError, createLogger, type KvWatchEvent } from "@mpreg/envelope";
import type { Unsubscribe } from "@mpreg/transport";
import type { ClientCore, Resumable } from "./client-core.js";
import { PushStream } from "./push-stream.js";

const log = createLogger("client");

/** Default bound on the events a watch holds for its consumer. */
export const DEFAULT_WATCH_BUFFER = 4096;

/** Options of `kv.watch`. */
export interface KvWatchOptions {
  /** First revision to deliver (default: the next write after the watch is made). */
  start_revision?: number;
  /**
   * Events held for a slow consumer. A watch never drops an event: past this bound it ends
   * with MpregError 1007 `{reason: "watch buffer full", next_revision}` after the events it
   * holds, and a new watch from `next_revision` continues exactly where it stopped. Default 4096.
   */
  maxBuffered?: number;
}

/**
 * A watch on every key that starts with `prefix` (`mpreg.kv.watch`): an async iterator of
 * change events in revision order. On a new connection it is made again from
 * `nextRevision` (the last revision seen + 1), and events at revisions already seen are
 * dropped, so a failover neither loses nor repeats an event. It ends cleanly on `cancel()`, a
 * `break`, or `client.close()`; with an error when the revision to resume from was compacted
 * away (1002 `{reason: "compacted"}`), the buffer overflowed (1007) or the client gave up (1005).
 */
export class KvWatch implements AsyncIterable<KvWatchEvent>, Resumable {
  private watchId: string | undefined;
  private next: number | undefined;
  private readonly stream: PushStream<KvWatchEvent>;
  private readonly maxBuffered: number;
  private active = false;
  private ended = false;
  private offRoute: Unsubscribe | undefined;
  private offResume: Unsubscribe | undefined;

  /** Use `client.kv.watch(prefix)`. */
  constructor(
    private readonly core: ClientCore,
    readonly prefix: string,
    options: KvWatchOptions,
  ) {
    if (typeof prefix !== "string") throw MpregError.invalid("a watch prefix must be a string", "prefix");
    const s = options.start_revision;
    if (s !== undefined && !(Number.isSafeInteger(s) && s >= 0)) throw MpregError.invalid("start_revision must be an integer >= 0", "start_revision");
    const max = options.maxBuffered ?? DEFAULT_WATCH_BUFFER;
    if (!(Number.isInteger(max) && max >= 1)) throw MpregError.invalid("maxBuffered must be a positive integer", "maxBuffered");
    this.next = s;
    this.maxBuffered = max;
    // deliver() checks the bound itself, to end with the right resume revision.
    this.stream = new PushStream<KvWatchEvent>({ maxBuffered: max, overflow: "fail", onReturn: () => void this.cancel() });
  }

  /** The node's id of this watch on the current connection. */
  get id(): string | undefined {
    return this.watchId;
  }

  /** The revision the next event will have at least: where a new watch would continue. */
  get nextRevision(): number | undefined {
    return this.next;
  }

  get closed(): boolean {
    return this.ended;
  }

  /** @internal */
  async start(): Promise<void> {
    this.offResume = this.core.addResumable(this);
    try {
      // Idempotent: a watch dies with its connection, so making it again elsewhere is safe.
      await this.core.callThen("mpreg.kv.watch", [this.prefix, this.args()], { idempotent: true }, (r) => this.bind(r));
      this.active = true;
    } catch (e) {
      this.finish(undefined);
      throw e;
    }
  }

  /** Stops the watch: the iterator finishes, and the node is told when connected. */
  async cancel(): Promise<void> {
    if (this.ended) return;
    const id = this.watchId;
    this.finish(undefined);
    if (id !== undefined && this.core.connected) await this.unwatch(id);
  }

  [Symbol.asyncIterator](): AsyncIterator<KvWatchEvent> {
    return this.stream;
  }

  /** @internal */
  resume(): void {
    if (!this.active || this.ended) return;
    this.core.callThen("mpreg.kv.watch", [this.prefix, this.args()], {}, (r) => this.bind(r)).catch((e: MpregError) => {
      if (e.code === ErrorCode.UNREACHABLE || this.ended) return;
      log.warn(`watch on "${this.prefix}" could not be made again: ${e.message}`);
      this.finish(e);
    });
  }

  /** @internal */
  end(error?: MpregError): void {
    this.finish(error);
  }

  private args(): { start_revision?: number } {
    return this.next !== undefined ? { start_revision: this.next } : {};
  }

  /** Runs synchronously on the watch reply, so the events right behind it find the route. */
  private bind(r: unknown): void {
    const reply = r as { watch_id?: unknown; revision?: unknown } | null;
    const id = reply?.watch_id;
    if (typeof id !== "string" || id === "") throw MpregError.invalid("mpreg.kv.watch answered without a watch_id", "watch_id");
    if (this.ended) {
      void this.unwatch(id);
      return;
    }
    // Without a start revision the watch begins after the store revision it was made at.
    if (this.next === undefined && typeof reply!.revision === "number") this.next = reply!.revision + 1;
    this.offRoute?.();
    this.watchId = id;
    this.offRoute = this.core.route("kv-event", id, (f) => {
      if (f.role === "kv-event") this.deliver(f.events);
    });
  }

  private deliver(events: KvWatchEvent[]): void {
    if (this.ended) return;
    let highest = -1;
    for (const ev of events) {
      // Seen already: the overlap of two watches across a failover.
      if (this.next !== undefined && ev.mod_revision < this.next) continue;
      if (this.stream.size >= this.maxBuffered) {
        // Resuming from this event's revision may repeat events of the same revision already
        // delivered, never skip one.
        this.next = ev.mod_revision;
        const reason = "watch buffer full";
        this.overflowed(new MpregError(ErrorCode.OVERLOADED, `${reason} (maxBuffered ${this.maxBuffered})`, { reason, next_revision: this.next }));
        return;
      }
      this.stream.push(ev);
      if (ev.mod_revision > highest) highest = ev.mod_revision;
    }
    if (highest >= 0) this.next = Math.max(this.next ?? 0, highest + 1);
  }

  private overflowed(error: MpregError): void {
    const id = this.watchId;
    this.finish(error);
    if (id !== undefined && this.core.connected) void this.unwatch(id);
  }

  private async unwatch(id: string): Promise<void> {
    try {
      await this.core.call("mpreg.kv.unwatch", [id]);
    } catch (e) {
      log.debug(`unwatch ${id}: ${(e as Error).message}`);
    }
  }

  private finish(error: MpregError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.offRoute?.();
    this.offResume?.();
    this.stream.end(error);
  }
}
