import { describe, it, expect } from "vitest";
import fs from "node:fs/promises";
import { FileBackend, type FsyncPolicy } from "./file.js";
import { runComplianceSuite } from "./compliance.js";
import { useTempDirs } from "../test/temp-dirs.js";

const tempDir = useTempDirs("mpreg-file-");

for (const fsync of ["always", "batch", "none"] as FsyncPolicy[]) {
  runComplianceSuite(
    `file (fsync ${fsync})`,
    async () => {
      const dir = await tempDir();
      return {
        open: () => FileBackend.open({ dir, fsync }),
        cleanup: () => fs.rm(dir, { recursive: true, force: true }),
      };
    },
    { describe, it },
  );
}

// Tiny compaction threshold: every case compacts many times, so the state file path is covered too.
runComplianceSuite(
  "file (compacting constantly)",
  async () => {
    const dir = await tempDir();
    return {
      open: () => FileBackend.open({ dir, fsync: "batch", compactBytes: 512 }),
      cleanup: () => fs.rm(dir, { recursive: true, force: true }),
    };
  },
  { describe, it },
);

describe("file backend", () => {
  it("compaction keeps the data and shrinks the log", async () => {
    const dir = await tempDir();
    const be = await FileBackend.open({ dir });
    const kv = be.kv("c");
    for (let i = 0; i < 200; i++) await kv.put(new Uint8Array([i % 10]), new Uint8Array(100).fill(i));
    await be.log("l").append([new Uint8Array([1]), new Uint8Array([2])]);
    await be.compact();
    const names = (await fs.readdir(dir)).sort();
    expect(names.filter((n) => n.startsWith("state-")).length).toBe(1);
    expect(names.filter((n) => n.startsWith("wal-")).length).toBe(1);
    await kv.put(new Uint8Array([99]), new Uint8Array([99]));
    await be.close();
    const again = await FileBackend.open({ dir });
    expect(again.recovery.generation).toBe(1);
    expect(again.recovery.records).toBe(1);
    expect((await again.kv("c").range()).length).toBe(11);
    expect(await again.kv("c").get(new Uint8Array([9]))).toEqual(new Uint8Array(100).fill(199));
    expect((await again.log("l").read(1)).map((e) => e.data[0])).toEqual([1, 2]);
    await again.close();
  });

  it("refuses a second open of the same directory", async () => {
    const dir = await tempDir();
    const be = await FileBackend.open({ dir });
    await expect(FileBackend.open({ dir })).rejects.toThrow(/already open/);
    await be.close();
    await (await FileBackend.open({ dir })).close();
  });
});
