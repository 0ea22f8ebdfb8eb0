/**
 * The storage contracts every stateful MPREG component uses. All methods are async so a backend
 * may do I/O; keys and values are bytes so any codec can sit on top.
 *
 * Ordering: keys compare as unsigned bytes (lexicographic), as `Buffer.compare` does.
 */

/** One operation of an atomic batch. */
export type BatchOp =
  | { type: "put"; key: Uint8Array; value: Uint8Array }
  | { type: "del"; key: Uint8Array };

/** A range scan: `gte`/`lt` bounds (either may be absent), ascending unless `reverse`. */
export interface RangeOptions {
  gte?: Uint8Array;
  lt?: Uint8Array;
  /** Only keys starting with these bytes. Combined with the bounds when both are given. */
  prefix?: Uint8Array;
  limit?: number;
  reverse?: boolean;
}

export interface KVEntry {
  key: Uint8Array;
  value: Uint8Array;
}

/** An ordered key-value store with atomic batches. */
export interface KVStore {
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  put(key: Uint8Array, value: Uint8Array): Promise<void>;
  del(key: Uint8Array): Promise<void>;
  /** Applies every operation or none; later operations on the same key win. */
  batch(ops: readonly BatchOp[]): Promise<void>;
  /** Entries in key order (see RangeOptions). */
  range(opts?: RangeOptions): Promise<KVEntry[]>;
}

/** One record of an append-only log. Indexes are positive integers, consecutive. */
export interface LogEntry {
  index: number;
  data: Uint8Array;
}

/**
 * An append-only log with consecutive indexes. `firstIndex()` is the lowest index still held
 * (after `dropHead`), `lastIndex()` the highest (0 when the log never held anything).
 */
export interface AppendLog {
  /** Appends records after the last one; returns the index given to the first. */
  append(records: readonly Uint8Array[]): Promise<number>;
  /** Records with `from <= index < to` (to defaults to lastIndex()+1), in order, clamped to what is held. */
  read(from: number, to?: number): Promise<LogEntry[]>;
  /**
   * Removes every record with index >= `from` (the tail), so the next append gets `from`.
   * A `from` past the end does nothing; one below `firstIndex()` empties the log and restarts it at `from`.
   */
  truncateTail(from: number): Promise<void>;
  /**
   * Removes every record with index <= `upTo` (the head); later indexes do not move. Past the
   * end (e.g. after installing a snapshot) it empties the log and the next append gets `upTo+1`.
   */
  dropHead(upTo: number): Promise<void>;
  firstIndex(): Promise<number>;
  lastIndex(): Promise<number>;
}

export interface SnapshotMeta {
  /** A caller-defined position the snapshot covers (e.g. a Raft index). */
  index: number;
  /** Free-form metadata stored beside the data (e.g. term, membership). */
  meta: Record<string, unknown>;
  createdAt: number;
}

export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

/** Keeps the latest snapshot (older ones may be discarded once a newer one is saved). */
export interface SnapshotStore {
  save(snapshot: { index: number; meta?: Record<string, unknown>; data: Uint8Array }): Promise<void>;
  loadLatest(): Promise<Snapshot | undefined>;
}

/**
 * A backend holds many namespaced stores: `kv("queue/orders")` and `kv("cache")` never see
 * each other's keys. Opening the same name twice returns the same store.
 */
export interface StorageBackend {
  readonly kind: "memory" | "file" | "sqlite";
  kv(namespace: string): KVStore;
  log(namespace: string): AppendLog;
  snapshots(namespace: string): SnapshotStore;
  /**
   * Resolves once every write acknowledged so far is on disk (an fsync), whatever the fsync
   * policy. A no-op for the memory backend.
   */
  flush(): Promise<void>;
  /** Makes every acknowledged write durable according to the fsync policy, then releases files. */
  close(): Promise<void>;
}
