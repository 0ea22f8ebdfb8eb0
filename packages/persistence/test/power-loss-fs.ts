/**
 * An in-memory `FileSystem` that models a disk behind a page cache, so tests can cut the power.
 *
 * What it models:
 * - Per file, the *volatile* content (what reads see) and the *durable* content (what survives
 *   power loss). `datasync()`/`sync()` on a handle makes that file's current content (and size)
 *   durable. Writes and truncations since the last sync are kept, in order, as pending.
 * - Per directory, the volatile entries and the durable entries. A create (`open` with `w`/`w+`,
 *   `writeFile`, `mkdir`), a `rename` or an `unlink` changes only the volatile entries until the
 *   directory itself is fsynced: `open(dir, "r")` then `sync()` (or `datasync()`) on that handle.
 *   Syncing a file never makes its name durable, and syncing a directory never makes file data
 *   durable.
 * - `powerLoss(random)` freezes this file system (every later call, and every call still in
 *   flight, rejects with `EIO`) and returns a NEW file system holding what would survive:
 *   - each directory: its durable entries plus a random prefix (possibly empty, possibly all)
 *     of its unsynced entry operations, applied in the order they were made (a journaling file
 *     system commits metadata in order); or, with `dirOps: "subset"`, any subset of them (each
 *     acts on the file it named: a surviving rename of a file whose creation was lost still
 *     moves that file, never an older file that had the same name);
 *   - each file reachable from there: its durable content plus a random prefix of its unsynced
 *     writes/truncations in order, the last one possibly torn at an arbitrary byte; or, with
 *     `fileWrites: "pages"`, each 4 KiB page independently old or new (see FileLossMode).
 * - Operations are asynchronous and yield a few microtasks (chosen by the seeded `random` given
 *   to the constructor) before they take effect, so concurrent callers interleave; a write may
 *   also be short (fewer bytes than asked), as POSIX allows. Each operation then takes effect
 *   atomically in the volatile state.
 * - `crashAtOp`: the power fails just before the n-th operation (counted from 1) takes effect,
 *   so a test can cut it at any point of a sequence, deterministically.
 *
 * What it does not model: reordering within a page or intermediate versions of a page (in
 * `pages` mode a page is written back whole, as of the cut), garbage blocks, persisted
 * bytes of a write that never happened, metadata-only fsync subtleties (`sync` and `datasync`
 * are the same here), renames across directories (refused with `EXDEV`), permissions, hard
 * links, disk full, and I/O errors other than the power cut. File content and pending operations
 * are unbounded (test sizes only).
 */

import path from "node:path";
import { Buffer } from "node:buffer";
import type { FileSystem, FileSystemHandle, FileSystemStats, OpenFlags } from "../src/file-system.js";

/** A source of uniform numbers in [0, 1). */
export type Random = () => number;

/** A small seeded generator (mulberry32), so every run of a test is reproducible. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type FileOp = { t: "write"; pos: number; bytes: Buffer } | { t: "truncate"; len: number };
/** Entry operations name the node they act on, as a journal names inodes, not just names. */
type DirOp = { t: "link"; name: string; node: Node } | { t: "unlink"; name: string; node: Node } | { t: "rename"; from: string; to: string; node: Node };

interface FileNode {
  kind: "file";
  data: Buffer;
  durable: Buffer;
  pending: FileOp[];
}

interface DirNode {
  kind: "dir";
  entries: Map<string, Node>;
  durable: Map<string, Node>;
  pending: DirOp[];
}

type Node = FileNode | DirNode;

const newFile = (data: Buffer = Buffer.alloc(0)): FileNode => ({ kind: "file", data, durable: Buffer.alloc(0), pending: [] });
const newDir = (): DirNode => ({ kind: "dir", entries: new Map(), durable: new Map(), pending: [] });

