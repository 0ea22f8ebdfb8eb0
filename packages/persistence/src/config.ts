/** Storage configuration, validated with TypeBox, and `openBackend`. */

import { Type, type Static } from "typebox";
import { Compile } from "typebox/compile";
import type { StorageBackend } from "./interfaces.js";
import { MemoryBackend } from "./memory.js";
import { FileBackend } from "./file.js";
import { SqliteBackend } from "./sqlite.js";
import { storageError } from "./errors.js";

const Int = (min: number, description: string) => Type.Optional(Type.Integer({ minimum: min, description }));

/** The TypeBox schema of StorageConfig. */
export const StorageConfigSchema = Type.Object(
  {
    backend: Type.Union([Type.Literal("memory"), Type.Literal("file"), Type.Literal("sqlite")]),
    dir: Type.Optional(Type.String({ minLength: 1, description: "data directory (file, sqlite)" })),
    fsync: Type.Optional(Type.Union([Type.Literal("always"), Type.Literal("batch"), Type.Literal("none")])),
    batchDelayMs: Int(0, "group-commit window in ms (batch)"),
    batchMaxBytes: Int(1, "group size that commits at once (file, batch)"),
    batchMaxOps: Int(1, "group size in writes that commits at once (sqlite, batch)"),
    maxBytes: Int(1, "size cap; writes past it fail with a full error"),
    compactBytes: Int(1, "log size that triggers compaction (file)"),
    maxQueuedBytes: Int(1, "bytes waiting for the disk before writes are refused (file)"),
    createDir: Type.Optional(Type.Boolean({ description: "create dir when missing (default true)" })),
    repair: Type.Optional(Type.Boolean({ description: "cut mid-log damage instead of failing (file)" })),
    file: Type.Optional(Type.String({ minLength: 1, pattern: "^[^/\\\\]+$", description: "database file name (sqlite)" })),
  },
  { additionalProperties: false },
);

/** `{backend, dir, fsync, ...}`: which backend to open and how. */
export type StorageConfig = Static<typeof StorageConfigSchema>;

const check = Compile(StorageConfigSchema);

/**
 * Validates a configuration (from a file, the environment, flags) and returns it typed; throws a
 * `config` storage error naming the first bad field.
 */
export function parseStorageConfig(input: unknown): StorageConfig {
  if (!check.Check(input)) {
    const errors = [...check.Errors(input)];
    // The most specific error is the one with the deepest path.
    const e = errors.sort((a, b) => b.instancePath.length - a.instancePath.length)[0];
    const where = e?.instancePath ? e.instancePath : "(root)";
    let msg = e?.message ?? "invalid";
    if (e?.keyword === "additionalProperties" || e?.keyword === "boolean") msg = "unknown field";
    if (e?.instancePath === "/backend") msg = 'must be "memory", "file" or "sqlite"';
    if (e?.instancePath === "/fsync") msg = 'must be "always", "batch" or "none"';
    throw storageError("config", `invalid storage config at ${where}: ${msg}`, { path: where });
  }
  const c = input as StorageConfig;
  if (c.backend !== "memory" && c.dir === undefined) {
    throw storageError("config", `invalid storage config: dir is required for the ${c.backend} backend`, { path: "/dir" });
  }
  return c;
}

/** Opens the backend a configuration describes (validating it first). */
export async function openBackend(config: StorageConfig | unknown): Promise<StorageBackend> {
  const c = parseStorageConfig(config);
  switch (c.backend) {
    case "memory":
      return new MemoryBackend(c.maxBytes === undefined ? {} : { maxBytes: c.maxBytes });
    case "file":
      return FileBackend.open({ ...c, dir: c.dir! });
    case "sqlite":
      return SqliteBackend.open({ ...c, dir: c.dir! });
  }
}
