/** Torn tails, damaged files, size caps and locks: clear errors, never silent loss. */

import { describe, it, expect } from "vitest";
import fs from "node:fs/promises";
import path from "node:path";
import { FileBackend } from "../src/file.js";
import { SqliteBackend } from "../src/sqlite.js";
import { readFrame } from "../src/frame.js";
import { storageErrorKind } from "../src/errors.js";
import { openBackend } from "../src/config.js";
import { useTempDirs } from "./temp-dirs.js";

const tempDir = useTempDirs("mpreg-damage-");

const te = new TextEncoder();
const key = (i: number) => te.encode(`key-${String(i).padStart(3, "0")}`);

/** A directory holding `n` acknowledged puts; returns the WAL path and its frame offsets. */
async function written(n: number): Promise<{ dir: string; wal: string; frames: Array<{ offset: number; end: number }> }> {
  const dir = await tempDir();
  const be = await FileBackend.open({ dir, fsync: "always" });
  for (let i = 0; i < n; i++) await be.kv("d").put(key(i), te.encode(`value-${i}`));
  await be.close();
  const wal = path.join(dir, (await fs.readdir(dir)).find((f) => f.startsWith("wal-"))!);
  const buf = await fs.readFile(wal);
  const frames: Array<{ offset: number; end: number }> = [];
  for (let off = 0; off < buf.length; ) {
    const f = readFrame(buf, off);
    if (typeof f === "string") throw new Error(`unexpected ${f}`);
    frames.push({ offset: f.offset, end: f.end });
    off = f.end;
  }
  expect(frames.length).toBe(n + 1); // header + one frame per put
  return { dir, wal, frames };
}

async function keysIn(dir: string, opts: { repair?: boolean } = {}): Promise<{ count: number; be: FileBackend }> {
  const be = await FileBackend.open({ dir, ...opts });
  return { count: (await be.kv("d").range()).length, be };
}

async function kindOf(p: Promise<unknown>): Promise<[string | undefined, string]> {
  try {
    await p;
  } catch (e) {
    return [storageErrorKind(e), (e as Error).message];
  }
  return ["no error", ""];
}

describe("torn tail", () => {
  it("a log cut anywhere inside its last record loses only that record", async () => {
    const { dir, wal, frames } = await written(20);
    const last = frames[frames.length - 1]!;
    const size = last.end;
    for (const keep of [last.offset + 1, last.offset + 4, last.offset + 8, last.offset + 9, size - 1]) {
      await fs.truncate(wal, keep);
      const { count, be } = await keysIn(dir);
      expect(count, `keep ${keep} of ${size}, last at ${last.offset}`).toBe(19);
      expect(be.recovery.truncatedBytes).toBe(keep - last.offset);
      expect(await be.kv("d").get(key(18))).toEqual(te.encode("value-18"));
      // The cut is repaired on disk: new writes follow the last intact record.
      await be.kv("d").put(key(19), te.encode("VALUE-19"));
      await be.close();
      const again = await keysIn(dir);
      expect(again.count).toBe(20);
      expect(again.be.recovery.truncatedBytes).toBe(0);
      expect(await again.be.kv("d").get(key(19))).toEqual(te.encode("VALUE-19"));
      await again.be.close();
    }
  });

  it("a flipped byte in the last record drops that record only", async () => {
    for (const where of ["length", "crc", "payload"] as const) {
      const { dir, wal, frames } = await written(10);
      const last = frames[frames.length - 1]!;
      const buf = await fs.readFile(wal);
      const at = where === "length" ? last.offset + 2 : where === "crc" ? last.offset + 5 : last.end - 2;
      buf[at] = buf[at]! ^ 0x40;
      await fs.writeFile(wal, buf);
      const { count, be } = await keysIn(dir);
      expect(count, where).toBe(9);
      expect(be.recovery.stop).toMatch(/incomplete|bad-crc|bad-length/);
      await be.close();
    }
  });

  it("a header torn while the log was being created is rebuilt", async () => {
    const { dir, wal, frames } = await written(0);
    await fs.truncate(wal, frames[0]!.end - 3);
    const { count, be } = await keysIn(dir);
    expect(count).toBe(0);
    await be.kv("d").put(key(1), key(1));
    await be.close();
    expect((await keysIn(dir).then(async (r) => (await r.be.close(), r))).count).toBe(1);
  });
});