function fsError(code: string, op: string, p: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${op} '${p}'`), { code, syscall: op, path: p });
}

function applyFileOp(buf: Buffer, op: FileOp): Buffer {
  if (op.t === "truncate") {
    if (op.len <= buf.length) return Buffer.from(buf.subarray(0, op.len));
    return Buffer.concat([buf, Buffer.alloc(op.len - buf.length)]);
  }
  const end = op.pos + op.bytes.length;
  const out = end > buf.length ? Buffer.concat([buf, Buffer.alloc(end - buf.length)]) : Buffer.from(buf);
  op.bytes.copy(out, op.pos);
  return out;
}

function applyDirOp(entries: Map<string, Node>, op: DirOp): void {
  // In `subset` mode an earlier operation may be missing, so a name may point to another node
  // (or none): an unlink or rename only removes the entry when it still names the same node.
  if (op.t === "link") entries.set(op.name, op.node);
  else if (op.t === "unlink") {
    if (entries.get(op.name) === op.node) entries.delete(op.name);
  } else {
    if (entries.get(op.from) === op.node) entries.delete(op.from);
    entries.set(op.to, op.node);
  }
}

/** How much of its unsynced operations a file or directory keeps: all, none, or a prefix (maybe torn). */
function keptPrefix<T>(ops: T[], random: Random): { keep: number; torn: boolean } {
  if (ops.length === 0) return { keep: 0, torn: false };
  const r = random();
  if (r < 0.3) return { keep: 0, torn: false };
  if (r < 0.5) return { keep: ops.length, torn: false };
  // A strict prefix; the next operation half-done when it is a write.
  return { keep: Math.floor(random() * ops.length), torn: random() < 0.5 };
}

export interface PowerLossFsOptions {
  /** Drives interleaving and short writes (default a fixed seed). */
  random?: Random;
  /** Cut the power just before the n-th operation takes effect (1-based). */
  crashAtOp?: number;
  /** Probability of a short write (default 0.1). */
  shortWriteRate?: number;
  /** Called with each operation as it takes effect (debugging). */
  trace?: (line: string) => void;
}

/**
 * How `powerLoss` treats a directory's unsynced entry operations: `prefix` (default) keeps an
 * in-order prefix, as a journaling file system does; `subset` keeps any subset (each operation
 * independently, still applied in order), as POSIX allows: a later rename may survive an
 * earlier one that was lost.
 */
export type DirLossMode = "prefix" | "subset";

/**
 * How `powerLoss` treats a file's unsynced writes: `prefix` (default) keeps an in-order prefix
 * of them, the last possibly torn; `pages` writes back each 4 KiB page on its own, as a page
 * cache does: every page that differs is either its durable or its current version, and the
 * size either the durable or the current one (a page past the kept size is dropped, a kept size
 * past the kept pages reads as zeros). `pages` lets a later part of the log survive an earlier
 * one that did not.
 */
export type FileLossMode = "prefix" | "pages";

/** How much of the unsynced state survives (see DirLossMode, FileLossMode). */
export interface LossModes {
  dirOps?: DirLossMode;
  fileWrites?: FileLossMode;
}

const PAGE = 4096;

/** A `pages`-mode survivor: each differing page old or new, the size old or new. */
function pagesSurvivor(durable: Buffer, current: Buffer, random: Random): Buffer {
  const size = random() < 0.5 ? durable.length : current.length;
  const out = Buffer.alloc(size);
  for (let at = 0; at < size; at += PAGE) {
    const from = durable.subarray(at, at + PAGE);
    const to = current.subarray(at, at + PAGE);
    (from.equals(to) || random() < 0.5 ? from : to).copy(out, at);
  }
  return out;
}

class Handle implements FileSystemHandle {
  closed = false;
  constructor(
    private readonly fs: PowerLossFs,
    readonly node: Node,
    readonly writable: boolean,
    readonly p: string,
  ) {}

  async write(buf: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesWritten: number }> {
    return this.fs.step("write", this.p, () => {
      const f = this.fileForWrite("write");
      let n = length;
      if (n > 1 && this.fs.random() < this.fs.shortWriteRate) n = 1 + Math.floor(this.fs.random() * (n - 1));
      const op: FileOp = { t: "write", pos: position, bytes: Buffer.from(buf.subarray(offset, offset + n)) };
      f.data = applyFileOp(f.data, op);
      f.pending.push(op);
      return { bytesWritten: n };
    });
  }

  async truncate(len: number): Promise<void> {
    return this.fs.step("truncate", this.p, () => {
      const f = this.fileForWrite("truncate");
      const op: FileOp = { t: "truncate", len };
      f.data = applyFileOp(f.data, op);
      f.pending.push(op);
    });
  }

  async datasync(): Promise<void> {
    return this.sync();
  }

  async sync(): Promise<void> {
    return this.fs.step("fsync", this.p, () => {
      if (this.closed) throw fsError("EBADF", "fsync", this.p);
      const n = this.node;
      if (n.kind === "file") {
        n.durable = Buffer.from(n.data);
        n.pending = [];
      } else {
        n.durable = new Map(n.entries);
        n.pending = [];
      }
    });
  }

  async close(): Promise<void> {
    return this.fs.step("close", this.p, () => {
      if (this.closed) throw fsError("EBADF", "close", this.p);
      this.closed = true;
    });
  }

  private fileForWrite(op: string): FileNode {
    if (this.closed) throw fsError("EBADF", op, this.p);
    if (this.node.kind !== "file") throw fsError("EISDIR", op, this.p);
    if (!this.writable) throw fsError("EBADF", op, this.p);
    return this.node;
  }
}

/** The simulated disk (see the file comment). */
export class PowerLossFs implements FileSystem {
  readonly random: Random;
  readonly shortWriteRate: number;
  /** Operations started so far. */
  ops = 0;
  crashAtOp: number | undefined;
  trace: ((line: string) => void) | undefined;
  private crashed = false;
  private readonly root: DirNode;

  constructor(opts: PowerLossFsOptions = {}, root: DirNode = newDir()) {
    this.random = opts.random ?? seededRandom(1);
    this.shortWriteRate = opts.shortWriteRate ?? 0.1;
    this.crashAtOp = opts.crashAtOp;
    this.trace = opts.trace;
    this.root = root;
  }

  /** True once the power was cut (by `crashAtOp` or `powerLoss`). */
  get isCrashed(): boolean {
    return this.crashed;
  }

  /** Cuts the power now: every later (or in-flight) operation rejects with `EIO`. */
  crash(): void {
    this.crashed = true;
  }

  /** Runs one operation: yields, then takes effect atomically unless the power is off. */
  async step<T>(op: string, p: string, run: () => T): Promise<T> {
    if (this.crashed) throw fsError("EIO", op, p);
    const n = ++this.ops;
    const yields = Math.floor(this.random() * 4);
    for (let i = 0; i < yields; i++) await Promise.resolve();
    if (this.crashAtOp !== undefined && n >= this.crashAtOp) this.crashed = true;
    if (this.crashed) throw fsError("EIO", op, p);
    const out = run();
    this.trace?.(`${n} ${op} ${p}${out !== null && typeof out === "object" && "bytesWritten" in out ? ` ${String(out.bytesWritten)}B` : ""}`);
    return out;
  }

  /**
   * Freezes this file system and returns a new one holding what survives the power cut: durable
   * state plus a random in-order prefix of what was not synced (see the file comment).
   */
  powerLoss(random: Random, opts: Omit<PowerLossFsOptions, "crashAtOp"> & LossModes = {}): PowerLossFs {
    this.crashed = true;
    return this.image(random, opts);
  }

  /**
   * A copy of what reads see now, all of it durable, without cutting the power here (e.g. to
   * inspect a survivor on the side while the survivor itself goes on to the next round).
   */
  clone(opts: Omit<PowerLossFsOptions, "crashAtOp"> = {}): PowerLossFs {
    return this.image(undefined, opts);
  }

  /** With `random`: what survives a power cut; without: the volatile state, made durable. */
  private image(random: Random | undefined, opts: Omit<PowerLossFsOptions, "crashAtOp"> & LossModes): PowerLossFs {
    const copies = new Map<Node, Node>();
    const survive = (node: Node): Node => {
      const done = copies.get(node);
      if (done) return done;
      if (node.kind === "file") {
        if (random === undefined) {
          const copy = newFile(Buffer.from(node.data));
          copy.durable = Buffer.from(node.data);
          copies.set(node, copy);
          return copy;
        }
        let data: Buffer = Buffer.from(node.durable);
        if (opts.fileWrites === "pages" && node.pending.length > 0) {
          const copy = newFile(pagesSurvivor(node.durable, node.data, random));
          copy.durable = Buffer.from(copy.data);
          copies.set(node, copy);
          return copy;
        }
        const { keep, torn } = keptPrefix(node.pending, random);
        for (let i = 0; i < keep; i++) data = applyFileOp(data, node.pending[i]!);
        const next = node.pending[keep];
        if (torn && next !== undefined && next.t === "write") {
          data = applyFileOp(data, { ...next, bytes: next.bytes.subarray(0, Math.floor(random() * next.bytes.length)) });
        }
        const copy = newFile(data);
        copy.durable = Buffer.from(data);
        copies.set(node, copy);
        return copy;
      }
      const entries = new Map(random === undefined ? node.entries : node.durable);
      if (random !== undefined && opts.dirOps === "subset") {
        for (const op of node.pending) if (random() < 0.5) applyDirOp(entries, op);
      } else {
        const { keep } = random === undefined ? { keep: 0 } : keptPrefix(node.pending, random);
        for (let i = 0; i < keep; i++) applyDirOp(entries, node.pending[i]!);
      }
      const copy = newDir();
      copies.set(node, copy);
      // Sorted, so the random draws do not depend on insertion order.
      for (const name of [...entries.keys()].sort()) copy.entries.set(name, survive(entries.get(name)!));
      copy.durable = new Map(copy.entries);
      return copy;
    };
    const next: PowerLossFsOptions = { random: opts.random ?? this.random, shortWriteRate: opts.shortWriteRate ?? this.shortWriteRate };
    if (opts.trace) next.trace = opts.trace;
    return new PowerLossFs(next, survive(this.root) as DirNode);
  }

  // ---------------------------------------------------------------- paths

  private parts(p: string): string[] {
    if (!path.posix.isAbsolute(p)) throw fsError("EINVAL", "resolve", p);
    return path.posix.normalize(p).split("/").filter((s) => s.length > 0);
  }

  private lookup(p: string, op: string): Node {
    let n: Node = this.root;
    for (const part of this.parts(p)) {
      if (n.kind !== "dir") throw fsError("ENOTDIR", op, p);
      const next = n.entries.get(part);
      if (next === undefined) throw fsError("ENOENT", op, p);
      n = next;
    }
    return n;
  }

  /** The parent directory and the last name of `p`. */
  private parentOf(p: string, op: string): { dir: DirNode; name: string } {
    const parts = this.parts(p);
    const name = parts.pop();
    if (name === undefined) throw fsError("EISDIR", op, p);
    const dir = this.lookup("/" + parts.join("/"), op);
    if (dir.kind !== "dir") throw fsError("ENOTDIR", op, p);
    return { dir, name };
  }

  private link(dir: DirNode, name: string, node: Node): void {
    dir.entries.set(name, node);
    dir.pending.push({ t: "link", name, node });
  }

  /** Opens or creates-and-truncates a file (the `w` flags). */
  private createOrTruncate(p: string, op: string): FileNode {
    const { dir, name } = this.parentOf(p, op);
    const existing = dir.entries.get(name);
    if (existing?.kind === "dir") throw fsError("EISDIR", op, p);
    if (existing) {
      const t: FileOp = { t: "truncate", len: 0 };
      existing.data = applyFileOp(existing.data, t);
      existing.pending.push(t);
      return existing;
    }
    const f = newFile();
    this.link(dir, name, f);
    return f;
  }

  // ---------------------------------------------------------------- FileSystem

  open(p: string, flags: OpenFlags): Promise<FileSystemHandle> {
    return this.step("open", p, () => {
      if (flags === "w" || flags === "w+") return new Handle(this, this.createOrTruncate(p, "open"), true, p);
      const n = this.lookup(p, "open");
      if (flags === "r+" && n.kind === "dir") throw fsError("EISDIR", "open", p);
      return new Handle(this, n, flags === "r+", p);
    });
  }

  readFile(p: string): Promise<Buffer> {
    return this.step("read", p, () => {
      const n = this.lookup(p, "read");
      if (n.kind === "dir") throw fsError("EISDIR", "read", p);
      return Buffer.from(n.data);
    });
  }

  writeFile(p: string, data: Uint8Array | string): Promise<void> {
    return this.step("writeFile", p, () => {
      const f = this.createOrTruncate(p, "open");
      const op: FileOp = { t: "write", pos: 0, bytes: Buffer.from(typeof data === "string" ? Buffer.from(data) : data) };
      f.data = applyFileOp(f.data, op);
      f.pending.push(op);
    });
  }

  rename(from: string, to: string): Promise<void> {
    return this.step("rename", from, () => {
      const a = this.parentOf(from, "rename");
      const b = this.parentOf(to, "rename");
      if (a.dir !== b.dir) throw fsError("EXDEV", "rename", from);
      const n = a.dir.entries.get(a.name);
      if (n === undefined) throw fsError("ENOENT", "rename", from);
      const target = b.dir.entries.get(b.name);
      if (target?.kind === "dir" || (target && n.kind === "dir")) throw fsError("EISDIR", "rename", to);
      if (a.name === b.name) return;
      a.dir.entries.delete(a.name);
      a.dir.entries.set(b.name, n);
      a.dir.pending.push({ t: "rename", from: a.name, to: b.name, node: n });
    });
  }

  unlink(p: string): Promise<void> {
    return this.step("unlink", p, () => {
      const { dir, name } = this.parentOf(p, "unlink");
      const n = dir.entries.get(name);
      if (n === undefined) throw fsError("ENOENT", "unlink", p);
      if (n.kind === "dir") throw fsError("EISDIR", "unlink", p);
      dir.entries.delete(name);
      dir.pending.push({ t: "unlink", name, node: n });
    });
  }

  readdir(p: string): Promise<string[]> {
    return this.step("readdir", p, () => {
      const n = this.lookup(p, "scandir");
      if (n.kind !== "dir") throw fsError("ENOTDIR", "scandir", p);
      return [...n.entries.keys()].sort();
    });
  }

  stat(p: string): Promise<FileSystemStats> {
    return this.step("stat", p, () => {
      const n = this.lookup(p, "stat");
      const size = n.kind === "file" ? n.data.length : 4096;
      return { size, isDirectory: () => n.kind === "dir" };
    });
  }

  mkdir(p: string, _opts: { recursive: true }): Promise<string | undefined> {
    return this.step("mkdir", p, () => {
      let dir: DirNode = this.root;
      let first: string | undefined;
      let at = "";
      for (const part of this.parts(p)) {
        at += "/" + part;
        const next = dir.entries.get(part);
        if (next === undefined) {
          const d = newDir();
          this.link(dir, part, d);
          first ??= at;
          dir = d;
        } else if (next.kind === "dir") {
          dir = next;
        } else {
          throw fsError("EEXIST", "mkdir", p);
        }
      }
      return first;
    });
  }

  /** Test helper: whether `p` exists now (file or directory), bypassing the power state. */
  exists(p: string): boolean {
    try {
      this.lookup(p, "exists");
      return true;
    } catch {
      return false;
    }
  }

  /** Test helper: the volatile content of a file (what a read sees now), bypassing the power state. */
  peek(p: string): Buffer | undefined {
    try {
      const n = this.lookup(p, "peek");
      return n.kind === "file" ? Buffer.from(n.data) : undefined;
    } catch {
      return undefined;
    }
  }
}
