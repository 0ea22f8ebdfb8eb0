/**
 * The file-system operations the file backend uses, behind an interface so tests can run the
 * backend on a simulated disk (power loss, see `test/power-loss-fs.ts`). `nodeFileSystem` is
 * the real thing and the default.
 */

import fs from "node:fs/promises";
import type { Buffer } from "node:buffer";

/** Open modes the backend uses: read-only, read-write, create/truncate for write (`+`: and read). */
export type OpenFlags = "r" | "r+" | "w" | "w+";

/** An open file (or directory, opened `"r"` to fsync it). */
export interface FileSystemHandle {
  /** Writes `length` bytes of `buf` from `offset` at file position `position`; may be short. */
  write(buf: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  /** fdatasync: the file's data (and the size needed to read it) is on disk. */
  datasync(): Promise<void>;
  /** fsync: data and metadata; on a directory, its entries (creates, renames, unlinks). */
  sync(): Promise<void>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

/** What `stat` reports. */
export interface FileSystemStats {
  size: number;
  isDirectory(): boolean;
}

/**
 * File-system operations on absolute paths. Failures reject with Node-style errors carrying
 * `code` (`ENOENT`, `EEXIST`, `EIO`, ...), as `node:fs/promises` does.
 */
export interface FileSystem {
  open(path: string, flags: OpenFlags): Promise<FileSystemHandle>;
  readFile(path: string): Promise<Buffer>;
  /** Creates or replaces the file's content (not synced). */
  writeFile(path: string, data: Uint8Array | string): Promise<void>;
  /** Atomically replaces `to` with `from` (same directory); durable once the directory is synced. */
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Entry names of a directory. */
  readdir(path: string): Promise<string[]>;
  stat(path: string): Promise<FileSystemStats>;
  /** `mkdir -p`; resolves with the first directory created (undefined when none was). */
  mkdir(path: string, opts: { recursive: true }): Promise<string | undefined>;
}

/** The real file system (`node:fs/promises`). */
export const nodeFileSystem: FileSystem = {
  open: (p, flags) => fs.open(p, flags),
  readFile: (p) => fs.readFile(p),
  writeFile: (p, data) => fs.writeFile(p, data),
  rename: (from, to) => fs.rename(from, to),
  unlink: (p) => fs.unlink(p),
  readdir: (p) => fs.readdir(p),
  stat: (p) => fs.stat(p),
  mkdir: (p, opts) => fs.mkdir(p, opts),
};
