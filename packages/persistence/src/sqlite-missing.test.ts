import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it, vi } from "vitest";
import { SqliteBackend } from "./sqlite.js";

// As on a machine where the optional native dependency could not be installed.
vi.mock("better-sqlite3", () => {
  throw new Error("Cannot find package 'better-sqlite3'");
});

it("without better-sqlite3, opening the sqlite backend says how to get it (and nothing else breaks)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mpreg-nosqlite-"));
  try {
    const open = SqliteBackend.open({ dir });
    await expect(open).rejects.toMatchObject({ code: 1002, details: { kind: "config" } });
    await expect(open).rejects.toThrow(/optional dependency better-sqlite3: install it .*npm install better-sqlite3.*or use the file backend/);
    // A second attempt tries again rather than remembering the failure forever.
    await expect(SqliteBackend.open({ dir })).rejects.toThrow(/better-sqlite3/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
