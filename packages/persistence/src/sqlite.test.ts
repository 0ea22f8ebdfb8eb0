import { describe, it, expect } from "vitest";
import fs from "node:fs/promises";
import fsSync from "node:fs";
import { SqliteBackend } from "./sqlite.js";
import type { FsyncPolicy } from "./file.js";
import { runComplianceSuite } from "./compliance.js";
import { storageErrorKind } from "./errors.js";
import { useTempDirs } from "../test/temp-dirs.js";

const tempDir = useTempDirs("mpreg-sqlite-");

for (const fsync of ["always", "batch", "none"] as FsyncPolicy[]) {
  runComplianceSuite(
    `sqlite (fsync ${fsync})`,
    async () => {
      const dir = await tempDir();
      return {
        open: () => SqliteBackend.open({ dir, fsync }),
        cleanup: () => fs.rm(dir, { recursive: true, force: true }),
      };
    },
    { describe, it },
  );
}

describe("sqlite backend", () => {
  it("uses WAL mode and refuses a second open of the same file", async () => {
    const dir = await tempDir();
    const be = await SqliteBackend.open({ dir });
    await expect(SqliteBackend.open({ dir })).rejects.toThrow(/already open/);
    await be.kv("a").put(new Uint8Array([1]), new Uint8Array([2]));
    await be.close();
    const names = await fs.readdir(dir);
    expect(names).toContain("mpreg.sqlite");
  });

  it("a batch in a group commit that fails changes nothing, the others commit", async () => {
    const dir = await tempDir();
    const be = await SqliteBackend.open({ dir, fsync: "batch", batchDelayMs: 20 });
    const kv = be.kv("g");
    const a = kv.put(new Uint8Array([1]), new Uint8Array([1]));
    const bad = kv.batch([
      { type: "put", key: new Uint8Array([2]), value: new Uint8Array([2]) },
      { type: "put", key: null as unknown as Uint8Array, value: new Uint8Array([2]) },
    ]);
    const c = kv.put(new Uint8Array([3]), new Uint8Array([3]));
    await expect(bad).rejects.toSatisfy((e) => storageErrorKind(e) === "invalid");
    await Promise.all([a, c]);
    expect((await kv.range()).map((e) => e.key[0])).toEqual([1, 3]);
    await be.close();
  });

  it("maxBytes counts the WAL: database + WAL stay within it after every acknowledged write", async () => {
    const dir = await tempDir();
    const maxBytes = 256 * 1024;
    for (const fsync of ["always", "batch", "none"] as FsyncPolicy[]) {
      const be = await SqliteBackend.open({ dir, file: `wal-${fsync}.sqlite`, fsync, maxBytes });
      const onDisk = () => {
        const size = (f: string) => {
          try {
            return fsSync.statSync(f).size;
          } catch {
            return 0;
          }
        };
        return size(be.file) + size(`${be.file}-wal`);
      };
      const kv = be.kv("w");
      let stored = 0;
      let err: unknown;
      let maxSeen = 0;
      // Overwrites (the WAL grows, the database does not), then batches of new keys until full.
      for (let i = 0; i < 1000 && err === undefined; i++) {
        try {
          if (i < 60) await kv.batch([0, 1, 2].map((j) => ({ type: "put" as const, key: new Uint8Array([1, j]), value: new Uint8Array(300).fill(i) })));
          else await kv.batch(Array.from({ length: 10 }, (_, j) => ({ type: "put" as const, key: new Uint8Array([2, i >> 8, i & 0xff, j]), value: new Uint8Array(300) })));
          stored++;
        } catch (e) {
          err = e;
        }
        maxSeen = Math.max(maxSeen, onDisk());
      }
      expect(storageErrorKind(err)).toBe("full");
      expect(stored).toBeGreaterThan(80);
      expect(maxSeen).toBeLessThanOrEqual(maxBytes);
      expect(maxSeen).toBeGreaterThan(maxBytes * 0.75); // it did fill up
      await be.close();
    }
  });

  it("rejects writes past maxBytes with a full error and keeps earlier data", async () => {
    const dir = await tempDir();
    for (const fsync of ["always", "batch"] as FsyncPolicy[]) {
      const be = await SqliteBackend.open({ dir, file: `${fsync}.sqlite`, fsync, maxBytes: 64 * 1024 });
      const kv = be.kv("cap");
      let stored = 0;
      let err: unknown;
      for (let i = 0; i < 200; i++) {
        try {
          await kv.put(new Uint8Array([i]), new Uint8Array(2000).fill(i));
          stored++;
        } catch (e) {
          err = e;
          break;
        }
      }
      expect(storageErrorKind(err)).toBe("full");
      expect(stored).toBeGreaterThan(0);
      expect((await kv.range()).length).toBe(stored);
      await be.close();
      const again = await SqliteBackend.open({ dir, file: `${fsync}.sqlite`, fsync });
      expect((await again.kv("cap").range()).length).toBe(stored);
      await again.close();
    }
  });
});
