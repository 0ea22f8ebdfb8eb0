/** KVStore and AppendLog implemented over MemState, for the memory and file backends. */

import type { AppendLog, BatchOp, KVEntry, KVStore, LogEntry, RangeOptions } from "./interfaces.js";
import { copyBytes, keyToString } from "./bytes.js";
import { resolveBounds } from "./range.js";
import type { MemState, StateOp } from "./state.js";
import { checkIndex, checkKey, checkValue } from "./validate.js";
import { storageError } from "./errors.js";

/** What a state-backed store needs from its backend. */
export interface StateHost {
  readonly state: MemState;
  /** Throws a `closed` (or `failed`) storage error when the backend cannot serve requests. */
  checkOpen(): void;
  /**
   * Calls `build` (which validates its input against the current state and returns the op, or
   * undefined for nothing to do), applies the op to the state and resolves once the op is
   * durable per the backend's policy. `build` may be called more than once.
   */
  commit(build: () => StateOp | undefined): Promise<void>;
}

/** Validates and copies batch operations into a state op (copies: callers may reuse buffers). */
export function toKvOp(ns: string, ops: readonly BatchOp[]): StateOp {
  if (!Array.isArray(ops)) throw storageError("invalid", "batch expects an array of operations");
  const out: Array<{ k: Uint8Array; v?: Uint8Array }> = [];
  for (const op of ops) {
    if (op?.type === "put") out.push({ k: copyBytes(checkKey(op.key)), v: copyBytes(checkValue(op.value)) });
    else if (op?.type === "del") out.push({ k: copyBytes(checkKey(op.key)) });
    else throw storageError("invalid", 'batch operation type must be "put" or "del"');
  }
  return { t: "kv", ns, ops: out };
}

export class StateKV implements KVStore {
  constructor(
    private readonly host: StateHost,
    private readonly ns: string,
  ) {}

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.host.checkOpen();
    const v = this.host.state.kv.get(this.ns)?.get(keyToString(checkKey(key)));
    return v === undefined ? undefined : copyBytes(v);
  }

  put(key: Uint8Array, value: Uint8Array): Promise<void> {
    return this.batch([{ type: "put", key, value }]);
  }

  del(key: Uint8Array): Promise<void> {
    return this.batch([{ type: "del", key }]);
  }

  async batch(ops: readonly BatchOp[]): Promise<void> {
    const op = toKvOp(this.ns, ops);
    if (op.t === "kv" && op.ops.length === 0) return this.host.checkOpen();
    await this.host.commit(() => op);
  }

  async range(opts?: RangeOptions): Promise<KVEntry[]> {
    this.host.checkOpen();
    const b = resolveBounds(opts);
    return this.host.state.kv.get(this.ns)?.range(b) ?? [];
  }
}

export class StateLog implements AppendLog {
  constructor(
    private readonly host: StateHost,
    private readonly ns: string,
  ) {}

  async append(records: readonly Uint8Array[]): Promise<number> {
    if (!Array.isArray(records)) throw storageError("invalid", "append expects an array of records");
    const copies = records.map((r) => copyBytes(checkValue(r, "record")));
    this.host.checkOpen();
    const log = this.host.state.logTable(this.ns);
    if (copies.length === 0) return log.last + 1;
    let first = 0;
    await this.host.commit(() => {
      first = log.last + 1;
      return { t: "append", ns: this.ns, first, records: copies };
    });
    return first;
  }

  async read(from: number, to?: number): Promise<LogEntry[]> {
    checkIndex(from, "from");
    if (to !== undefined) checkIndex(to, "to");
    this.host.checkOpen();
    const log = this.host.state.logs.get(this.ns);
    if (log === undefined) return [];
    const start = Math.max(from, log.first);
    const end = Math.min(to ?? log.last + 1, log.last + 1);
    const out: LogEntry[] = [];
    for (let i = start; i < end; i++) out.push({ index: i, data: copyBytes(log.entries[i - log.first]!) });
    return out;
  }

  async truncateTail(from: number): Promise<void> {
    checkIndex(from, "from");
    await this.host.commit(() => {
      const log = this.host.state.logTable(this.ns);
      return from > log.last ? undefined : { t: "trunc", ns: this.ns, from };
    });
  }

  async dropHead(upTo: number): Promise<void> {
    checkIndex(upTo, "upTo", 0);
    await this.host.commit(() => {
      const log = this.host.state.logTable(this.ns);
      return upTo < log.first ? undefined : { t: "drop", ns: this.ns, upTo };
    });
  }

  async firstIndex(): Promise<number> {
    this.host.checkOpen();
    return this.host.state.logs.get(this.ns)?.first ?? 1;
  }

  async lastIndex(): Promise<number> {
    this.host.checkOpen();
    return this.host.state.logs.get(this.ns)?.last ?? 0;
  }
}
