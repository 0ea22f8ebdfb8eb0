/**
 * The SQLite backend (better-sqlite3, WAL journal). Keys are BLOBs compared with memcmp, so
 * scans are plain range comparisons: `%` and `_` are ordinary bytes, never LIKE wildcards.
 *
 * Fsync policies map to SQLite as follows:
 * - `always`: `synchronous=FULL`, one transaction (one commit, one fsync) per write;
 * - `batch`: `synchronous=FULL`, group commit: the first write opens a transaction, each write
 *   runs in its own savepoint inside it (so it stays all-or-nothing), and one COMMIT covers every
 *   write of the group at the end of the event-loop turn (or after `batchDelayMs`) or at
 *   `batchMaxOps` writes; promises resolve after it;
 * - `none`: `synchronous=OFF`, one transaction per write, never fsync'ed (survives a process
 *   crash, not a machine crash).
 */

import fs from "node:fs";
import path from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import type { Database as Db, Statement } from "better-sqlite3";
import { createLogger, type MpregError } from "@mpreg/envelope";
import type {
  AppendLog,
  BatchOp,
  KVEntry,
  KVStore,
  LogEntry,
  RangeOptions,
  Snapshot,
  SnapshotStore,
  StorageBackend,
} from "./interfaces.js";
import type { FsyncPolicy } from "./file.js";
import { prepareDir } from "./dir.js";
import { storageError } from "./errors.js";
import { checkIndex, checkKey, checkValue, storeFor } from "./validate.js";
import { asBuffer, toPlain } from "./bytes.js";
import { resolveBounds } from "./range.js";
import { checkSnapshotInput } from "./snapshot-common.js";
import { decodeValue } from "./wal-codec.js";

const logger = createLogger("persistence");

