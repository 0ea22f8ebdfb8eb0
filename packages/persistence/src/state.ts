/**
 * The in-memory state of key-value namespaces and logs, and the operations that change it.
 * The memory backend uses it directly; the file backend also writes every operation to its
 * write-ahead log and rebuilds this state from the log on open.
 */

import { keyToString, stringToKey, copyBytes } from "./bytes.js";
import type { KVEntry } from "./interfaces.js";
import type { Bounds } from "./range.js";
import { storageError } from "./errors.js";

/** One change to the state: the unit that is applied (and logged) atomically. */
export type StateOp =
  | { t: "kv"; ns: string; ops: Array<{ k: Uint8Array; v?: Uint8Array }> }
  | { t: "append"; ns: string; first: number; records: Uint8Array[] }
  | { t: "trunc"; ns: string; from: number }
  | { t: "drop"; ns: string; upTo: number };

/** Fixed per-entry overhead used in byte accounting (object headers, map slots). */
const ENTRY_OVERHEAD = 64;

/** Index of the first element >= s in the sorted array. */
function lowerBound(arr: string[], s: string): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid]! < s) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * One key-value namespace: a hash map for point reads plus a sorted key array for scans.
 * Inserting a new key costs O(n) (array splice), which stays cheap up to a few hundred
 * thousand keys per namespace.
 */
export class KvTable {
  readonly map = new Map<string, Uint8Array>();
  readonly keys: string[] = [];
  bytes = 0;

  get(k: string): Uint8Array | undefined {
    return this.map.get(k);
  }

  set(k: string, v: Uint8Array): number {
    const old = this.map.get(k);
    if (old === undefined) {
      this.keys.splice(lowerBound(this.keys, k), 0, k);
      this.map.set(k, v);
      const d = k.length + v.length + ENTRY_OVERHEAD;
      this.bytes += d;
      return d;
    }
    this.map.set(k, v);
    const d = v.length - old.length;
    this.bytes += d;
    return d;
  }

  delete(k: string): number {
    const old = this.map.get(k);
    if (old === undefined) return 0;
    this.map.delete(k);
    const i = lowerBound(this.keys, k);
    this.keys.splice(i, 1);
    const d = -(k.length + old.length + ENTRY_OVERHEAD);
    this.bytes += d;
    return d;
  }

  /** Entries in the bounds, copied so callers cannot change the stored bytes. */
  range(b: Bounds): KVEntry[] {
    if (b.empty) return [];
    const start = b.lo === undefined ? 0 : lowerBound(this.keys, keyToString(b.lo));
    const end = b.hi === undefined ? this.keys.length : lowerBound(this.keys, keyToString(b.hi));
    const out: KVEntry[] = [];
    const limit = b.limit ?? Infinity;
    if (b.reverse) {
      for (let i = end - 1; i >= start && out.length < limit; i--) out.push(this.entry(this.keys[i]!));
    } else {
      for (let i = start; i < end && out.length < limit; i++) out.push(this.entry(this.keys[i]!));
    }
    return out;
  }

  private entry(k: string): KVEntry {
    return { key: stringToKey(k), value: copyBytes(this.map.get(k)!) };
  }
}

/** One append-only log: records `first..last` held in `entries`. */
export class LogTable {
  first = 1;
  last = 0;
  entries: Uint8Array[] = [];
  bytes = 0;

  get(index: number): Uint8Array | undefined {
    return index >= this.first && index <= this.last ? this.entries[index - this.first] : undefined;
  }
}

function sumBytes(arr: readonly Uint8Array[]): number {
  let n = 0;
  for (const a of arr) n += a.length + ENTRY_OVERHEAD;
  return n;
}

/** Every namespace of one backend. */
export class MemState {
  readonly kv = new Map<string, KvTable>();
  readonly logs = new Map<string, LogTable>();
  /** Approximate bytes held (keys, values, records and a fixed per-entry overhead). */
  bytes = 0;

  kvTable(ns: string): KvTable {
    let t = this.kv.get(ns);
    if (t === undefined) {
      t = new KvTable();
      this.kv.set(ns, t);
    }
    return t;
  }

  logTable(ns: string): LogTable {
    let t = this.logs.get(ns);
    if (t === undefined) {
      t = new LogTable();
      this.logs.set(ns, t);
    }
    return t;
  }

  /** Applies one operation. The op's byte arrays become owned by the state (pass copies). */
  apply(op: StateOp): void {
    switch (op.t) {
      case "kv": {
        const t = this.kvTable(op.ns);
        for (const o of op.ops) {
          const k = keyToString(o.k);
          this.bytes += o.v === undefined ? t.delete(k) : t.set(k, o.v);
        }
        return;
      }
      case "append": {
        const log = this.logTable(op.ns);
        if (op.first <= log.last) this.truncate(log, op.first);
        if (log.entries.length === 0) {
          log.first = op.first;
          log.last = op.first - 1;
        } else if (op.first !== log.last + 1) {
          throw storageError("corrupt", "log append does not follow the last record", {
            namespace: op.ns,
            first: op.first,
            last: log.last,
          });
        }
        for (const r of op.records) log.entries.push(r);
        log.last += op.records.length;
        const d = sumBytes(op.records);
        log.bytes += d;
        this.bytes += d;
        return;
      }
      case "trunc":
        this.truncate(this.logTable(op.ns), op.from);
        return;
      case "drop": {
        const log = this.logTable(op.ns);
        if (op.upTo < log.first) return;
        const n = Math.min(op.upTo, log.last) - log.first + 1;
        const removed = n > 0 ? log.entries.splice(0, n) : [];
        const d = sumBytes(removed);
        log.bytes -= d;
        this.bytes -= d;
        log.first = op.upTo + 1;
        if (op.upTo > log.last) log.last = op.upTo;
        return;
      }
    }
  }

  private truncate(log: LogTable, from: number): void {
    if (from > log.last) return;
    let removed: Uint8Array[];
    if (from >= log.first) {
      removed = log.entries.splice(from - log.first);
    } else {
      removed = log.entries;
      log.entries = [];
      log.first = from;
    }
    log.last = from - 1;
    const d = sumBytes(removed);
    log.bytes -= d;
    this.bytes -= d;
  }
}