describe("zero-filled log", () => {
  it("a log created but zero-filled (size persisted, data not) is rebuilt", async () => {
    const { dir, wal, frames } = await written(0);
    await fs.writeFile(wal, Buffer.alloc(frames[0]!.end)); // 8 zero bytes are an intact empty frame
    const { count, be } = await keysIn(dir);
    expect(count).toBe(0);
    expect(be.recovery.truncatedBytes).toBe(frames[0]!.end);
    await be.close();
  });

  it("zeros in the middle of the log (a block that never reached the disk) are refused like other damage", async () => {
    const { dir, wal, frames } = await written(10);
    const buf = await fs.readFile(wal);
    buf.fill(0, frames[5]!.offset, frames[7]!.end);
    await fs.writeFile(wal, buf);
    const [kind, msg] = await kindOf(FileBackend.open({ dir }));
    expect(kind).toBe("corrupt");
    expect(msg).toMatch(/intact records after it.*repair: true/);
    const { count, be } = await keysIn(dir, { repair: true });
    expect(count).toBe(4);
    await be.close();
  });

  it("a zero-filled tail (size persisted, data not) is cut", async () => {
    const { dir, wal, frames } = await written(10);
    const buf = await fs.readFile(wal);
    buf.fill(0, frames[8]!.offset);
    await fs.writeFile(wal, buf);
    const { count, be } = await keysIn(dir);
    expect(count).toBe(7);
    expect(be.recovery.stop).toBe("undecodable");
    await be.close();
  });
});

describe("damaged files give clear errors", () => {
  it("damage in the middle of the log refuses to open unless repair is asked for", async () => {
    const { dir, wal, frames } = await written(10);
    const buf = await fs.readFile(wal);
    const mid = frames[5]!;
    buf[mid.end - 1] = buf[mid.end - 1]! ^ 0xff;
    await fs.writeFile(wal, buf);
    const [kind, msg] = await kindOf(FileBackend.open({ dir }));
    expect(kind).toBe("corrupt");
    expect(msg).toMatch(/intact records after it.*repair: true/);
    const { count, be } = await keysIn(dir, { repair: true });
    expect(count).toBe(4); // records before the damaged one (frame 5 holds key 4)
    await be.close();
  });

  it("a flipped byte: the error tells an operator what to run, and the storage config's repair recovers (the node's --repair-wal)", async () => {
    const { dir, wal, frames } = await written(10);
    const buf = await fs.readFile(wal);
    const mid = frames[5]!;
    buf[mid.offset + 10] = buf[mid.offset + 10]! ^ 0x01; // one bit, inside the record
    await fs.writeFile(wal, buf);
    let err: unknown;
    try {
      await openBackend({ backend: "file", dir });
    } catch (e) {
      err = e;
    }
    expect(storageErrorKind(err)).toBe("corrupt");
    const msg = (err as Error).message;
    expect(msg).toContain("--repair-wal");
    expect(msg).toContain("repair: true");
    expect(msg).toContain(`damaged at byte ${mid.offset}`);
    expect((err as { details: Record<string, unknown> }).details).toMatchObject({ repair_option: "repair", offset: mid.offset });
    // What the node does with --repair-wal: the same config plus repair.
    const repaired = await openBackend({ backend: "file", dir, repair: true });
    expect((await repaired.kv("d").range()).length).toBe(4);
    await repaired.kv("d").put(key(99), te.encode("after repair"));
    await repaired.close();
    // The cut is on disk: the next start needs no flag, and keeps what was written after it.
    const again = await openBackend({ backend: "file", dir });
    expect((await again.kv("d").range()).length).toBe(5);
    expect(await again.kv("d").get(key(99))).toEqual(te.encode("after repair"));
    await again.close();
  });

  it("a damaged log header names the repair too (which discards that log)", async () => {
    const { dir, wal } = await written(10);
    const buf = await fs.readFile(wal);
    buf[2] = buf[2]! ^ 0xff;
    await fs.writeFile(wal, buf);
    const [kind, msg] = await kindOf(FileBackend.open({ dir }));
    expect(kind).toBe("corrupt");
    expect(msg).toMatch(/--repair-wal.*repair: true.*discard this log/);
    const { count, be } = await keysIn(dir, { repair: true });
    expect(count).toBe(0);
    await be.close();
  });

  it("a damaged length field in the middle of the log is found by scanning on, not taken for a torn tail", async () => {
    // Too large for any frame, past the end of the file, and too short (its claimed end lands
    // inside the next record): each leaves intact records after the damage.
    for (const bad of [0xfffffff0, 0x00100000, 3]) {
      const { dir, wal, frames } = await written(10);
      const buf = await fs.readFile(wal);
      const mid = frames[5]!;
      buf.writeUInt32LE(bad, mid.offset);
      await fs.writeFile(wal, buf);
      const [kind, msg] = await kindOf(FileBackend.open({ dir }));
      expect(kind, `length ${bad}`).toBe("corrupt");
      expect(msg).toMatch(new RegExp(`damaged at byte ${mid.offset} with intact records after it \\(at byte ${frames[6]!.offset}\\)`));
      const { count, be } = await keysIn(dir, { repair: true });
      expect(count).toBe(4);
      await be.close();
    }
  });

  it("a foreign file in place of the log is refused", async () => {
    const dir = await tempDir();
    await fs.writeFile(path.join(dir, "wal-000000000000.log"), Buffer.alloc(1000, 0x5a));
    const [kind, msg] = await kindOf(FileBackend.open({ dir }));
    expect(kind).toBe("corrupt");
    expect(msg).toMatch(/not an MPREG write-ahead log/);
  });

  it("a damaged state file is refused", async () => {
    const dir = await tempDir();
    const be = await FileBackend.open({ dir });
    for (let i = 0; i < 50; i++) await be.kv("d").put(key(i), new Uint8Array(50).fill(i));
    await be.compact();
    await be.close();
    const state = path.join(dir, (await fs.readdir(dir)).find((f) => f.startsWith("state-"))!);
    const buf = await fs.readFile(state);
    buf[Math.floor(buf.length / 2)] = buf[Math.floor(buf.length / 2)]! ^ 1;
    await fs.writeFile(state, buf);
    const [kind, msg] = await kindOf(FileBackend.open({ dir }));
    expect(kind).toBe("corrupt");
    expect(msg).toMatch(/state file .* is damaged/);
    // A state file cut short is refused too.
    await fs.writeFile(state, buf.subarray(0, buf.length - 5));
    expect((await kindOf(FileBackend.open({ dir })))[0]).toBe("corrupt");
  });

  it("a damaged snapshot file fails loadLatest clearly", async () => {
    const dir = await tempDir();
    const be = await FileBackend.open({ dir });
    await be.snapshots("s").save({ index: 3, data: new Uint8Array(100).fill(7) });
    const file = path.join(dir, (await fs.readdir(dir)).find((f) => f.startsWith("snap-"))!);
    const buf = await fs.readFile(file);
    buf[buf.length - 10] = buf[buf.length - 10]! ^ 1;
    await fs.writeFile(file, buf);
    const [kind, msg] = await kindOf(be.snapshots("s").loadLatest());
    expect(kind).toBe("corrupt");
    expect(msg).toMatch(/snapshot file .* is damaged/);
    await be.close();
  });

  it("a damaged SQLite database is refused", async () => {
    const dir = await tempDir();
    await fs.writeFile(path.join(dir, "mpreg.sqlite"), Buffer.alloc(8192, 0x33));
    const [kind, msg] = await kindOf(SqliteBackend.open({ dir }));
    expect(kind).toBe("corrupt");
    expect(msg).toMatch(/not a database/);
  });

  it("a directory held by another live process is refused", async () => {
    const dir = await tempDir();
    await fs.writeFile(path.join(dir, "LOCK"), String(process.ppid));
    const [kind, msg] = await kindOf(FileBackend.open({ dir }));
    expect(kind).toBe("config");
    expect(msg).toMatch(/in use by process/);
    // A lock left by a dead process (e.g. after SIGKILL) is taken over.
    await fs.writeFile(path.join(dir, "LOCK"), "999999999");
    await (await FileBackend.open({ dir })).close();
  });
});

