/**
 * The file backend: every change is a framed record in one write-ahead log shared by all
 * namespaces; the live data is held in memory and compacted into a state file from time to time.
 *
 * Directory layout (`<gen>` is a zero-padded generation number):
 * - `state-<gen>.snap`: the whole state as of the start of generation `gen` (absent for gen 0);
 * - `wal-<gen>.log`: the records written since that state file;
 * - `snap-<hash>.bin`: the latest SnapshotStore snapshot of one namespace;
 * - `LOCK`: the pid of the process that has the directory open;
 * - `*.tmp`: files being written; removed on open.
 * Compaction writes `state-<gen+1>.snap` atomically (temp file, fsync, rename, fsync directory),
 * then starts `wal-<gen+1>.log` and deletes the previous generation.
 */

import path from "node:path";
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import { createLogger, type MpregError } from "@mpreg/envelope";
import type { AppendLog, KVStore, Snapshot, SnapshotStore, StorageBackend } from "./interfaces.js";
import { MemState, type StateOp } from "./state.js";
import { StateKV, StateLog, type StateHost } from "./state-stores.js";
import { MAX_SNAPSHOT_BYTES, storeFor } from "./validate.js";
import { ioError, storageError } from "./errors.js";
import { DAMAGE_SCAN_BYTES, encodeFrame, findIntactFrame, FRAME_HEADER_BYTES, intactFrameAt, readFrame } from "./frame.js";
import { decodeOp, decodeValue, encodeOp, encodeValue } from "./wal-codec.js";
import { fsyncDir, prepareDir, writeFully } from "./dir.js";
import { nodeFileSystem, type FileSystem, type FileSystemHandle } from "./file-system.js";
import { checkSnapshotInput } from "./snapshot-common.js";
import { stringToKey, toPlain } from "./bytes.js";

const logger = createLogger("persistence");

/**
 * When an acknowledged write is on disk:
 * - `always`: each write is written and fdatasync'ed on its own before its promise resolves;
 * - `batch`: group commit: writes that arrive together share one write and one fdatasync
 *   (a group closes after `batchDelayMs` or at `batchMaxBytes`; the delay is only spent when
 *   writes are concurrent, a lone writer goes straight to disk); a promise resolves only after
 *   the fdatasync that covers it, so the guarantee equals `always`, with more latency for a lone
 *   writer and far more throughput for concurrent ones;
 * - `none`: a write's promise resolves once the bytes are handed to the operating system; they
 *   survive a crash of the process but not of the machine (power loss, kernel panic).
 */
export type FsyncPolicy = "always" | "batch" | "none";

export interface FileBackendOptions {
  /** The data directory. */
  dir: string;
  /** Default `batch`. */
  fsync?: FsyncPolicy;
  /** Group-commit window for `batch` (ms, default 2; 0 = share only what queued meanwhile). */
  batchDelayMs?: number;
  /** A group is written as soon as it holds this many bytes (default 1 MiB). */
  batchMaxBytes?: number;
  /**
   * Cap on the bytes the backend keeps on disk (state file, log, snapshots). A write that would
   * pass it fails with a `full` error and changes nothing (a compaction is tried first).
   */
  maxBytes?: number;
  /** Compact once the log holds this many bytes and more than the state file (default 64 MiB). */
  compactBytes?: number;
  /** Writes waiting for the disk beyond this many bytes are refused with `busy` (default 64 MiB). */
  maxQueuedBytes?: number;
  /** Create the directory when missing (default true). */
  createDir?: boolean;
  /**
   * Damage in the middle of the log (intact records after a bad one), or a damaged log header,
   * makes open fail with a `corrupt` error unless this is true; then the log is cut at the
   * damage (losing what follows; a damaged header loses the whole log). A torn tail (nothing
   * intact after the damage) is always cut. The error names this option and the `mpreg start
   * --repair-wal` flag that sets it.
   */
  repair?: boolean;
  /**
   * The file system every file operation goes through (the log, state and snapshot files, the
   * LOCK file, directory fsyncs). For fault-injection tests (e.g. a simulated power loss);
   * default the real file system.
   */
  fs?: FileSystem;
}

