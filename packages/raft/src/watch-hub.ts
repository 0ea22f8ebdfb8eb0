import { ErrorCode, MpregError, newId } from "@mpreg/envelope";
import type { KvEvent, KvListener, KvStateMachine } from "./kv.js";

/** Options of a {@link WatchHub}. */
export interface WatchHubOptions {
  /** Most watches on this member; beyond it `create` fails with 1007. Default 10,000. */
  maxWatches?: number;
  /**
   * Most event bytes (keys and encoded values) waiting for one watch between two flushes;
   * past it the watch ends with 1007 `{reason: "watch_overflow"}`. Default 64 MiB.
   */
  maxPendingBytes?: number;
  /** Most event bytes per delivery (a larger batch is split; one event always goes). Default 1 MiB. */
  maxBatchBytes?: number;
  /** Runs a function later (after the watch's creation was answered). Default `setImmediate`. */
  defer?: (fn: () => void) => void;
}

/** How a watch hands its events to its consumer. */
export interface WatchSink {
  /** A batch of events in revision order (never empty). May throw: the watch then ends. */
  deliver(events: KvEvent[], watchId: string): void;
  /** The watch ended on its own: compacted history, overflow, or the store stopping. */
  end(error: MpregError, watchId: string): void;
}

interface Watcher {
  id: string;
  owner: string;
  prefix: string;
  /** The next revision this watch has to look at. */
  next: number;
  /** False until the creation was answered: events wait meanwhile. */
  started: boolean;
  pending: KvEvent[];
  pendingBytes: number;
  sink: WatchSink;
}

const eventBytes = (e: KvEvent) => e.key.length + (e.value?.length ?? 0) + 32;

/** The error for a watch that asks for history the store no longer holds. */
export function compactedError(compactRevision: number): MpregError {
  return new MpregError(ErrorCode.INVALID_REQUEST, `kv: revision ${compactRevision} and earlier are compacted`, {
    reason: "compacted",
    compact_revision: compactRevision,
  });
}

/**
 * The watches of one member, fed by its KV state machine as it applies entries. A watch sees
 * every change at or after its start revision, in revision order, each once: events come from
 * this member's applied log, and from the state machine's history (replicated state, the same on
 * every member) for revisions before the watch started or skipped by an installed snapshot.
 * Events are handed out by `flush()` (after each Ready), in batches.
 */
export class WatchHub implements Pick<KvListener, "onRevision" | "onRestore"> {
  private readonly watchers = new Map<string, Watcher>();
  private readonly byOwner = new Map<string, Set<string>>();
  private readonly maxWatches: number;
  private readonly maxPendingBytes: number;
  private readonly maxBatchBytes: number;
  private readonly defer: (fn: () => void) => void;
  private dirty = false;

  constructor(
    private readonly sm: KvStateMachine,
    o: WatchHubOptions = {},
  ) {
    this.maxWatches = o.maxWatches ?? 10_000;
    this.maxPendingBytes = o.maxPendingBytes ?? 64 * 1024 * 1024;
    this.maxBatchBytes = o.maxBatchBytes ?? 1024 * 1024;
    this.defer = o.defer ?? ((fn) => setImmediate(fn));
  }

  get size(): number {
    return this.watchers.size;
  }

  /**
   * Starts a watch on keys starting with `prefix`, from `start` (default: the next revision).
   * Must run at a linearizable point of this member's state (inside a ReadIndex read), so no
   * revision can slip between the answer and the first event. Throws 1002 `compacted` when
   * `start` is no longer in the history, 1007 past `maxWatches`.
   */
  create(owner: string, prefix: string, start: number | undefined, sink: WatchSink): { watch_id: string; revision: number } {
    if (this.watchers.size >= this.maxWatches) {
      throw new MpregError(ErrorCode.OVERLOADED, `kv: too many watches on this member (${this.maxWatches})`, { reason: "too_many_watches" });
    }
    const current = this.sm.revision;
    const w: Watcher = { id: newId(), owner, prefix, next: current + 1, started: false, pending: [], pendingBytes: 0, sink };
    if (start !== undefined && start <= current) {
      if (start <= this.sm.compactRevision) throw compactedError(this.sm.compactRevision);
      for (const h of this.sm.historyFrom(start)) this.add(w, h.events);
    } else if (start !== undefined) {
      w.next = start;
    }
    this.watchers.set(w.id, w);
    let mine = this.byOwner.get(owner);
    if (!mine) {
      mine = new Set();
      this.byOwner.set(owner, mine);
    }
    mine.add(w.id);
    // The first events go out only after the caller answered the creation.
    this.defer(() => {
      if (!this.watchers.has(w.id)) return;
      w.started = true;
      this.flushOne(w);
    });
    return { watch_id: w.id, revision: current };
  }