describe("disk full (maxBytes)", () => {
  it("refuses the write that does not fit, keeps everything before it, and recovers space", async () => {
    const dir = await tempDir();
    const be = await FileBackend.open({ dir, fsync: "batch", maxBytes: 20_000 });
    const kv = be.kv("d");
    let stored = 0;
    let err: unknown;
    for (let i = 0; i < 1000; i++) {
      try {
        await kv.put(key(i), new Uint8Array(500).fill(i & 0xff));
        stored++;
      } catch (e) {
        err = e;
        break;
      }
    }
    expect(storageErrorKind(err)).toBe("full");
    expect((err as Error).message).toMatch(/storage is full: \d+ of 20000 bytes used/);
    expect(stored).toBeGreaterThan(10);
    expect((await kv.range()).length).toBe(stored);
    // A log append and a snapshot that do not fit are refused the same way.
    expect(storageErrorKind(await be.log("l").append([new Uint8Array(30_000)]).catch((e) => e))).toBe("full");
    expect(storageErrorKind(await be.snapshots("s").save({ index: 1, data: new Uint8Array(30_000) }).catch((e) => e))).toBe("full");
    await be.close();

    const again = await FileBackend.open({ dir, maxBytes: 20_000 });
    expect((await again.kv("d").range()).length).toBe(stored);
    for (let i = 0; i < stored; i++) expect((await again.kv("d").get(key(i)))?.[0]).toBe(i & 0xff);
    // Deleting data and writing again: the write compacts the log and fits.
    await again.kv("d").batch(Array.from({ length: stored - 2 }, (_, i) => ({ type: "del" as const, key: key(i) })));
    await again.kv("d").put(key(999), new Uint8Array(500));
    expect((await again.kv("d").range()).length).toBe(3);
    await again.close();
  });
});

describe("I/O failure", () => {
  it("a failed log write stops the backend with a clear error; reopening recovers what was acknowledged", async () => {
    const dir = await tempDir();
    const be = await FileBackend.open({ dir, fsync: "always" });
    for (let i = 0; i < 5; i++) await be.kv("d").put(key(i), key(i));
    // Pull the file out from under the writer (as a failing disk would): the next write gets EBADF.
    await (be as unknown as { wal: { close(): Promise<void> } }).wal.close();
    const [kind, msg] = await kindOf(be.kv("d").put(key(5), key(5)));
    expect(kind).toBe("failed");
    expect(msg).toMatch(/reopen to recover/);
    expect((await kindOf(be.kv("d").put(key(6), key(6))))[0]).toBe("failed");
    await be.close();
    const again = await keysIn(dir);
    expect(again.count).toBe(5);
    await again.be.close();
  });
});