/** What open found and did. */
export interface RecoveryReport {
  generation: number;
  /** Records replayed from the log. */
  records: number;
  /** Bytes cut from the end of the log (a torn or damaged tail). */
  truncatedBytes: number;
  /** Why the cut happened, when it did. */
  stop?: "incomplete" | "bad-length" | "bad-crc" | "undecodable";
}

interface Waiter {
  resolve(): void;
  reject(e: unknown): void;
}

interface Pending extends Waiter {
  frame: Buffer;
}

const WAL_MAGIC = "mpreg-wal";
/**
 * How a user asks for repair, named in damage errors: the backend option and the `mpreg start`
 * flag that sets it (an operator reads these messages in a log, not in code).
 */
const REPAIR_HOW = "Restart with --repair-wal (mpreg start), or open the storage with repair: true,";
const STATE_MAGIC = "mpreg-state";
const SNAP_MAGIC = "mpreg-snapshot";
const FORMAT_VERSION = 1;
/** Chunk size of a state file (one frame per chunk). */
const STATE_CHUNK_BYTES = 1024 * 1024;

/** Directories open in this process, per file system (the same path on two is two directories). */
const openDirs = new WeakMap<FileSystem, Set<string>>();
function openDirsOf(fs: FileSystem): Set<string> {
  let s = openDirs.get(fs);
  if (s === undefined) openDirs.set(fs, (s = new Set()));
  return s;
}

const genName = (prefix: string, gen: number, ext: string) => `${prefix}-${String(gen).padStart(12, "0")}.${ext}`;
const parseGen = (name: string, prefix: string, ext: string): number | undefined => {
  const m = new RegExp(`^${prefix}-(\\d{12})\\.${ext}$`).exec(name);
  return m ? Number(m[1]) : undefined;
};

function settle(ws: Waiter[], err?: unknown): void {
  for (const w of ws) (err === undefined ? w.resolve() : w.reject(err));
}

