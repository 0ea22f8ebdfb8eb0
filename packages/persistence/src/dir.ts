/** Data-directory checks and directory fsync, shared by the file and SQLite backends. */

import path from "node:path";
import { storageError } from "./errors.js";
import { nodeFileSystem, type FileSystem, type FileSystemHandle } from "./file-system.js";

/**
 * Makes sure `dir` is a usable data directory and returns its absolute path. Missing
 * directories are created when `create` is true. Every failure is a `config` storage error that
 * names the directory and the reason.
 */
export async function prepareDir(dir: unknown, create: boolean, fs: FileSystem = nodeFileSystem): Promise<string> {
  if (typeof dir !== "string" || dir.length === 0) {
    throw storageError("config", "a data directory (dir) is required for this backend");
  }
  const abs = path.resolve(dir);
  let st;
  try {
    st = await fs.stat(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "ENOENT") {
      throw storageError("config", `cannot access data directory ${abs}: ${code ?? String(e)}`, { dir: abs, errno: code });
    }
    if (!create) throw storageError("config", `data directory ${abs} does not exist`, { dir: abs });
    try {
      const first = await fs.mkdir(abs, { recursive: true });
      // A new directory's name is durable only once its parent is fsynced: without this, a
      // power cut could lose the whole data directory with every write acknowledged in it.
      if (first !== undefined) {
        for (let d = abs; ; d = path.dirname(d)) {
          await fsyncDir(path.dirname(d), fs);
          if (d === first || path.dirname(d) === d) break;
        }
      }
      st = await fs.stat(abs);
    } catch (e2) {
      const c2 = (e2 as NodeJS.ErrnoException).code;
      throw storageError("config", `cannot create data directory ${abs}: ${c2 ?? String(e2)}`, { dir: abs, errno: c2 });
    }
  }
  if (!st.isDirectory()) throw storageError("config", `data directory ${abs} is not a directory`, { dir: abs });
  // Permission bits do not tell the whole story (read-only mounts, ACLs): try a write.
  const probe = path.join(abs, `.probe-${process.pid}-${Math.random().toString(36).slice(2)}`);
  try {
    await fs.writeFile(probe, "");
    await fs.unlink(probe);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw storageError("config", `data directory ${abs} is not writable: ${code ?? String(e)}`, { dir: abs, errno: code });
  }
  return abs;
}

/** Flushes a directory entry change (create, rename, delete) to disk. */
export async function fsyncDir(dir: string, fs: FileSystem = nodeFileSystem): Promise<void> {
  const fh = await fs.open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes all of `buf` at `position` (a single write may be short). */
export async function writeFully(fh: FileSystemHandle, buf: Uint8Array, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off, position + off);
    off += bytesWritten;
  }
}
