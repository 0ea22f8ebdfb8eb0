import { describe, expect, it } from "vitest";
import { useTempDirs } from "../test/temp-dirs.js";
import { FileBackend } from "./file.js";
import { MemoryBackend } from "./memory.js";
import { SqliteBackend } from "./sqlite.js";
import type { StorageBackend } from "./interfaces.js";
import { storageErrorKind } from "./errors.js";
import { MAX_SNAPSHOT_BYTES, MAX_VALUE_BYTES } from "./validate.js";

const tempDir = useTempDirs("mpreg-snapsize-");

/** A replicated state machine's image can be larger than a value: up to MAX_SNAPSHOT_BYTES. */
describe("snapshots larger than a value", () => {
  const backends: [string, () => Promise<StorageBackend>][] = [
    ["memory", async () => new MemoryBackend()],
    ["file", async () => FileBackend.open({ dir: await tempDir(), fsync: "batch" })],
    ["sqlite", async () => SqliteBackend.open({ dir: await tempDir(), fsync: "batch" })],
  ];
  for (const [name, open] of backends) {
    it(`${name}: saves and loads an ${Math.round((MAX_VALUE_BYTES * 1.25) / 2 ** 20)} MiB snapshot; refuses one past MAX_SNAPSHOT_BYTES`, { timeout: 60_000 }, async () => {
      const be = await open();
      const data = new Uint8Array(MAX_VALUE_BYTES * 1.25);
      for (let i = 0; i < data.length; i += 4096) data[i] = (i >> 12) & 0xff;
      const snaps = be.snapshots("raft");
      await snaps.save({ index: 7, meta: { term: 2 }, data });
      const got = await snaps.loadLatest();
      expect(got?.meta.index).toBe(7);
      expect(got?.data.length).toBe(data.length);
      expect(Buffer.compare(Buffer.from(got!.data), Buffer.from(data))).toBe(0);
      const tooBig = { index: 8, data: { byteLength: MAX_SNAPSHOT_BYTES + 1 } as unknown as Uint8Array };
      await expect(snaps.save(tooBig)).rejects.toSatisfy((e) => storageErrorKind(e) === "invalid");
      await be.close();
    });
  }
});
