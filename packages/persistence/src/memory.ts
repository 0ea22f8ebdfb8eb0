/** The memory backend: the default for tests and for nodes without a data directory. */

import type { AppendLog, KVStore, Snapshot, SnapshotStore, StorageBackend } from "./interfaces.js";
import { MemState, type StateOp } from "./state.js";
import { StateKV, StateLog, type StateHost } from "./state-stores.js";
import { storeFor } from "./validate.js";
import { storageError } from "./errors.js";
import { checkSnapshotInput } from "./snapshot-common.js";
import { copyBytes } from "./bytes.js";
import { decode, encode } from "@msgpack/msgpack";

/**
 * The contents of a memory backend. Passing the same volume to a new MemoryBackend "reopens"
 * it, which lets tests exercise close-and-reopen without a disk.
 */
export class MemoryVolume {
  readonly state = new MemState();
  readonly snapshots = new Map<string, Snapshot>();
  /** Set while a backend has the volume open (one at a time, like a directory lock). */
  inUse = false;
}

export interface MemoryBackendOptions {
  /** The storage to use (a fresh one by default). */
  volume?: MemoryVolume;
  /**
   * Cap on the approximate bytes held (keys, values, log records, snapshot data, plus 64 bytes
   * per entry). A write that would pass it fails with a `full` error and changes nothing.
   * Unbounded when absent.
   */
  maxBytes?: number;
}

export class MemoryBackend implements StorageBackend, StateHost {
  readonly kind = "memory" as const;
  readonly volume: MemoryVolume;
  private readonly maxBytes: number;
  private closed = false;
  private readonly kvs = new Map<string, KVStore>();
  private readonly logs = new Map<string, AppendLog>();
  private readonly snaps = new Map<string, SnapshotStore>();

  constructor(opts: MemoryBackendOptions = {}) {
    this.volume = opts.volume ?? new MemoryVolume();
    if (this.volume.inUse) throw storageError("config", "this memory volume is already open");
    this.volume.inUse = true;
    this.maxBytes = opts.maxBytes ?? Infinity;
  }

  get state(): MemState {
    return this.volume.state;
  }

  checkOpen(): void {
    if (this.closed) throw storageError("closed", "storage backend is closed");
  }

  async commit(build: () => StateOp | undefined): Promise<void> {
    this.checkOpen();
    const op = build();
    if (op === undefined) return;
    if (this.maxBytes !== Infinity) this.checkRoom(addedBytes(op));
    this.state.apply(op);
  }

  private snapshotBytes(): number {
    let n = 0;
    for (const s of this.volume.snapshots.values()) n += s.data.length;
    return n;
  }

  private checkRoom(added: number): void {
    const used = this.state.bytes + this.snapshotBytes();
    if (used + added > this.maxBytes) {
      throw storageError("full", `storage is full: ${used} of ${this.maxBytes} bytes used, write needs ${added}`, {
        used,
        maxBytes: this.maxBytes,
        needed: added,
      });
    }
  }

  kv(namespace: string): KVStore {
    return storeFor(this.kvs, namespace, (ns) => new StateKV(this, ns));
  }

  log(namespace: string): AppendLog {
    return storeFor(this.logs, namespace, (ns) => new StateLog(this, ns));
  }

  snapshots(namespace: string): SnapshotStore {
    return storeFor(this.snaps, namespace, (ns) => {
      return {
        save: async (input) => {
          const v = checkSnapshotInput(input);
          this.checkOpen();
          const old = this.volume.snapshots.get(ns)?.data.length ?? 0;
          if (this.maxBytes !== Infinity && v.data.length > old) this.checkRoom(v.data.length - old);
          this.volume.snapshots.set(ns, { meta: { index: v.index, meta: v.meta, createdAt: Date.now() }, data: v.data });
        },
        loadLatest: async () => {
          this.checkOpen();
          const snap = this.volume.snapshots.get(ns);
          if (snap === undefined) return undefined;
          // Copies, so a caller changing the result cannot change what is stored.
          const meta = decode(encode(snap.meta.meta)) as Record<string, unknown>;
          return { meta: { ...snap.meta, meta }, data: copyBytes(snap.data) };
        },
      };
    });
  }

  async flush(): Promise<void> {
    this.checkOpen();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.volume.inUse = false;
  }
}

/** Upper bound of the bytes an op adds (removals are not subtracted: the check is conservative). */
function addedBytes(op: StateOp): number {
  switch (op.t) {
    case "kv": {
      let n = 0;
      for (const o of op.ops) if (o.v !== undefined) n += o.k.length + o.v.length + 64;
      return n;
    }
    case "append": {
      let n = 0;
      for (const r of op.records) n += r.length + 64;
      return n;
    }
    default:
      return 0;
  }
}