export interface SqliteBackendOptions {
  /** The data directory; the database is `<dir>/<file>`. */
  dir: string;
  /** Database file name inside `dir` (default `mpreg.sqlite`). */
  file?: string;
  /** Default `batch`. */
  fsync?: FsyncPolicy;
  /**
   * Group-commit window for `batch` (ms). Default 0: the group commits at the end of the current
   * turn of the event loop, which already gathers every writer that is ready; a longer window
   * gathers more per commit at the cost of latency.
   */
  batchDelayMs?: number;
  /** A group commits as soon as it holds this many writes (default 1000). */
  batchMaxOps?: number;
  /**
   * Cap on the bytes on disk: the database file plus its write-ahead log. The WAL gets an
   * allowance (an eighth of `maxBytes`, at least 4 pages, at most 64 MiB) and is checkpointed
   * and truncated after any commit that leaves it larger; the database gets the rest (whole
   * pages). So after every acknowledged write, database + WAL <= `maxBytes` (one transaction in
   * progress may briefly hold more in the WAL). A write that would grow the database past its
   * share fails with a `full` error and changes nothing.
   */
  maxBytes?: number;
  /** Create the directory when missing (default true). */
  createDir?: boolean;
}

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS kv (ns TEXT NOT NULL, k BLOB NOT NULL, v BLOB NOT NULL, PRIMARY KEY (ns, k)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log (ns TEXT NOT NULL, idx INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (ns, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_meta (ns TEXT PRIMARY KEY, first INTEGER NOT NULL, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (ns TEXT PRIMARY KEY, idx INTEGER NOT NULL, meta BLOB NOT NULL, created_at INTEGER NOT NULL, data BLOB NOT NULL);
`;

const openFiles = new Set<string>();

/** What to do when the optional dependency is absent: said by every failed open. */
export const SQLITE_MISSING_HINT =
  "the sqlite backend needs the optional dependency better-sqlite3: install it beside @mpreg/persistence " +
  "(npm install better-sqlite3; it builds a native module: where no prebuilt binary exists, set npm_config_nodedir " +
  "to the Node headers, e.g. npm_config_nodedir=/usr), or use the file backend";

let sqliteModule: Promise<typeof BetterSqlite3> | undefined;

/**
 * better-sqlite3 is an optional dependency (a native module that not every machine can build):
 * loaded on the first open, so the memory and file backends work without it.
 */
function loadSqlite(): Promise<typeof BetterSqlite3> {
  sqliteModule ??= import("better-sqlite3").then(
    (m) => (m as { default: typeof BetterSqlite3 }).default,
    (e: unknown) => {
      sqliteModule = undefined;
      throw storageError("config", SQLITE_MISSING_HINT, { cause: String((e as Error)?.message ?? e) });
    },
  );
  return sqliteModule;
}

interface Waiter {
  resolve(): void;
  reject(e: unknown): void;
}

function sqliteError(e: unknown, what: string, details: Record<string, unknown> = {}): MpregError {
  const code = (e as { code?: string }).code ?? "";
  const msg = `${what}: ${(e as Error).message ?? String(e)}`;
  if (code === "SQLITE_FULL") return storageError("full", msg, { ...details, sqlite: code });
  if (code === "SQLITE_CORRUPT" || code === "SQLITE_NOTADB") return storageError("corrupt", msg, { ...details, sqlite: code });
  if (code === "SQLITE_BUSY" || code === "SQLITE_LOCKED") {
    return storageError("config", `${msg} (is another process using the database?)`, { ...details, sqlite: code });
  }
  return storageError("io", msg, { ...details, sqlite: code });
}

export class SqliteBackend implements StorageBackend {
  readonly kind = "sqlite" as const;
  readonly file: string;
  readonly fsync: FsyncPolicy;
  private readonly db: Db;
  private readonly batchDelayMs: number;
  private readonly batchMaxOps: number;
  private closed = false;
  private failure: MpregError | undefined;
  private groupWaiters: Waiter[] = [];
  private groupTimer: ReturnType<typeof setTimeout> | ReturnType<typeof setImmediate> | undefined;
  private readonly runTxn: (fn: () => unknown) => unknown;
  /** Bytes the WAL may hold after a commit (set with `maxBytes`). */
  private readonly walAllowance: number | undefined;
  private readonly logMeta = new Map<string, { first: number; last: number }>();
  private readonly rangeStmts = new Map<string, Statement>();
  private readonly st: Record<string, Statement>;

  private readonly kvs = new Map<string, KVStore>();
  private readonly logs = new Map<string, AppendLog>();
  private readonly snaps = new Map<string, SnapshotStore>();

  private constructor(file: string, db: Db, o: SqliteBackendOptions, walAllowance: number | undefined) {
    this.file = file;
    this.walAllowance = walAllowance;
    this.db = db;
    this.fsync = o.fsync ?? "batch";
    this.batchDelayMs = o.batchDelayMs ?? 0;
    this.batchMaxOps = o.batchMaxOps ?? 1000;
    this.runTxn = db.transaction((fn: () => unknown) => fn());
    const p = (sql: string) => db.prepare(sql);
    this.st = {
      kvGet: p("SELECT v FROM kv WHERE ns = ? AND k = ?").pluck(),
      kvPut: p("INSERT INTO kv (ns, k, v) VALUES (?, ?, ?) ON CONFLICT (ns, k) DO UPDATE SET v = excluded.v"),
      kvDel: p("DELETE FROM kv WHERE ns = ? AND k = ?"),
      logInsert: p("INSERT OR REPLACE INTO log (ns, idx, data) VALUES (?, ?, ?)"),
      logRead: p("SELECT idx, data FROM log WHERE ns = ? AND idx >= ? AND idx < ? ORDER BY idx"),
      logDelTail: p("DELETE FROM log WHERE ns = ? AND idx >= ?"),
      logDelHead: p("DELETE FROM log WHERE ns = ? AND idx <= ?"),
      metaGet: p("SELECT first, last FROM log_meta WHERE ns = ?"),
      metaPut: p("INSERT OR REPLACE INTO log_meta (ns, first, last) VALUES (?, ?, ?)"),
      snapPut: p("INSERT OR REPLACE INTO snapshots (ns, idx, meta, created_at, data) VALUES (?, ?, ?, ?, ?)"),
      snapGet: p("SELECT idx, meta, created_at, data FROM snapshots WHERE ns = ?"),
    };
  }

  /** Opens (creating if needed) `<dir>/<file>`. */
  static async open(opts: SqliteBackendOptions): Promise<SqliteBackend> {
    const Database = await loadSqlite();
    const dir = await prepareDir(opts.dir, opts.createDir ?? true);
    const file = path.join(dir, opts.file ?? "mpreg.sqlite");
    if (openFiles.has(file)) throw storageError("config", `database ${file} is already open in this process`, { file });
    let db: Db | undefined;
    try {
      db = new Database(file);
      db.pragma("journal_mode = WAL");
      // Exclusive locking: a second process gets a clear "busy" error instead of sharing the
      // database behind this process's cached log positions.
      db.pragma("locking_mode = EXCLUSIVE");
      db.pragma(`synchronous = ${opts.fsync === "none" ? "OFF" : "FULL"}`);
      const version = db.pragma("user_version", { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        throw storageError("config", `database ${file} has schema version ${version}, newer than this code (${SCHEMA_VERSION})`, { file });
      }
      db.exec(SCHEMA);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
      let walAllowance: number | undefined;
      if (opts.maxBytes !== undefined) {
        const pageSize = db.pragma("page_size", { simple: true }) as number;
        walAllowance = Math.min(64 * 1024 * 1024, Math.max(4 * pageSize, Math.floor(opts.maxBytes / 8)));
        db.pragma(`max_page_count = ${Math.max(1, Math.floor((opts.maxBytes - walAllowance) / pageSize))}`);
        // Checkpoint well before the allowance (frames carry a 24-byte header); after a
        // checkpoint the WAL file is cut back to the allowance.
        db.pragma(`wal_autocheckpoint = ${Math.max(1, Math.floor(walAllowance / (pageSize + 24) / 2))}`);
        db.pragma(`journal_size_limit = ${walAllowance}`);
      }
      const be = new SqliteBackend(file, db, opts, walAllowance);
      openFiles.add(file);
      return be;
    } catch (e) {
      db?.close();
      if ((e as MpregError).name === "MpregError") throw e;
      throw sqliteError(e, `cannot open database ${file}`, { file });
    }
  }

  // ---------------------------------------------------------------- writes

  private checkOpen(): void {
    if (this.closed) throw storageError("closed", "storage backend is closed", { file: this.file });
  }

  private checkWritable(): void {
    this.checkOpen();
    if (this.failure) throw this.failure;
  }

  /**
   * Runs `fn` atomically (a transaction, or a savepoint inside the open group) and resolves
   * once it is committed per the policy. `fn` runs synchronously, before this returns.
   */
  private write<T>(fn: () => T): Promise<T> {
    try {
      this.checkWritable();
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.fsync !== "batch") {
      try {
        const result = this.runTxn(fn) as T;
        this.capWal();
        return Promise.resolve(result);
      } catch (e) {
        return Promise.reject(this.mapError(e));
      }
    }
    if (!this.db.inTransaction) {
      try {
        this.db.exec("BEGIN IMMEDIATE");
      } catch (e) {
        return Promise.reject(this.mapError(e));
      }
      // Delay 0: commit once the current turn of the event loop is over, which is when every
      // writer woken by the previous commit has queued its next write.
      this.groupTimer =
        this.batchDelayMs === 0 ? setImmediate(() => this.commitGroup()) : setTimeout(() => this.commitGroup(), this.batchDelayMs);
    }
    let result: T;
    try {
      result = this.runTxn(fn) as T;
    } catch (e) {
      const err = this.mapError(e);
      if (!this.db.inTransaction) {
        // SQLite rolled back the whole group (e.g. an I/O error): nobody in it is durable.
        this.fail(err);
        this.rejectGroup(this.failure!);
      }
      return Promise.reject(err);
    }
    return new Promise<T>((resolve, reject) => {
      this.groupWaiters.push({ resolve: () => resolve(result), reject });
      if (this.groupWaiters.length >= this.batchMaxOps) this.commitGroup();
    });
  }

  private commitGroup(): void {
    this.clearGroupTimer();
    if (!this.db.inTransaction) return;
    const waiters = this.groupWaiters.splice(0);
    try {
      this.db.exec("COMMIT");
      this.capWal();
    } catch (e) {
      this.fail(this.mapError(e));
      if (this.db.inTransaction) this.db.exec("ROLLBACK");
      for (const w of waiters) w.reject(this.failure);
      return;
    }
    for (const w of waiters) w.resolve();
  }

  /**
   * With `maxBytes`: after a commit, a WAL larger than its allowance is checkpointed into the
   * database and truncated, so database + WAL stays within `maxBytes` (see the option).
   */
  private capWal(): void {
    if (this.walAllowance === undefined) return;
    let size = 0;
    try {
      size = fs.statSync(`${this.file}-wal`).size;
    } catch {
      return; // no WAL file (yet)
    }
    if (size > this.walAllowance) this.db.pragma("wal_checkpoint(TRUNCATE)");
  }

  private clearGroupTimer(): void {
    if (this.groupTimer === undefined) return;
    if (this.batchDelayMs === 0) clearImmediate(this.groupTimer as ReturnType<typeof setImmediate>);
    else clearTimeout(this.groupTimer as ReturnType<typeof setTimeout>);
    this.groupTimer = undefined;
  }

  private rejectGroup(err: unknown): void {
    this.clearGroupTimer();
    for (const w of this.groupWaiters.splice(0)) w.reject(err);
  }

  private mapError(e: unknown): MpregError {
    // A failed write may have left cached log positions ahead of the database: reload them.
    this.logMeta.clear();
    if ((e as MpregError).name === "MpregError") return e as MpregError;
    return sqliteError(e, "database write failed", { file: this.file });
  }

  private fail(err: MpregError): void {
    if (this.failure) return;
    this.failure = storageError("failed", `storage failed and stopped accepting writes (reopen to recover): ${err.message}`, {
      ...err.details,
      file: this.file,
    });
    // Cached log positions may describe rolled-back writes.
    this.logMeta.clear();
    logger.error(this.failure.message);
  }

  private read<T>(fn: () => T): Promise<T> {
    try {
      this.checkOpen();
      return Promise.resolve(fn());
    } catch (e) {
      return Promise.reject((e as MpregError).name === "MpregError" ? e : sqliteError(e, "database read failed", { file: this.file }));
    }
  }

  // ---------------------------------------------------------------- key-value

  private kvBatch(ns: string, ops: readonly BatchOp[]): Promise<void> {
    if (!Array.isArray(ops)) return Promise.reject(storageError("invalid", "batch expects an array of operations"));
    const checked: Array<{ k: Buffer; v?: Buffer }> = [];
    try {
      for (const op of ops) {
        if (op?.type === "put") checked.push({ k: asBuffer(checkKey(op.key)), v: asBuffer(checkValue(op.value)) });
        else if (op?.type === "del") checked.push({ k: asBuffer(checkKey(op.key)) });
        else throw storageError("invalid", 'batch operation type must be "put" or "del"');
      }
    } catch (e) {
      return Promise.reject(e);
    }
    if (checked.length === 0) return this.read(() => undefined);
    return this.write(() => {
      for (const o of checked) {
        if (o.v === undefined) this.st.kvDel!.run(ns, o.k);
        else this.st.kvPut!.run(ns, o.k, o.v);
      }
    });
  }

  private kvRange(ns: string, opts: RangeOptions | undefined): Promise<KVEntry[]> {
    return this.read(() => {
      const b = resolveBounds(opts);
      if (b.empty) return [];
      const shape = `${b.lo ? 1 : 0}${b.hi ? 1 : 0}${b.reverse ? 1 : 0}`;
      let stmt = this.rangeStmts.get(shape);
      if (stmt === undefined) {
        const where = ["ns = ?"];
        if (b.lo) where.push("k >= ?");
        if (b.hi) where.push("k < ?");
        stmt = this.db.prepare(`SELECT k, v FROM kv WHERE ${where.join(" AND ")} ORDER BY k ${b.reverse ? "DESC" : "ASC"} LIMIT ?`);
        this.rangeStmts.set(shape, stmt);
      }
      const args: unknown[] = [ns];
      if (b.lo) args.push(asBuffer(b.lo));
      if (b.hi) args.push(asBuffer(b.hi));
      args.push(b.limit ?? -1);
      return (stmt.all(...args) as Array<{ k: Buffer; v: Buffer }>).map((r) => ({ key: toPlain(r.k), value: toPlain(r.v) }));
    });
  }

  // ---------------------------------------------------------------- logs

  private meta(ns: string): { first: number; last: number } {
    let m = this.logMeta.get(ns);
    if (m === undefined) {
      const row = this.st.metaGet!.get(ns) as { first: number; last: number } | undefined;
      m = row ? { first: row.first, last: row.last } : { first: 1, last: 0 };
      this.logMeta.set(ns, m);
    }
    return m;
  }

  private async logAppend(ns: string, records: readonly Uint8Array[]): Promise<number> {
    if (!Array.isArray(records)) throw storageError("invalid", "append expects an array of records");
    const bufs = records.map((r) => Buffer.from(checkValue(r, "record")));
    this.checkWritable();
    const m = this.meta(ns);
    if (bufs.length === 0) return m.last + 1;
    const first = m.last + 1;
    const last = m.last + bufs.length;
    // The cache moves only when the statements succeeded (inside the same savepoint).
    await this.write(() => {
      for (let i = 0; i < bufs.length; i++) this.st.logInsert!.run(ns, first + i, bufs[i]);
      this.st.metaPut!.run(ns, m.first, last);
      m.last = last;
    });
    return first;
  }

  private async logTruncate(ns: string, from: number): Promise<void> {
    checkIndex(from, "from");
    this.checkWritable();
    const m = this.meta(ns);
    if (from > m.last) return;
    const first = from < m.first ? from : m.first;
    await this.write(() => {
      this.st.logDelTail!.run(ns, from);
      this.st.metaPut!.run(ns, first, from - 1);
      m.first = first;
      m.last = from - 1;
    });
  }

  private async logDrop(ns: string, upTo: number): Promise<void> {
    checkIndex(upTo, "upTo", 0);
    this.checkWritable();
    const m = this.meta(ns);
    if (upTo < m.first) return;
    const last = Math.max(m.last, upTo);
    await this.write(() => {
      this.st.logDelHead!.run(ns, upTo);
      this.st.metaPut!.run(ns, upTo + 1, last);
      m.first = upTo + 1;
      m.last = last;
    });
  }

  private logRead(ns: string, from: number, to: number | undefined): Promise<LogEntry[]> {
    return this.read(() => {
      checkIndex(from, "from");
      if (to !== undefined) checkIndex(to, "to");
      const m = this.meta(ns);
      const end = Math.min(to ?? m.last + 1, m.last + 1);
      const start = Math.max(from, m.first);
      if (start >= end) return [];
      return (this.st.logRead!.all(ns, start, end) as Array<{ idx: number; data: Buffer }>).map((r) => ({
        index: r.idx,
        data: toPlain(r.data),
      }));
    });
  }

  // ---------------------------------------------------------------- stores

  kv(namespace: string): KVStore {
    return storeFor(this.kvs, namespace, (ns) => {
      return {
        get: (key) =>
          this.read(() => {
            const v = this.st.kvGet!.get(ns, asBuffer(checkKey(key))) as Buffer | undefined;
            return v === undefined ? undefined : toPlain(v);
          }),
        put: (key, value) => this.kvBatch(ns, [{ type: "put", key, value }]),
        del: (key) => this.kvBatch(ns, [{ type: "del", key }]),
        batch: (ops) => this.kvBatch(ns, ops),
        range: (opts) => this.kvRange(ns, opts),
      };
    });
  }

  log(namespace: string): AppendLog {
    return storeFor(this.logs, namespace, (ns) => {
      return {
        append: (records) => this.logAppend(ns, records),
        read: (from, to) => this.logRead(ns, from, to),
        truncateTail: (from) => this.logTruncate(ns, from),
        dropHead: (upTo) => this.logDrop(ns, upTo),
        firstIndex: () => this.read(() => this.meta(ns).first),
        lastIndex: () => this.read(() => this.meta(ns).last),
      };
    });
  }

  snapshots(namespace: string): SnapshotStore {
    return storeFor(this.snaps, namespace, (ns) => {
      return {
        save: async (input) => {
          const v = checkSnapshotInput(input);
          await this.write(() => this.st.snapPut!.run(ns, v.index, asBuffer(v.metaBytes), Date.now(), asBuffer(v.data)));
        },
        loadLatest: () =>
          this.read((): Snapshot | undefined => {
            const row = this.st.snapGet!.get(ns) as { idx: number; meta: Buffer; created_at: number; data: Buffer } | undefined;
            if (row === undefined) return undefined;
            return {
              meta: { index: row.idx, meta: decodeValue(row.meta) as Record<string, unknown>, createdAt: row.created_at },
              data: toPlain(row.data),
            };
          }),
      };
    });
  }

  // ---------------------------------------------------------------- lifecycle

  async flush(): Promise<void> {
    this.checkWritable();
    this.commitGroup();
    if (this.failure) throw this.failure;
    if (this.fsync === "none") {
      try {
        this.db.pragma("synchronous = FULL");
        this.db.pragma("wal_checkpoint(FULL)");
        this.db.pragma("synchronous = OFF");
      } catch (e) {
        throw sqliteError(e, "cannot flush the database", { file: this.file });
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.failure) this.commitGroup();
    else this.rejectGroup(this.failure);
    if (this.db.inTransaction) this.db.exec("ROLLBACK");
    try {
      if (this.fsync === "none" && !this.failure) this.db.pragma("synchronous = FULL");
      this.db.close();
    } finally {
      openFiles.delete(this.file);
    }
  }
}
