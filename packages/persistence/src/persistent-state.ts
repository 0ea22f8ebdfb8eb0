/** Typed stores on top of KVStore: "load state on open, persist each transition atomically". */

import type { BatchOp, KVStore } from "./interfaces.js";
import type { RecordCodec } from "./record-codec.js";
import { utf8 } from "./bytes.js";

const td = new TextDecoder();

/** A KVStore with string keys (UTF-8) and codec-typed values. */
export class TypedKV<V> {
  constructor(
    readonly kv: KVStore,
    readonly codec: RecordCodec<V>,
  ) {}

  async get(key: string): Promise<V | undefined> {
    const b = await this.kv.get(utf8(key));
    return b === undefined ? undefined : this.codec.decode(b);
  }

  put(key: string, value: V): Promise<void> {
    return this.kv.put(utf8(key), this.codec.encode(value));
  }

  del(key: string): Promise<void> {
    return this.kv.del(utf8(key));
  }

  /** A put as a batch operation, to combine with others atomically. */
  putOp(key: string, value: V): BatchOp {
    return { type: "put", key: utf8(key), value: this.codec.encode(value) };
  }

  delOp(key: string): BatchOp {
    return { type: "del", key: utf8(key) };
  }

  /** Entries whose key starts with `prefix`, in key order. */
  async entries(prefix = "", limit?: number): Promise<Array<[string, V]>> {
    const rows = await this.kv.range(limit === undefined ? { prefix: utf8(prefix) } : { prefix: utf8(prefix), limit });
    return rows.map((r) => [td.decode(r.key), this.codec.decode(r.value)]);
  }
}

export interface PersistentStateOptions<S> {
  kv: KVStore;
  /** The key that holds the state record. */
  key: string;
  codec: RecordCodec<S>;
  /** The state when nothing is stored yet (not written until the first transition). */
  initial: () => S;
}

/**
 * A state machine's state kept in one record. `open` loads it; `transition` computes the next
 * state and writes it (with any extra operations) in one atomic batch before making it current,
 * so after a crash the state is either before or after a transition, never between. Transitions
 * run one at a time, in call order.
 */
export class PersistentState<S> {
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly opts: PersistentStateOptions<S>,
    private value: S,
  ) {}

  static async open<S>(opts: PersistentStateOptions<S>): Promise<PersistentState<S>> {
    const b = await opts.kv.get(utf8(opts.key));
    return new PersistentState(opts, b === undefined ? opts.initial() : opts.codec.decode(b));
  }

  /** The last persisted state (or the initial one). Treat it as read-only. */
  get current(): S {
    return this.value;
  }

  /** Persists `fn(current)` and makes it current; when the write fails nothing changes. */
  transition(fn: (current: S) => S): Promise<S> {
    return this.transitionWith((current) => ({ state: fn(current), ops: [] }));
  }

  /**
   * Like `transition`, but `fn` also returns other operations (e.g. index keys) that are written
   * in the same atomic batch as the state record.
   */
  transitionWith(fn: (current: S) => { state: S; ops: readonly BatchOp[] }): Promise<S> {
    const run = async (): Promise<S> => {
      const { state: next, ops } = fn(this.value);
      await this.opts.kv.batch([...ops, { type: "put", key: utf8(this.opts.key), value: this.opts.codec.encode(next) }]);
      this.value = next;
      return next;
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }
}