  /** Ends a watch; `owner` (when given) must be the one that created it. */
  cancel(id: string, owner?: string): boolean {
    const w = this.watchers.get(id);
    if (!w || (owner !== undefined && w.owner !== owner)) return false;
    this.remove(w);
    return true;
  }

  /** Ends every watch of an owner (its connection closed). */
  closeOwner(owner: string): void {
    for (const id of [...(this.byOwner.get(owner) ?? [])]) {
      const w = this.watchers.get(id);
      if (w) this.remove(w);
    }
  }

  /** Ends every watch with `error` (the store is stopping). */
  closeAll(error: MpregError): void {
    for (const w of [...this.watchers.values()]) this.end(w, error);
  }

  onRevision(revision: number, events: readonly KvEvent[]): void {
    for (const w of this.watchers.values()) {
      if (revision < w.next) continue;
      w.next = revision + 1;
      this.add(w, events);
    }
  }

  onRestore(): void {
    // A snapshot replaced the state: revisions up to its own were never applied here one by
    // one. Watches get them from the snapshot's history, or end when it does not reach back.
    const rev = this.sm.revision;
    for (const w of [...this.watchers.values()]) {
      if (w.next > rev) continue;
      if (w.next <= this.sm.compactRevision) {
        this.end(w, compactedError(this.sm.compactRevision));
        continue;
      }
      for (const h of this.sm.historyFrom(w.next)) this.add(w, h.events);
      w.next = rev + 1;
    }
  }

  /** Hands pending events to their watches (the driver calls it after each Ready). */
  flush(): void {
    if (!this.dirty) return;
    this.dirty = false;
    for (const w of [...this.watchers.values()]) if (w.started && w.pending.length > 0) this.flushOne(w);
  }

  private add(w: Watcher, events: readonly KvEvent[]): void {
    for (const e of events) {
      if (!e.key.startsWith(w.prefix)) continue;
      w.pending.push(e);
      w.pendingBytes += eventBytes(e);
      this.dirty = true;
    }
    if (w.pendingBytes > this.maxPendingBytes) {
      this.end(w, new MpregError(ErrorCode.OVERLOADED, "kv: the watch fell too far behind", { reason: "watch_overflow" }));
    }
  }

  private flushOne(w: Watcher): void {
    const all = w.pending;
    w.pending = [];
    w.pendingBytes = 0;
    let at = 0;
    while (at < all.length && this.watchers.has(w.id)) {
      let end = at;
      let bytes = 0;
      while (end < all.length && (end === at || bytes + eventBytes(all[end]!) <= this.maxBatchBytes)) bytes += eventBytes(all[end++]!);
      try {
        w.sink.deliver(all.slice(at, end), w.id);
      } catch (e) {
        this.end(w, new MpregError(ErrorCode.UNREACHABLE, `kv: watch delivery failed: ${(e as Error).message}`, { reason: "delivery_failed" }));
        return;
      }
      at = end;
    }
  }

  private end(w: Watcher, error: MpregError): void {
    this.remove(w);
    try {
      w.sink.end(error, w.id);
    } catch {
      // The consumer is gone; nothing else to tell.
    }
  }

  private remove(w: Watcher): void {
    this.watchers.delete(w.id);
    const mine = this.byOwner.get(w.owner);
    mine?.delete(w.id);
    if (mine?.size === 0) this.byOwner.delete(w.owner);
  }
}
