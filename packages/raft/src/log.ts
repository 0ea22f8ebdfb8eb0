import { MpregError } from "@mpreg/envelope";
import type { Entry, Snapshot } from "./types.js";

/**
 * The in-memory view of a node's log: the latest snapshot (the compacted prefix) followed by
 * the entries after it. `stabled` is the last index known to be on disk; entries after it are
 * handed out in the next Ready. The application's storage is the durable copy; this view is
 * rebuilt from it on restart.
 */
export class RaftLog {
  /** Index and term of the entry the snapshot ends at (0/0 when there is none). */
  snapIndex: number;
  snapTerm: number;
  /** entries[i].index === snapIndex + 1 + i. */
  entries: Entry[];
  committed: number;
  /** Highest index handed to the application for applying. */
  applied: number;
  /** Highest index known to be persisted. */
  stabled: number;
  /** A snapshot received from the leader that is not yet persisted/applied. */
  pendingSnapshot: Snapshot | undefined;

  constructor(snapIndex: number, snapTerm: number, entries: Entry[], committed: number) {
    this.snapIndex = snapIndex;
    this.snapTerm = snapTerm;
    this.entries = entries;
    this.committed = committed;
    this.applied = snapIndex;
    this.stabled = snapIndex + entries.length;
    this.pendingSnapshot = undefined;
  }

  firstIndex(): number {
    return this.snapIndex + 1;
  }

  lastIndex(): number {
    return this.snapIndex + this.entries.length;
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  /** The term of entry `i`, or undefined when it is compacted away or beyond the end. */
  term(i: number): number | undefined {
    if (i === this.snapIndex) return this.snapTerm;
    if (i < this.snapIndex || i > this.lastIndex()) return undefined;
    return this.entries[i - this.snapIndex - 1]!.term;
  }

  entry(i: number): Entry | undefined {
    if (i <= this.snapIndex) return undefined;
    return this.entries[i - this.snapIndex - 1];
  }

  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t;
  }

  /** Entries with lo <= index < hi (hi exclusive), at most `max`; undefined when compacted. */
  slice(lo: number, hi: number, max = Number.MAX_SAFE_INTEGER, maxBytes = Number.MAX_SAFE_INTEGER): Entry[] | undefined {
    if (lo <= this.snapIndex) return undefined;
    let end = Math.min(hi, this.lastIndex() + 1, lo + max);
    if (end <= lo) return [];
    if (maxBytes < Number.MAX_SAFE_INTEGER) {
      // Stop before the entry that would pass maxBytes; the first entry always goes.
      let bytes = 0;
      for (let i = lo; i < end; i++) {
        bytes += this.entries[i - this.snapIndex - 1]!.data.length;
        if (bytes > maxBytes && i > lo) {
          end = i;
          break;
        }
      }
    }
    return this.entries.slice(lo - this.snapIndex - 1, end - this.snapIndex - 1);
  }

  /** A candidate's log is at least as up to date as ours (Raft §5.4.1). */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * The largest index <= `index` whose term is <= `term` (the conflict-skipping search). Used by
   * followers to answer a rejected append and by leaders to skip a whole divergent term.
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    for (; i > this.snapIndex; i--) {
      if (this.entries[i - this.snapIndex - 1]!.term <= term) return i;
    }
    return i;
  }

  /**
   * Appends entries whose first element follows `prevIndex` (already matched). Only entries that
   * conflict (same index, different term) cause truncation; entries we already hold are skipped,
   * so a stale or reordered message can never shorten the log. Returns the last index covered.
   */
  maybeAppend(prevIndex: number, entries: readonly Entry[]): number {
    const lastNew = prevIndex + entries.length;
    let conflictAt = -1;
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k]!;
      if (e.index <= this.snapIndex) continue; // covered by the snapshot, hence committed and equal
      if (this.term(e.index) !== e.term) {
        conflictAt = k;
        break;
      }
    }
    if (conflictAt >= 0) {
      const first = entries[conflictAt]!.index;
      if (first <= this.committed) {
        throw new MpregError(1003, "raft: conflicting entry at or below the commit index", {
          index: first,
          committed: this.committed,
        });
      }
      this.truncateAndAppend(entries.slice(conflictAt));
    }
    return lastNew;
  }

  /** Puts `ents` at their indexes, dropping whatever was at or after the first of them. */
  truncateAndAppend(ents: readonly Entry[]): void {
    if (ents.length === 0) return;
    const first = ents[0]!.index;
    if (first <= this.snapIndex || first > this.lastIndex() + 1) {
      throw new MpregError(1003, "raft: append would leave a gap in the log", {
        first,
        last: this.lastIndex(),
      });
    }
    this.entries.length = first - this.snapIndex - 1;
    for (const e of ents) this.entries.push(e);
    if (this.stabled >= first) this.stabled = first - 1;
  }

  commitTo(i: number): boolean {
    if (i > this.committed) {
      if (i > this.lastIndex()) {
        throw new MpregError(1003, "raft: commit index beyond the last entry", { commit: i, last: this.lastIndex() });
      }
      this.committed = i;
      return true;
    }
    return false;
  }

  /** Entries not yet handed out for persisting. */
  unstableEntries(): Entry[] {
    if (this.stabled >= this.lastIndex()) return [];
    return this.entries.slice(this.stabled - this.snapIndex);
  }

  /** Marks entries up to `i` persisted, unless a later truncation replaced them. */
  stableTo(i: number, t: number): void {
    if (i > this.stabled && this.term(i) === t) this.stabled = i;
  }

  /** Replaces the whole log by a snapshot received from the leader. */
  restore(s: Snapshot): void {
    this.snapIndex = s.meta.index;
    this.snapTerm = s.meta.term;
    this.entries = [];
    this.committed = s.meta.index;
    this.stabled = s.meta.index;
    this.pendingSnapshot = s;
  }

  /** Drops entries up to `i` after the application saved a snapshot covering them. */
  compact(i: number, t: number): void {
    if (i <= this.snapIndex) return;
    this.entries = this.entries.slice(i - this.snapIndex);
    this.snapIndex = i;
    this.snapTerm = t;
  }
}