let cachedBootId: string | undefined;
/** This boot of the machine (Linux), so a lock left before a reboot is known to be stale. */
function bootId(): string {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim() || "-";
    } catch {
      cachedBootId = "-"; // not Linux: pids alone decide
    }
  }
  return cachedBootId;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export class FileBackend implements StorageBackend, StateHost {
  readonly kind = "file" as const;
  readonly state = new MemState();
  readonly dir: string;
  readonly fsync: FsyncPolicy;
  private readonly fs: FileSystem;
  /** Filled by open(). */
  recovery: RecoveryReport = { generation: 0, records: 0, truncatedBytes: 0 };

  private readonly batchDelayMs: number;
  private readonly batchMaxBytes: number;
  private readonly maxBytes: number;
  private readonly compactBytes: number;
  private readonly maxQueuedBytes: number;

  private gen = 0;
  private wal!: FileSystemHandle;
  private walBytes = 0;
  private stateBytes = 0;
  private readonly snapFileBytes = new Map<string, number>();
  private snapChain: Promise<unknown> = Promise.resolve();

  private queue: Pending[] = [];
  private queuedBytes = 0;
  private running = false;
  private loopDone: Promise<void> = Promise.resolve();
  private walHeaderBytes = 0;
  private lastGroupSize = 0;
  private wake: (() => void) | undefined;
  private syncWaiters: Waiter[] = [];
  private compactWaiters: Waiter[] = [];
  private failure: MpregError | undefined;
  private closed = false;

  private readonly kvs = new Map<string, KVStore>();
  private readonly logs = new Map<string, AppendLog>();
  private readonly snaps = new Map<string, SnapshotStore>();

  private constructor(dir: string, o: FileBackendOptions) {
    this.dir = dir;
    this.fsync = o.fsync ?? "batch";
    this.fs = o.fs ?? nodeFileSystem;
    this.batchDelayMs = o.batchDelayMs ?? 2;
    this.batchMaxBytes = o.batchMaxBytes ?? 1024 * 1024;
    this.maxBytes = o.maxBytes ?? Infinity;
    this.compactBytes = o.compactBytes ?? 64 * 1024 * 1024;
    this.maxQueuedBytes = o.maxQueuedBytes ?? 64 * 1024 * 1024;
  }

  /** Opens (creating if needed) the backend in `opts.dir` and replays its log. */
  static async open(opts: FileBackendOptions): Promise<FileBackend> {
    const fs = opts.fs ?? nodeFileSystem;
    const dir = await prepareDir(opts.dir, opts.createDir ?? true, fs);
    const openHere = openDirsOf(fs);
    if (openHere.has(dir)) throw storageError("config", `data directory ${dir} is already open in this process`, { dir });
    openHere.add(dir);
    const be = new FileBackend(dir, opts);
    try {
      await be.lock();
      await be.recover(opts.repair === true);
    } catch (e) {
      openHere.delete(dir);
      await be.wal?.close().catch(() => undefined);
      await fs.unlink(path.join(dir, "LOCK")).catch(() => undefined);
      throw e;
    }
    return be;
  }

  // ---------------------------------------------------------------- open and recovery

  private async lock(): Promise<void> {
    const lockPath = path.join(this.dir, "LOCK");
    try {
      // "<pid> <boot id>"; a bare pid (older versions) is checked by pid alone. A lock from an
      // earlier boot is stale even when its pid now belongs to some other live process.
      const m = /^(\d+)(?: (\S+))?\s*$/.exec((await this.fs.readFile(lockPath)).toString("utf8"));
      const pid = m ? Number(m[1]) : NaN;
      const sameBoot = m?.[2] === undefined || m[2] === bootId();
      if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && sameBoot && pidAlive(pid)) {
        throw storageError("config", `data directory ${this.dir} is in use by process ${pid}`, { dir: this.dir, pid });
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") {
        if ((e as MpregError).name === "MpregError") throw e;
        throw ioError(`cannot read ${lockPath}`, e);
      }
    }
    // Written aside, synced and renamed, so a power cut never leaves a torn pid (which could
    // name a live process and lock the directory for good).
    const tmp = `${lockPath}.tmp`;
    const fh = await this.fs.open(tmp, "w");
    try {
      await writeFully(fh, Buffer.from(`${process.pid} ${bootId()}\n`), 0);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await this.fs.rename(tmp, lockPath);
  }

  private async recover(repair: boolean): Promise<void> {
    const names = await this.fs.readdir(this.dir);
    for (const n of names) if (n.endsWith(".tmp")) await this.fs.unlink(path.join(this.dir, n));
    const stateGens = names.map((n) => parseGen(n, "state", "snap")).filter((g): g is number => g !== undefined);
    const walGens = names.map((n) => parseGen(n, "wal", "log")).filter((g): g is number => g !== undefined);
    this.gen = Math.max(0, ...stateGens);
    const newerWal = walGens.find((g) => g > this.gen);
    if (newerWal !== undefined) {
      throw storageError("corrupt", `log ${genName("wal", newerWal, "log")} has no state file ${genName("state", newerWal, "snap")}`, {
        dir: this.dir,
      });
    }
    if (this.gen > 0) await this.loadStateFile(path.join(this.dir, genName("state", this.gen, "snap")));
    // Older generations are fully covered by the newest state file.
    for (const g of stateGens) if (g < this.gen) await this.fs.unlink(path.join(this.dir, genName("state", g, "snap")));
    for (const g of walGens) if (g < this.gen) await this.fs.unlink(path.join(this.dir, genName("wal", g, "log")));

    const walPath = path.join(this.dir, genName("wal", this.gen, "log"));
    if (walGens.includes(this.gen)) await this.replayWal(walPath, repair);
    else await this.createWal(walPath, this.gen);

    for (const n of names) {
      if (n.startsWith("snap-") && n.endsWith(".bin")) {
        this.snapFileBytes.set(n, (await this.fs.stat(path.join(this.dir, n))).size);
      }
    }
  }

  private async loadStateFile(file: string): Promise<void> {
    let buf: Buffer;
    try {
      buf = await this.fs.readFile(file);
    } catch (e) {
      throw ioError(`cannot read state file ${file}`, e);
    }
    this.stateBytes = buf.length;
    const corrupt = (why: string) =>
      storageError("corrupt", `state file ${file} is damaged (${why}); restore it from a backup`, { file });
    let off = 0;
    let frames = 0;
    let ended = false;
    while (off < buf.length) {
      const f = readFrame(buf, off);
      if (typeof f === "string") throw corrupt(f);
      off = f.end;
      const v = decodeValue(f.payload);
      if (!Array.isArray(v)) throw corrupt("bad chunk");
      if (frames === 0) {
        if (v[0] !== STATE_MAGIC || v[1] !== FORMAT_VERSION) throw corrupt("not an MPREG state file");
      } else if (v[0] === "end") {
        if (v[1] !== frames || off !== buf.length) throw corrupt("bad end marker");
        ended = true;
      } else if (v[0] === 1 && typeof v[1] === "string" && Array.isArray(v[2])) {
        const flat = v[2] as unknown[];
        const ops: Array<{ k: Uint8Array; v: Uint8Array }> = [];
        for (let i = 0; i + 1 < flat.length; i += 2) {
          const k = flat[i];
          const val = flat[i + 1];
          if (!(k instanceof Uint8Array) || !(val instanceof Uint8Array)) throw corrupt("bad key-value chunk");
          ops.push({ k: k.slice(), v: val.slice() });
        }
        this.state.apply({ t: "kv", ns: v[1], ops });
      } else if (v[0] === 2 && typeof v[1] === "string" && typeof v[2] === "number" && typeof v[3] === "number") {
        if (v[2] > 1) this.state.apply({ t: "drop", ns: v[1], upTo: v[2] - 1 });
        else this.state.logTable(v[1]);
      } else if (v[0] === 3 && typeof v[1] === "string" && typeof v[2] === "number" && Array.isArray(v[3])) {
        const records = (v[3] as unknown[]).map((r) => {
          if (!(r instanceof Uint8Array)) throw corrupt("bad log chunk");
          return r.slice();
        });
        this.state.apply({ t: "append", ns: v[1], first: v[2], records });
      } else {
        throw corrupt("unknown chunk");
      }
      frames++;
    }
    if (!ended) throw corrupt("missing end marker");
  }

  private async createWal(file: string, gen: number): Promise<FileSystemHandle> {
    const fh = await this.fs.open(file, "w+");
    const header = encodeFrame(encodeValue([WAL_MAGIC, FORMAT_VERSION, gen]));
    await writeFully(fh, header, 0);
    await fh.datasync();
    await fsyncDir(this.dir, this.fs);
    this.wal = fh;
    this.walBytes = header.length;
    this.walHeaderBytes = header.length;
    return fh;
  }

  private async replayWal(file: string, repair: boolean): Promise<void> {
    const buf = await this.fs.readFile(file);
    let off = 0;
    let records = 0;
    let stop: RecoveryReport["stop"];
    const midLogDamage = (at: number, next: number) =>
      storageError(
        "corrupt",
        `log ${file} is damaged at byte ${at} with intact records after it (at byte ${next}). ${REPAIR_HOW} to cut the log at byte ${at}, ` +
          `losing the records after it (they are not cut silently); or restore the directory from a backup`,
        { file, offset: at, intact_at: next, repair_option: "repair" },
      );
    while (off < buf.length) {
      const f = readFrame(buf, off);
      if (typeof f === "string") {
        // The header is synced before any record is written, so a bad header in front of more
        // bytes than a header takes is damage (or a foreign file), not a torn creation.
        if (off === 0 && buf.length > 64 && !repair) {
          throw storageError(
            "corrupt",
            `${file} is not an MPREG write-ahead log or its header is damaged. ${REPAIR_HOW} to discard this log ` +
              `(every write since the last state file is lost); or restore the directory from a backup`,
            { file, repair_option: "repair" },
          );
        }
        // Damage followed by an intact record is not a torn write: refuse to guess. A bad CRC
        // leaves the length trustworthy enough to look right after the frame; a damaged length
        // (impossible, or running past the end) means scanning on for any intact record.
        if (off > 0 && !repair) {
          const claimed = f === "bad-crc" ? off + FRAME_HEADER_BYTES + buf.readUInt32LE(off) : -1;
          const next =
            claimed >= 0 && claimed < buf.length && intactFrameAt(buf, claimed)
              ? claimed
              : findIntactFrame(buf, off + 1, DAMAGE_SCAN_BYTES, isMsgpackArrayStart);
          if (next >= 0) throw midLogDamage(off, next);
        }
        stop = f;
        break;
      }
      if (off === 0) {
        this.walHeaderBytes = f.end;
        let h: unknown;
        try {
          h = decodeValue(f.payload);
        } catch {
          h = undefined;
        }
        if (!Array.isArray(h) || h[0] !== WAL_MAGIC || h[1] !== FORMAT_VERSION) {
          // Eight zero bytes are an intact frame (empty payload, CRC 0): what a file extended
          // but not yet written reads as after a power cut. With no room for a record after
          // it, this is a torn creation like any other: rebuild it.
          if (buf.length <= 64) {
            stop = "undecodable";
            break;
          }
          throw storageError("corrupt", `${file} is not an MPREG write-ahead log`, { file });
        }
      } else {
        let op: StateOp;
        try {
          op = decodeOp(f.payload);
        } catch {
          // An intact checksum over an undecodable payload: a foreign or damaged record, or
          // zeros (8 zero bytes are an intact empty frame: a block whose data never reached
          // the disk). Same rule as any damage: intact records after it mean the middle.
          if (!repair) {
            const next = findIntactFrame(buf, off + 1, DAMAGE_SCAN_BYTES, isMsgpackArrayStart);
            if (next >= 0) throw midLogDamage(off, next);
          }
          stop = "undecodable";
          break;
        }
        this.state.apply(op);
        records++;
      }
      off = f.end;
    }
    this.recovery = { generation: this.gen, records, truncatedBytes: buf.length - off, ...(stop ? { stop } : {}) };
    if (off === 0) {
      // Not even the header survived (a crash while creating the file): start it again.
      await this.createWal(file, this.gen);
    } else {
      this.wal = await this.fs.open(file, "r+");
      this.walBytes = off;
      if (off < buf.length) {
        await this.wal.truncate(off);
        await this.wal.datasync();
      }
    }
    if (buf.length - off > 0) {
      logger.warn(`${file}: cut ${buf.length - off} bytes of torn or damaged tail (${stop}) after ${records} records`);
    }
  }

  // ---------------------------------------------------------------- writes

  checkOpen(): void {
    if (this.closed) throw storageError("closed", "storage backend is closed", { dir: this.dir });
  }

  private checkWritable(): void {
    this.checkOpen();
    if (this.failure) throw this.failure;
  }

  private usedBytes(): number {
    let snaps = 0;
    for (const n of this.snapFileBytes.values()) snaps += n;
    return this.stateBytes + this.walBytes + this.queuedBytes + snaps;
  }

  private fullError(needed: number): MpregError {
    const used = this.usedBytes();
    return storageError("full", `storage is full: ${used} of ${this.maxBytes} bytes used, write needs ${needed}`, {
      dir: this.dir,
      used,
      maxBytes: this.maxBytes,
      needed,
    });
  }

  async commit(build: () => StateOp | undefined): Promise<void> {
    this.checkWritable();
    let op = build();
    if (op === undefined) return;
    let frame = encodeFrame(encodeOp(op));
    if (this.usedBytes() + frame.length > this.maxBytes) {
      if (this.walBytes + this.queuedBytes <= this.walHeaderBytes) throw this.fullError(frame.length);
      // Compaction may free the space taken by overwritten and deleted data.
      await this.compact();
      this.checkWritable();
      op = build();
      if (op === undefined) return;
      frame = encodeFrame(encodeOp(op));
      if (this.usedBytes() + frame.length > this.maxBytes) throw this.fullError(frame.length);
    }
    if (this.queue.length > 0 && this.queuedBytes + frame.length > this.maxQueuedBytes) {
      throw storageError("busy", `too many writes waiting for the disk (${this.queuedBytes} bytes queued)`, {
        dir: this.dir,
        queuedBytes: this.queuedBytes,
      });
    }
    // Applied now, in the same order the frames reach the log; acknowledged once written.
    this.state.apply(op);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ frame, resolve, reject });
      this.queuedBytes += frame.length;
      if (this.queuedBytes >= this.batchMaxBytes) this.wake?.();
      this.kick();
    });
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.writeLoop();
  }

  /** The only writer of the log file: frames never interleave. */
  private async writeLoop(): Promise<void> {
    try {
      while (!this.failure) {
        if (this.queue.length > 0) {
          await this.writeGroup();
          if (!this.failure && this.walBytes >= this.compactBytes && this.walBytes > this.stateBytes) {
            await this.runCompaction();
          }
        } else if (this.compactWaiters.length > 0) {
          await this.runCompaction();
        } else if (this.syncWaiters.length > 0) {
          const ws = this.syncWaiters.splice(0);
          try {
            await this.wal.datasync();
            settle(ws);
          } catch (e) {
            this.fail(ioError("cannot sync the log", e));
            settle(ws, this.failure);
          }
        } else {
          break;
        }
      }
    } finally {
      this.running = false;
      if (this.failure) {
        const err = this.failure;
        settle(this.queue.splice(0), err);
        this.queuedBytes = 0;
        settle(this.syncWaiters.splice(0), err);
        settle(this.compactWaiters.splice(0), err);
      }
    }
  }

  private async writeGroup(): Promise<void> {
    // Wait for company only when writes are concurrent (the last group or the queue holds more
    // than one): a lone sequential writer then pays no delay, only its own fsync.
    const concurrent = this.queue.length > 1 || this.lastGroupSize > 1;
    if (this.fsync === "batch" && this.batchDelayMs > 0 && concurrent && this.queuedBytes < this.batchMaxBytes) {
      // Let concurrent writers join this group; a full group cuts the wait short.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.batchDelayMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    let n = 1;
    if (this.fsync !== "always") {
      let bytes = this.queue[0]!.frame.length;
      while (n < this.queue.length && bytes + this.queue[n]!.frame.length <= this.batchMaxBytes) {
        bytes += this.queue[n]!.frame.length;
        n++;
      }
    }
    const group = this.queue.splice(0, n);
    this.lastGroupSize = n;
    const buf = group.length === 1 ? group[0]!.frame : Buffer.concat(group.map((p) => p.frame));
    this.queuedBytes -= buf.length;
    try {
      await writeFully(this.wal, buf, this.walBytes);
      if (this.fsync !== "none") await this.wal.datasync();
    } catch (e) {
      this.fail(ioError("cannot write the log", e, { dir: this.dir }));
      settle(group, this.failure);
      return;
    }
    this.walBytes += buf.length;
    settle(group);
  }

  private fail(err: MpregError): void {
    if (this.failure) return;
    this.failure = storageError("failed", `storage failed and stopped accepting writes (reopen to recover): ${err.message}`, {
      ...err.details,
      dir: this.dir,
    });
    logger.error(this.failure.message);
  }

  // ---------------------------------------------------------------- compaction

  /** Writes the whole state into a new state file and starts a fresh log. */
  compact(): Promise<void> {
    this.checkWritable();
    return new Promise<void>((resolve, reject) => {
      this.compactWaiters.push({ resolve, reject });
      this.kick();
    });
  }

  /** Runs inside the write loop, so no log write happens meanwhile. */
  private async runCompaction(): Promise<void> {
    // Queued frames are already applied to the state, so the state file covers them.
    const covered: Waiter[] = this.queue.splice(0);
    this.queuedBytes = 0;
    covered.push(...this.compactWaiters.splice(0));
    const newGen = this.gen + 1;
    const chunks = this.serializeState(newGen); // synchronous: a consistent cut of the state
    const statePath = path.join(this.dir, genName("state", newGen, "snap"));
    const tmp = `${statePath}.tmp`;
    try {
      const fh = await this.fs.open(tmp, "w");
      let pos = 0;
      try {
        for (const c of chunks) {
          await writeFully(fh, c, pos);
          pos += c.length;
        }
        await fh.datasync(); // whatever the policy: the state file replaces data already on disk
      } finally {
        await fh.close();
      }
      await this.fs.rename(tmp, statePath);
      await fsyncDir(this.dir, this.fs);
      const oldWal = this.wal;
      await this.createWal(path.join(this.dir, genName("wal", newGen, "log")), newGen);
      await oldWal.close();
      await this.fs.unlink(path.join(this.dir, genName("wal", this.gen, "log")));
      if (this.gen > 0) await this.fs.unlink(path.join(this.dir, genName("state", this.gen, "snap")));
      this.gen = newGen;
      this.stateBytes = pos;
      settle(covered);
    } catch (e) {
      this.fail(ioError("compaction failed", e, { dir: this.dir }));
      settle(covered, this.failure);
    }
  }

  private serializeState(gen: number): Buffer[] {
    const out: Buffer[] = [encodeFrame(encodeValue([STATE_MAGIC, FORMAT_VERSION, gen]))];
    for (const [ns, table] of this.state.kv) {
      let flat: Uint8Array[] = [];
      let bytes = 0;
      for (const k of table.keys) {
        const v = table.map.get(k)!;
        flat.push(stringToKey(k), v);
        bytes += k.length + v.length;
        if (bytes >= STATE_CHUNK_BYTES) {
          out.push(encodeFrame(encodeValue([1, ns, flat])));
          flat = [];
          bytes = 0;
        }
      }
      if (flat.length > 0) out.push(encodeFrame(encodeValue([1, ns, flat])));
    }
    for (const [ns, log] of this.state.logs) {
      out.push(encodeFrame(encodeValue([2, ns, log.first, log.last])));
      let start = log.first;
      let recs: Uint8Array[] = [];
      let bytes = 0;
      for (let i = 0; i < log.entries.length; i++) {
        recs.push(log.entries[i]!);
        bytes += log.entries[i]!.length;
        if (bytes >= STATE_CHUNK_BYTES) {
          out.push(encodeFrame(encodeValue([3, ns, start, recs])));
          start = log.first + i + 1;
          recs = [];
          bytes = 0;
        }
      }
      if (recs.length > 0) out.push(encodeFrame(encodeValue([3, ns, start, recs])));
    }
    out.push(encodeFrame(encodeValue(["end", out.length])));
    return out;
  }

  // ---------------------------------------------------------------- stores

  kv(namespace: string): KVStore {
    return storeFor(this.kvs, namespace, (ns) => new StateKV(this, ns));
  }

  log(namespace: string): AppendLog {
    return storeFor(this.logs, namespace, (ns) => new StateLog(this, ns));
  }

  snapshots(namespace: string): SnapshotStore {
    return storeFor(this.snaps, namespace, (ns) => {
      const name = `snap-${createHash("sha256").update(ns).digest("hex").slice(0, 32)}.bin`;
      return {
        save: async (input) => {
          const v = checkSnapshotInput(input);
          this.checkWritable();
          const frame = encodeFrame(encodeValue([SNAP_MAGIC, FORMAT_VERSION, ns, v.index, v.metaBytes, Date.now(), v.data]));
          const run = () => this.writeSnapshotFile(name, frame);
          const p = this.snapChain.then(run, run);
          this.snapChain = p.catch(() => undefined);
          return p;
        },
        loadLatest: async () => {
          this.checkOpen();
          return this.readSnapshotFile(name, ns);
        },
      };
    });
  }

  private async writeSnapshotFile(name: string, frame: Buffer): Promise<void> {
    const old = this.snapFileBytes.get(name) ?? 0;
    if (this.usedBytes() - old + frame.length > this.maxBytes) throw this.fullError(frame.length);
    const file = path.join(this.dir, name);
    const tmp = `${file}.tmp`;
    try {
      const fh = await this.fs.open(tmp, "w");
      try {
        await writeFully(fh, frame, 0);
        // Whatever the policy: unsynced data renamed over the old snapshot could leave neither.
        await fh.datasync();
      } finally {
        await fh.close();
      }
      await this.fs.rename(tmp, file);
      if (this.fsync !== "none") await fsyncDir(this.dir, this.fs);
    } catch (e) {
      await this.fs.unlink(tmp).catch(() => undefined);
      throw ioError(`cannot write snapshot ${file}`, e);
    }
    this.snapFileBytes.set(name, frame.length);
  }

  private async readSnapshotFile(name: string, ns: string): Promise<Snapshot | undefined> {
    const file = path.join(this.dir, name);
    let buf: Buffer;
    try {
      buf = await this.fs.readFile(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw ioError(`cannot read snapshot ${file}`, e);
    }
    // One frame: the data plus a small header (magic, namespace, index, metadata).
    const f = readFrame(buf, 0, MAX_SNAPSHOT_BYTES + 1024 * 1024);
    const corrupt = (why: string) => storageError("corrupt", `snapshot file ${file} is damaged (${why})`, { file, namespace: ns });
    if (typeof f === "string" || f.end !== buf.length) throw corrupt(typeof f === "string" ? f : "trailing bytes");
    const v = decodeValue(f.payload);
    if (!Array.isArray(v) || v[0] !== SNAP_MAGIC || v[1] !== FORMAT_VERSION || v[2] !== ns) throw corrupt("bad header");
    const [, , , index, metaBytes, createdAt, data] = v as unknown[];
    if (typeof index !== "number" || !(metaBytes instanceof Uint8Array) || typeof createdAt !== "number" || !(data instanceof Uint8Array)) {
      throw corrupt("bad fields");
    }
    const meta = decodeValue(metaBytes) as Record<string, unknown>;
    return { meta: { index, meta, createdAt }, data: toPlain(data).slice() };
  }

  // ---------------------------------------------------------------- lifecycle

  flush(): Promise<void> {
    this.checkWritable();
    return new Promise<void>((resolve, reject) => {
      this.syncWaiters.push({ resolve, reject });
      this.kick();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true; // refuse new work; what is queued still gets written
    let err: unknown;
    if (!this.failure) {
      // Whatever the policy, closing leaves every acknowledged write on disk.
      await new Promise<void>((resolve, reject) => {
        this.syncWaiters.push({ resolve, reject });
        this.kick();
      }).catch((e) => (err = e));
    }
    await this.snapChain;
    await this.loopDone;
    await this.wal.close().catch(() => undefined);
    await this.fs.unlink(path.join(this.dir, "LOCK")).catch(() => undefined);
    openDirsOf(this.fs).delete(this.dir);
    if (err !== undefined) throw err;
  }
}

/** Every log record's payload is a MessagePack array (an operation): fixarray, array 16 or 32. */
function isMsgpackArrayStart(b: number): boolean {
  return (b >= 0x90 && b <= 0x9f) || b === 0xdc || b === 0xdd;
}
